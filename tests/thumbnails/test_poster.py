import asyncio
import io

import av

from live.thumbnails.jpeg import keyframe_to_jpeg
from live.thumbnails.poster import PosterService


def jpeg_size(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data), format="image2pipe") as container:
        frame = next(container.decode(video=0))
        assert container.streams.video[0].codec_context.name == "mjpeg"
        return frame.width, frame.height


def keyframes(clip):
    return [p for p in clip.packets if p.kind == "video" and p.keyframe]


def test_a_keyframe_becomes_a_jpeg_of_the_stream_size(clip):
    data = keyframe_to_jpeg(clip.video, keyframes(clip)[0])
    assert data[:2] == b"\xff\xd8"
    assert jpeg_size(data) == (320, 180)


def test_hevc_keyframes_too(media_dir):
    from media_fixtures import make_clip

    hevc = make_clip(media_dir, seconds=1, codec="libx265", audio=False)
    assert jpeg_size(keyframe_to_jpeg(hevc.video, keyframes(hevc)[0])) == (320, 180)


async def test_many_requests_cost_one_decode_and_a_new_keyframe_refreshes(clip):
    first, second = keyframes(clip)[:2]
    current = {"keyframe": first}
    service = PosterService(
        lambda pb: (clip.video, current["keyframe"]) if pb == "pb" else None, refresh_s=0.0
    )
    answers = await asyncio.gather(*(service.poster("pb") for _ in range(50)))
    assert service.decodes == 1 and len(set(answers)) == 1
    assert await service.poster("pb") == answers[0]  # same keyframe: no new decode
    assert service.decodes == 1
    current["keyframe"] = second
    refreshed = await service.poster("pb")
    assert service.decodes == 2 and refreshed != answers[0]
    assert await service.poster("unknown") is None
