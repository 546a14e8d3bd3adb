"""Store records -> the JSON objects of API.md.

The one place that decides what a client sees: a read-scope key gets secrets (stream
key, SRT passphrase, and the ingest URLs that embed the key) as null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from live.control import LiveControl
from live.store.models import ApiKey, Livestream, Session
from live.store.times import to_rfc3339, utcnow
from live.urls import PublicUrls

_KEYED_INGEST = ("rtmp", "rtmps", "srt")  # URLs that carry the stream key


def _time(value: datetime | None) -> str | None:
    return to_rfc3339(value) if value else None


def livestream_json(
    ls: Livestream,
    *,
    urls: PublicUrls,
    control: LiveControl,
    secrets: bool,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or utcnow()
    banned = ls.is_banned(now)
    ingest: dict[str, str | None] = dict(urls.ingest(ls.stream_key))
    if not secrets:
        ingest.update(dict.fromkeys(_KEYED_INGEST))
    return {
        "id": ls.id,
        "name": ls.name,
        "status": ls.status(now),
        "stream_key": ls.stream_key if secrets else None,
        "playback_id": ls.playback_id,
        "record": ls.record,
        "latency_mode": ls.latency_mode,
        "transcode": ls.transcode,
        "reconnect_window_s": ls.reconnect_window_s,
        "max_duration_s": ls.max_duration_s,
        "srt_passphrase": ls.srt_passphrase if secrets else None,
        "ingest": ingest,
        "playback": urls.playback(ls.playback_id),
        "current_session": _current_session(control, ls),
        "ban": (
            {
                "reason": ls.ban_reason,
                "banned_at": _time(ls.banned_at),
                "until": _time(ls.ban_until),
            }
            if banned
            else None
        ),
        "created_at": _time(ls.created_at),
        "updated_at": _time(ls.updated_at),
    }


def _current_session(control: LiveControl, ls: Livestream) -> dict[str, Any] | None:
    live = control.current_session(ls.id) if ls.live else None
    if live is None:
        return None
    return {
        **session_json(live.session),
        "reconnecting": live.reconnecting,
        "ingest_health": live.ingest_health,
        "warnings": live.warnings,
    }


def session_json(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """A history entry. `duration_s` runs on to `now` while the session is open."""
    return {
        "id": session.id,
        "livestream_id": session.livestream_id,
        "protocol": session.protocol,
        "remote_addr": session.remote_addr,
        "encoder": session.encoder,
        "started_at": _time(session.started_at),
        "ended_at": _time(session.ended_at),
        "duration_s": round(session.duration_s(now or utcnow()), 3),
        "end_reason": session.end_reason,
        "video": session.video,
        "audio": session.audio,
        "bytes_in": session.bytes_in,
        "peak_viewers": session.peak_viewers,
        "total_views": session.total_views,
        "asset_id": session.asset_id,
    }


def api_key_json(key: ApiKey, plaintext: str | None = None) -> dict[str, Any]:
    """An API key; `key` (the secret) only in the answer that created it."""
    answer: dict[str, Any] = {
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "created_at": _time(key.created_at),
        "last_used_at": _time(key.last_used_at),
    }
    if plaintext is not None:
        answer["key"] = plaintext
    return answer
