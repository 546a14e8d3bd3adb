"""Reading the app and stream names that clients put into connect and publish.

Clients disagree on where the stream key goes: OBS sends app "live" and the key
as the publish name, some tools send "live/KEY" as the name, and keys may carry a
"?query" (tokens) or be URL-encoded.
"""

from __future__ import annotations

from urllib.parse import unquote


def normalize_app(app: str) -> str:
    """The app name without a "?query" or trailing slashes ("live/?x=1" -> "live")."""
    return app.partition("?")[0].rstrip("/")


def split_publish_name(name: str, app: str) -> tuple[str, str]:
    """Split a publish name into (URL-decoded stream key, raw query text).

    The split happens at the first "?", and a leading "<app>/" is dropped.
    """
    key, _, query = name.partition("?")
    if app and key.startswith(app + "/"):
        key = key[len(app) + 1 :]
    return unquote(key), query
