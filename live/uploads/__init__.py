"""Files into assets: resumable uploads (tus), single PUTs and imports by URL, up to
the moment an asset's file is complete in storage (`UploadIntake` hands it on).

tus.py       the tus 1.0.0 protocol, sans I/O
receiver.py  uploads in progress over the store and storage (claims, offsets, completion)
routes.py    /v1/uploads (tus) and PUT /v1/assets/{id}/file
imports.py   fetching an origin_url into storage
intake.py    what the API hands new assets to; the hand-over to processing
sweeper.py   expiry of abandoned uploads, arrival of presigned PUTs
"""
