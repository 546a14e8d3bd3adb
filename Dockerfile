# The `live` server: one image for every node (docker-compose.yml runs two).
#
# Nothing comes from apt: PyAV's wheels carry the FFmpeg libraries (decoders, the
# x264 encoder for ladders, the MP4 muxer), aiortc's carry libopus, libvpx and
# libsrtp for WHIP, cryptography's carry OpenSSL; the server runs no ffmpeg binary.
# Only a platform without those wheels would need the FFmpeg, opus, vpx and srtp
# development packages and a C compiler to build them.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/live
COPY pyproject.toml README.md ./
COPY live ./live
COPY configs ./configs
RUN pip install . \
    && useradd --system --home-dir /var/lib/live --create-home live

# HTTP (API, LL-HLS, WHIP signalling), RTMP, SRT; WHIP media uses the UDP range set
# by whip_udp_ports.
EXPOSE 8080 1935 9000/udp
USER live
VOLUME /var/lib/live
CMD ["live", "serve", "--config", "/opt/live/configs/live.toml", "--data-dir", "/var/lib/live"]
