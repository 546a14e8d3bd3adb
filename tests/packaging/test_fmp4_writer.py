import itertools
import subprocess

from media_fixtures import make_clip

from live.media.timeline import Timeline
from live.packaging.bmff import iter_boxes, parse_moof, read_track_defaults
from live.packaging.fmp4 import Fmp4Writer, track_timescale


def samples_of(clip):
    timeline = Timeline({t.kind: track_timescale(t) for t in clip.tracks})
    out = [s for p in clip.packets if (s := timeline.push(p)) is not None]
    return out + timeline.flush()


def write_in_parts(clip, per_part=7):
    writer = Fmp4Writer(clip.tracks)
    samples = samples_of(clip)
    fragments = [
        writer.fragment(samples[i : i + per_part]) for i in range(0, len(samples), per_part)
    ]
    return writer, samples, fragments


def probe(path, entries="stream=codec_name,codec_tag_string,width,height,nb_read_frames"):
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            entries,
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [line.split(",") for line in out.split()]


def test_init_is_ftyp_moov_with_mvex_and_the_track_timescales(clip):
    writer = Fmp4Writer(clip.tracks)
    assert [box_type for box_type, *_ in iter_boxes(writer.init)] == [b"ftyp", b"moov"]
    assert b"mvex" in writer.init and b"trex" in writer.init
    assert writer.timescales == {"video": 90_000, "audio": 48_000}


def test_fragments_carry_exact_durations_and_every_sample(clip, tmp_path):
    writer, samples, fragments = write_in_parts(clip)
    defaults, _ = read_track_defaults(writer.init)
    next_dts: dict[int, int] = {}
    counts: dict[int, int] = {}
    for fragment in fragments:
        (moof_type, start, _, end), (mdat_type, *_) = list(iter_boxes(fragment))
        assert (moof_type, mdat_type) == (b"moof", b"mdat")
        for track_id, run in parse_moof(fragment[start:end], defaults).items():
            assert 0 not in run.durations
            if track_id in next_dts:  # each track's runs follow each other exactly
                assert run.base_decode_time == next_dts[track_id]
            next_dts[track_id] = run.base_decode_time + run.duration
            counts[track_id] = counts.get(track_id, 0) + len(run.durations)
    assert counts[writer.track_ids["video"]] == clip.frames
    assert sum(counts.values()) == len(samples)
    path = tmp_path / "out.mp4"
    path.write_bytes(writer.init + b"".join(fragments))
    rows = {row[0]: row for row in probe(path)}
    assert int(rows["h264"][-1]) == clip.frames
    assert rows["h264"][2:4] == ["320", "180"]
    # audio timestamps strictly increase: no collapsed (zero-duration) samples
    packets = probe(path, "packet=stream_index,dts_time")
    audio_index = str(writer.track_ids["audio"] - 1)
    audio_dts = [float(dts) for index, dts in packets if index == audio_index]
    assert all(b > a for a, b in itertools.pairwise(audio_dts))


def test_b_frames_keep_every_frame_and_signed_offsets(bframe_clip, tmp_path):
    writer, samples, fragments = write_in_parts(bframe_clip)
    assert any(s.pts != s.dts for s in samples)
    path = tmp_path / "b.mp4"
    path.write_bytes(writer.init + b"".join(fragments))
    rows = {row[0]: row for row in probe(path)}
    assert int(rows["h264"][-1]) == bframe_clip.frames


def test_hevc_is_written_as_hvc1(media_dir, tmp_path):
    clip = make_clip(media_dir, seconds=1, codec="libx265", audio=False)
    assert clip.video is not None and clip.video.codec_string.startswith("hvc1.")
    writer, _, fragments = write_in_parts(clip)
    path = tmp_path / "h.mp4"
    path.write_bytes(writer.init + b"".join(fragments))
    (row,) = probe(path)
    assert row[:2] == ["hevc", "hvc1"]
    assert int(row[-1]) == clip.frames
