"""Sprite sheets: one JPEG of small frames across a recording, and the WebVTT track
that tells players (video.js, hls.js UIs, Shaka) which tile to show for which time.

Made once, when a recording is finalised: one keyframe decoded per tile (a seek to
each tile's time), never the whole recording, and at most `max_tiles` tiles however
long the recording, so finalising an hour stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from live.thumbnails.jpeg import encode_jpeg


@dataclass(frozen=True, slots=True)
class Sprite:
    jpeg: bytes
    vtt: str
    tiles: int


def make_sprite(
    mp4: Path,
    *,
    image_name: str = "sprite.jpg",
    interval_s: float = 5.0,
    tile_width: int = 160,
    columns: int = 10,
    max_tiles: int = 200,
) -> Sprite | None:
    """A sprite of `mp4`'s video (None without video)."""
    with av.open(str(mp4)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        duration = (container.duration or 0) / 1_000_000
        if duration <= 0:
            return None
        interval = max(interval_s, duration / max_tiles)
        times = [i * interval for i in range(int(duration / interval - 1e-6) + 1)]
        tiles = []
        for at in times:
            container.seek(int(at * 1_000_000), backward=True, any_frame=False)
            frame = next(container.decode(stream), None)
            if frame is None:
                break
            tiles.append(frame)
    if not tiles:
        return None
    first = tiles[0]
    tile_height = max(2, round(tile_width * first.height / first.width / 2) * 2)
    rows = -(-len(tiles) // columns)
    sheet = _compose(tiles, tile_width, tile_height, columns, rows)
    cues = ["WEBVTT", ""]
    for index, at in enumerate(times[: len(tiles)]):
        end = min(duration, at + interval)
        x, y = (index % columns) * tile_width, (index // columns) * tile_height
        cues += [
            f"{_vtt_time(at)} --> {_vtt_time(end)}",
            f"{image_name}#xywh={x},{y},{tile_width},{tile_height}",
            "",
        ]
    return Sprite(encode_jpeg(sheet), "\n".join(cues), len(tiles))


def _compose(tiles, width: int, height: int, columns: int, rows: int) -> av.VideoFrame:
    """The tiles laid out left to right, top to bottom, on one yuvj420p picture."""
    sheet = av.VideoFrame(width * columns, rows * height, "yuvj420p")
    planes = [bytearray(plane.buffer_size) for plane in sheet.planes]
    strides = [plane.line_size for plane in sheet.planes]
    if len(planes) > 1:  # grey chroma where no tile lands
        planes[1][:] = b"\x80" * len(planes[1])
        planes[2][:] = b"\x80" * len(planes[2])
    for index, frame in enumerate(tiles):
        tile = frame.reformat(width, height, "yuvj420p")
        column, row = index % columns, index // columns
        for number, plane in enumerate(tile.planes):
            shift = 0 if number == 0 else 1  # 4:2:0 chroma is half size both ways
            tile_width, tile_height = width >> shift, height >> shift
            source, source_stride = bytes(plane), plane.line_size
            target, target_stride = planes[number], strides[number]
            x, y = column * tile_width, row * tile_height
            for line in range(tile_height):
                start = (y + line) * target_stride + x
                target[start : start + tile_width] = source[
                    line * source_stride : line * source_stride + tile_width
                ]
    for plane, data in zip(sheet.planes, planes, strict=True):
        plane.update(bytes(data))
    return sheet


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"
