"""Stream IDs publishers put in the handshake, read into a stream key.

Accepted forms (API.md):
- the plain key: `sk_abc`
- the SRT access-control syntax (SRT App. B): `#!::r=live/sk_abc,m=publish[,u=user]`;
  `m=publish` is required, since this server only takes publishers;
- the short form several servers use: `publish:live/sk_abc`.
A leading `live/` (our one application name) is dropped from the resource. Some
callers (srt-live-transmit, ffmpeg) pass the URL's `streamid=` through without
URL-decoding it, so a percent-encoded Stream ID is decoded first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

_APP_PREFIX: Final = "live/"


@dataclass(frozen=True, slots=True)
class StreamRequest:
    key: str
    mode: str  # "publish", or what the caller asked for instead
    user: str = ""


def parse_stream_id(stream_id: str) -> StreamRequest:
    text = stream_id.strip()
    if "%" in text:
        text = unquote(text)
    if text.startswith("#!::"):
        values: dict[str, str] = {}
        for item in text[4:].split(","):
            name, sep, value = item.partition("=")
            if sep:
                values[name.strip()] = value.strip()
        mode = values.get("m", "request")
        return StreamRequest(_resource_key(values.get("r", "")), mode, values.get("u", ""))
    mode, sep, rest = text.partition(":")
    if sep and mode in ("publish", "read", "request"):
        return StreamRequest(_resource_key(rest), mode)
    return StreamRequest(_resource_key(text), "publish")


def _resource_key(resource: str) -> str:
    resource = resource.strip().lstrip("/")
    if resource.startswith(_APP_PREFIX):
        resource = resource[len(_APP_PREFIX) :]
    return resource
