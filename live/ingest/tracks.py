"""Turn the decoder configurations publishers send into codec-neutral TrackInfo."""

from __future__ import annotations

import logging

from live.media.codecs import (
    CodecConfigError,
    avc_codec_string,
    avc_dimensions,
    hevc_codec_string,
    hevc_dimensions,
    parse_audio_specific_config,
)
from live.media.packet import TrackInfo

log = logging.getLogger(__name__)


def video_track(codec: str, config: bytes) -> TrackInfo | None:
    """TrackInfo for an avcC/hvcC record, or None (logged) if it can't be read."""
    try:
        if codec == "h264":
            width, height = avc_dimensions(config)
            return TrackInfo(
                "video", "h264", config, width, height, codec_string=avc_codec_string(config)
            )
        if codec == "hevc":
            width, height = hevc_dimensions(config)
            return TrackInfo(
                "video", "hevc", config, width, height, codec_string=hevc_codec_string(config)
            )
    except CodecConfigError as error:
        log.warning("unreadable %s configuration: %s", codec, error)
        return None
    return TrackInfo("video", codec, config)


def audio_track(codec: str, config: bytes) -> TrackInfo | None:
    if codec == "aac":
        try:
            asc = parse_audio_specific_config(config)
        except CodecConfigError as error:
            log.warning("unreadable AAC configuration: %s", error)
            return None
        return TrackInfo(
            "audio",
            "aac",
            config,
            sample_rate=asc.sample_rate,
            channels=asc.channels,
            codec_string=asc.codec_string,
        )
    return TrackInfo("audio", codec, config)
