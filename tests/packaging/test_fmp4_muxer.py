import subprocess

from live.media.packet import MediaPacket
from live.media.timeline import Timeline
from live.packaging.bmff import iter_boxes, read_track_defaults
from live.packaging.fmp4 import Fmp4Muxer, track_timescale
from media_fixtures import make_clip


def mux_all(clip):
    muxer = Fmp4Muxer(list(clip.tracks))
    timeline = Timeline({t.kind: track_timescale(t) for t in clip.tracks})
    fragments = []

    def feed(sample):
        timed = MediaPacket(sample.packet.kind, sample.dts, sample.pts, sample.packet.data,
                            sample.packet.keyframe)
        fragments.extend(muxer.mux(timed, sample.duration))

    for packet in clip.packets:
        sample = timeline.push(packet)
        if sample is not None:
            feed(sample)
    for sample in timeline.flush():
        feed(sample)
    fragments.extend(muxer.close())
    return muxer, fragments


def probe_frames(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,codec_tag_string,nb_read_frames,width,height", "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return [line.split(",") for line in out.split()]


def test_init_is_ftyp_moov_with_mvex_and_no_samples(clip):
    muxer, _ = mux_all(clip)
    boxes = [box_type for box_type, *_ in iter_boxes(muxer.init)]
    assert boxes == [b"ftyp", b"moov"]
    defaults, timescales = read_track_defaults(muxer.init)
    assert sorted(timescales.values()) == [48_000, 90_000]
    assert set(defaults) == set(timescales)


def test_every_frame_is_in_a_fragment_with_exact_durations(clip, tmp_path):
    muxer, fragments = mux_all(clip)
    video_id = muxer.track_id("video")
    video_runs = [f.runs[video_id] for f in fragments if video_id in f.runs]
    assert sum(len(r.durations) for r in video_runs) == clip.frames
    # tfdt of each run follows the previous one exactly: no gaps, no overlaps
    for previous, current in zip(video_runs, video_runs[1:], strict=False):
        assert current.base_decode_time == previous.base_decode_time + previous.duration
    keyframes = [r for r in video_runs if r.first_sample_sync]
    assert len(keyframes) == 3  # 3 s at a 1 s GOP
    path = tmp_path / "out.mp4"
    path.write_bytes(muxer.init + b"".join(f.data for f in fragments))
    streams = {row[0]: row for row in probe_frames(path)}
    assert int(streams["h264"][-1]) == clip.frames
    assert streams["h264"][2:4] == ["320", "180"]


def test_b_frames_keep_every_frame(bframe_clip, tmp_path):
    muxer, fragments = mux_all(bframe_clip)
    path = tmp_path / "b.mp4"
    path.write_bytes(muxer.init + b"".join(f.data for f in fragments))
    streams = {row[0]: row for row in probe_frames(path)}
    assert int(streams["h264"][-1]) == bframe_clip.frames


def test_hevc_is_written_as_hvc1(media_dir, tmp_path):
    clip = make_clip(media_dir, seconds=1, codec="libx265", audio=False)
    assert clip.video is not None and clip.video.codec == "hevc"
    assert clip.video.codec_string.startswith("hvc1.")
    muxer, fragments = mux_all(clip)
    path = tmp_path / "h.mp4"
    path.write_bytes(muxer.init + b"".join(f.data for f in fragments))
    (row,) = probe_frames(path)
    assert row[0] == "hevc" and row[1] == "hvc1"
    assert int(row[-1]) == clip.frames
