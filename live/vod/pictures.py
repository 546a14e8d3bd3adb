"""The poster and the sprite of a processed asset, made from its MP4: the poster
the uploader sent (JPEG or PNG, re-encoded as JPEG, whatever its size) or a
frame from about 10 % in; the sprite sheet and its WebVTT track as recordings
have them."""

from __future__ import annotations

import logging
from pathlib import Path

import av

from live.recording import layout
from live.recording.finalize import POSTER_POSITION
from live.recording.mp4 import make_poster
from live.thumbnails.jpeg import encode_jpeg
from live.thumbnails.sprite import make_sprite

log = logging.getLogger(__name__)


def make_pictures(mp4: Path, poster_source: Path | None, out_dir: Path) -> list[str]:
    """Write poster.jpg, sprite.jpg and sprite.vtt into `out_dir` (as many as can be
    made: an audio-only asset has only an uploaded poster); their names."""
    made = []
    poster = _uploaded_poster(poster_source) if poster_source is not None else None
    if poster is None:
        poster = make_poster(mp4, POSTER_POSITION)
    if poster is not None:
        (out_dir / layout.POSTER).write_bytes(poster)
        made.append(layout.POSTER)
    sprite = make_sprite(mp4, image_name=layout.SPRITE)
    if sprite is not None:
        (out_dir / layout.SPRITE).write_bytes(sprite.jpeg)
        (out_dir / layout.SPRITE_VTT).write_text(sprite.vtt)
        made += [layout.SPRITE, layout.SPRITE_VTT]
    return made


def _uploaded_poster(path: Path) -> bytes | None:
    """The uploaded image as a JPEG; None (a frame is used instead) if it cannot be read."""
    try:
        with av.open(str(path)) as image:
            frame = next(image.decode(video=0))
        return encode_jpeg(frame, quality=3)
    except (av.FFmpegError, StopIteration, IndexError) as error:
        log.warning("the uploaded poster cannot be read (%s): a frame is used", error)
        return None
