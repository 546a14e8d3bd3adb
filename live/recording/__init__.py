"""Recordings: every session of a livestream with `record: true` becomes a VOD asset.

- `recorder.py`: stores the live packager's CMAF parts (appended to their segment)
  and an index as the session goes;
- `finalize.py`: VOD playlist, fast-start MP4 (`mp4.py`), poster;
- `service.py`: wiring, asset lifecycle, crash recovery, retention, deletion;
- `vod_routes.py`: `/vod/{asset_id}/...` over HTTP.
"""
