"""One rendition's fMP4 HLS VOD output in a local directory, written by ffmpeg's
HLS muxer (through PyAV): media playlist, init section, segments of about
`segment_s` cut at keyframes."""

from __future__ import annotations

from pathlib import Path

import av

from live.recording import layout


def open_rendition(out_dir: Path, name: str, segment_s: float) -> av.container.OutputContainer:
    return av.open(
        str(out_dir / layout.rendition_playlist(name)),
        "w",
        format="hls",
        options={
            "hls_time": f"{segment_s:g}",
            "hls_playlist_type": "vod",
            "hls_segment_type": "fmp4",
            "hls_fmp4_init_filename": layout.rendition_init(name),
            "hls_segment_filename": str(out_dir / layout.rendition_segments(name)),
            "hls_flags": "independent_segments",
        },
    )


def rendition_files(out_dir: Path, name: str) -> list[str]:
    """The rendition's objects, the playlist last: once it is stored, the rest is."""
    segments = sorted(path.name for path in out_dir.glob(f"{name}_[0-9]*.m4s"))
    return [layout.rendition_init(name), *segments, layout.rendition_playlist(name)]
