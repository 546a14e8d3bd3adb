"""Decode and encode with PyAV, for `transcode: auto` (and the ladder built on it).

Each piece is synchronous and keeps no reference to the event loop: callers run
them on a `CodecWorker` thread (PyAV releases the GIL inside the codecs), so
encoding never stalls the loop that serves ingest and HTTP.
"""

from live.transcode.audio import AacEncoder, AudioDecoder, AudioTranscoder
from live.transcode.video import H264Encoder, VideoDecoder, VideoTranscoder
from live.transcode.worker import CodecWorker

__all__ = [
    "AacEncoder",
    "AudioDecoder",
    "AudioTranscoder",
    "CodecWorker",
    "H264Encoder",
    "VideoDecoder",
    "VideoTranscoder",
]
