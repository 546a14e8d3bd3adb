"""Repackaging without encoding: a source whose codecs HLS carries as they are
(`transcode: passthrough`), and the fast-start MP4 made from finished renditions."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path

import av

from live.recording import layout
from live.vod.hls_output import open_rendition
from live.vod.plan import AUDIO


def pass_through(source_path: str, out_dir: Path, video_name: str | None, segment_s: float) -> None:
    """The source's video (as rendition `video_name`) and audio (as `audio`) in fMP4
    HLS, segments cut at the source's own keyframes."""
    with av.open(source_path) as source:
        outputs: list[tuple[av.stream.Stream, av.container.OutputContainer, av.stream.Stream]] = []
        try:
            if video_name is not None and source.streams.video:
                video = source.streams.video[0]
                container = open_rendition(out_dir, video_name, segment_s)
                stream = container.add_stream_from_template(video)
                if video.codec_context.name == "hevc":
                    stream.codec_tag = "hvc1"  # what Apple players need in fMP4
                outputs.append((video, container, stream))
            if source.streams.audio:
                audio = source.streams.audio[0]
                container = open_rendition(out_dir, AUDIO, segment_s)
                outputs.append((audio, container, container.add_stream_from_template(audio)))
            by_input = {id(source_stream): (c, s) for source_stream, c, s in outputs}
            for packet in source.demux([source_stream for source_stream, _, _ in outputs]):
                if packet.dts is None:
                    continue
                container, stream = by_input[id(packet.stream)]
                packet.stream = stream
                container.mux(packet)
        finally:
            for _, container, _ in outputs:
                container.close()


def build_mp4(out_dir: Path, video_name: str | None, with_audio: bool, path: Path) -> None:
    """A fast-start MP4 of one video rendition and the audio rendition, remuxed from
    their HLS in `out_dir`, packets interleaved by time."""
    names = ([video_name] if video_name else []) + ([AUDIO] if with_audio else [])
    inputs = [av.open(str(out_dir / layout.rendition_playlist(name))) for name in names]
    try:
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as mp4:
            sources = []
            for number, container in enumerate(inputs):
                stream = container.streams[0]
                target = mp4.add_stream_from_template(stream)
                sources.append(_packets(container, stream, target, number))
            for _, _, packet in heapq.merge(*sources, key=lambda item: item[:2]):
                mp4.mux(packet)
    finally:
        for container in inputs:
            container.close()


def _packets(
    container: av.container.InputContainer,
    stream: av.stream.Stream,
    target: av.stream.Stream,
    number: int,
) -> Iterator[tuple[float, int, av.Packet]]:
    """(time, input number, packet): ties in time go by input, never by packet."""
    for packet in container.demux(stream):
        if packet.dts is None:
            continue
        at = float(packet.dts * packet.time_base)
        packet.stream = target
        yield at, number, packet
