"""The CODECS string of a finished rendition (RFC 6381, as the multivariant
playlist and the asset's `renditions` show it), read from its init section."""

from __future__ import annotations

from pathlib import Path

import av

from live.media.codecs import (
    CodecConfigError,
    avc_codec_string,
    hevc_codec_string,
    parse_audio_specific_config,
)

_FALLBACK = {"h264": "avc1.640028", "hevc": "hvc1.1.6.L120.90", "aac": "mp4a.40.2"}


def rendition_codec(init_path: Path) -> str:
    with av.open(str(init_path)) as container:
        context = container.streams[0].codec_context
        name, extradata = context.name, bytes(context.extradata or b"")
    try:
        if name == "h264":
            return avc_codec_string(extradata)
        if name == "hevc":
            return hevc_codec_string(extradata)
        if name == "aac":
            return parse_audio_specific_config(extradata).codec_string
    except CodecConfigError:
        pass
    return _FALLBACK.get(name, name)
