"""What a WHIP offer asks for, checked before any WebRTC machinery is built.

RFC 9725 wants at most one audio and one video track, a sendonly (or sendrecv)
offer, and no partial answers: anything we cannot take in full is refused at the
POST with a 4xx that says why. Which codecs we take depends on the livestream's
`transcode` setting: `passthrough` only what HLS carries as sent (H.264; no
WebRTC audio codec qualifies), `auto` and `ladder` also VP8 and Opus, transcoded.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_OFFER_BYTES = 64 * 1024

# (mime type for aiortc, codec name in our TrackInfo/transcoders), in order of preference:
# H.264 first, as it is passed through without decoding.
_VIDEO_CODECS = {
    "passthrough": [("video/H264", "h264")],
    "auto": [("video/H264", "h264"), ("video/VP8", "vp8")],
}
_AUDIO_CODECS: dict[str, list[tuple[str, str]]] = {
    "passthrough": [],
    "auto": [("audio/opus", "opus")],
}


class OfferRefused(Exception):
    """The offer cannot be answered: `status` and `code` for the error body."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class MediaSection:
    kind: str
    direction: str
    codecs: tuple[str, ...]  # encoding names from a=rtpmap, lower case


@dataclass(frozen=True, slots=True)
class Choice:
    """What we will receive: for each kind, the mime types to offer aiortc (first
    one preferred) and the codec names they map to."""

    kinds: tuple[str, ...]  # in m-line order
    mime_types: dict[str, list[str]]

    def codec_name(self, kind: str, mime_type: str) -> str:
        for mime, name in _VIDEO_CODECS["auto"] if kind == "video" else _AUDIO_CODECS["auto"]:
            if mime.lower() == mime_type.lower():
                return name
        raise KeyError(mime_type)


def parse_offer(text: str) -> list[MediaSection]:
    """The media sections of an SDP offer; OfferRefused(400) if it is not SDP."""
    if len(text) > MAX_OFFER_BYTES:
        raise OfferRefused(400, "invalid_sdp", "The SDP offer is too large.")
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0" or not any(line.startswith("o=") for line in lines):
        raise OfferRefused(400, "invalid_sdp", "The body is not an SDP offer (no v=0/o= lines).")
    sections: list[MediaSection] = []
    session_direction = "sendrecv"
    current: dict | None = None

    def close_section() -> None:
        if current is not None:
            sections.append(
                MediaSection(
                    current["kind"],
                    current["direction"] or session_direction,
                    tuple(current["codecs"]),
                )
            )

    for line in lines:
        if len(line) < 2 or line[1] != "=":
            raise OfferRefused(400, "invalid_sdp", f"Malformed SDP line: {line[:60]!r}")
        key, value = line[0], line[2:]
        if key == "m":
            close_section()
            parts = value.split()
            if len(parts) < 4:
                raise OfferRefused(400, "invalid_sdp", f"Malformed media line: {line[:60]!r}")
            current = {"kind": parts[0], "direction": "", "codecs": []}
        elif key == "a":
            name = value.split(":", 1)[0]
            if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                if current is None:
                    session_direction = name
                else:
                    current["direction"] = name
            elif name == "rtpmap" and current is not None:
                encoding = value.split(" ", 1)[1] if " " in value else ""
                current["codecs"].append(encoding.split("/", 1)[0].lower())
    close_section()
    if not sections:
        raise OfferRefused(400, "invalid_sdp", "The SDP offer has no media section.")
    return sections


def choose(sections: list[MediaSection], transcode: str) -> Choice:
    """Decide what to receive, or refuse the whole offer (RFC 9725 4.4)."""
    mode = "passthrough" if transcode == "passthrough" else "auto"
    kinds = []
    for section in sections:
        if section.kind not in ("audio", "video"):
            raise OfferRefused(
                422, "unsupported_media", f"WHIP carries audio and video, not {section.kind}."
            )
        if section.kind in kinds:
            raise OfferRefused(
                422, "too_many_tracks", f"At most one {section.kind} track can be published."
            )
        if section.direction not in ("sendonly", "sendrecv"):
            raise OfferRefused(
                422,
                "invalid_sdp",
                f"The {section.kind} section is {section.direction}: a WHIP offer sends media.",
            )
        kinds.append(section.kind)
    mime_types = {}
    for section in sections:
        table = _VIDEO_CODECS if section.kind == "video" else _AUDIO_CODECS
        usable = [mime for mime, name in table[mode] if name in _aliases(section.codecs)]
        if not usable:
            offered = ", ".join(sorted(set(section.codecs))) or "none"
            if mode == "passthrough":
                hint = ' With transcode "passthrough" only H.264 video (and no WebRTC '
                hint += 'audio codec) can be packaged as sent: set transcode to "auto".'
            else:
                names = ", ".join(name for _, name in table[mode])
                hint = f" Supported: {names}."
            raise OfferRefused(
                422,
                "unsupported_codec",
                f"No {section.kind} codec of this offer ({offered}) can be used.{hint}",
                section.kind,
            )
        mime_types[section.kind] = usable
    return Choice(tuple(kinds), mime_types)


def _aliases(codecs: tuple[str, ...]) -> set[str]:
    return {c.replace("-", "").lower() for c in codecs}
