"""Recordings: every session of a livestream with `record: true` becomes a VOD asset.

- `recorder.py`: a Broadcast consumer writing CMAF parts and an index to storage;
- `finalize.py`: parts → segments, VOD playlist, fast-start MP4 (`mp4.py`), poster;
- `service.py`: wiring, asset lifecycle, crash recovery, retention, deletion;
- `vod_routes.py`: `/vod/{asset_id}/...` over HTTP.
"""
