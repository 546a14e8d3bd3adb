import io
import itertools
import subprocess

import av

from live.thumbnails.sprite import make_sprite


def make_mp4(path, seconds, size="320x180"):
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size={size}:rate=30", "-t", str(seconds), "-c:v", "libx264", "-g", "30",
         "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)  # fmt: skip
    return path


def cue_times(vtt: str) -> list[tuple[float, float, str]]:
    def seconds(text):
        hours, minutes, rest = text.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(rest)

    lines = vtt.splitlines()
    assert lines[0] == "WEBVTT"
    cues = []
    for index, line in enumerate(lines):
        if "-->" in line:
            start, _, end = line.partition(" --> ")
            cues.append((seconds(start), seconds(end), lines[index + 1]))
    return cues


def test_the_vtt_cues_cover_the_recording_and_point_into_the_sheet(tmp_path):
    sprite = make_sprite(make_mp4(tmp_path / "a.mp4", 23), interval_s=5.0, columns=3)
    assert sprite is not None and sprite.tiles == 5  # 0, 5, 10, 15, 20 s
    cues = cue_times(sprite.vtt)
    assert cues[0][0] == 0.0
    assert abs(cues[-1][1] - 23.0) < 0.1
    for (_, end, _), (start, _, _) in itertools.pairwise(cues):
        assert start == end  # no gap, no overlap
    with av.open(io.BytesIO(sprite.jpeg), format="image2pipe") as container:
        sheet = next(container.decode(video=0))
    assert (sheet.width, sheet.height) == (3 * 160, 2 * 90)
    for _, _, target in cues:
        name, _, box = target.partition("#xywh=")
        x, y, w, h = (int(v) for v in box.split(","))
        assert name == "sprite.jpg" and (w, h) == (160, 90)
        assert x + w <= sheet.width and y + h <= sheet.height


def test_long_recordings_are_capped_and_audio_only_has_none(tmp_path):
    sprite = make_sprite(make_mp4(tmp_path / "b.mp4", 12), interval_s=1.0, max_tiles=4)
    assert sprite is not None and sprite.tiles == 4
    audio = tmp_path / "c.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine", "-t", "2", str(audio)], check=True, timeout=60)  # fmt: skip
    assert make_sprite(audio) is None
