"""live: a self-hosted live streaming server (RTMP/SRT/WHIP in, Low-Latency HLS out)."""

__version__ = "0.1.0"
