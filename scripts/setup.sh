#!/usr/bin/env bash
# Prepare a Debian machine for live: system packages (only those missing), a
# virtualenv in .venv with the project installed. `setup.sh test` also installs
# what the test suite drives: ffmpeg, chromium, srt-tools, redis and hls.js.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-runtime}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=""
need_apt() {  # need_apt COMMAND PACKAGE...: install PACKAGEs when COMMAND is missing
  local probe="$1"; shift
  if ! command -v "$probe" >/dev/null 2>&1 && ! dpkg -s "$@" >/dev/null 2>&1; then
    if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

need_apt python3 python3
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt __none__ python3-venv
if [ "$mode" = test ]; then
  need_apt ffmpeg ffmpeg
  need_apt chromium chromium
  need_apt node nodejs
  need_apt npm npm
  need_apt srt-live-transmit srt-tools  # SRT e2e tests publish with it (and ffmpeg's libsrt)
  need_apt curl curl  # the HTTPS test checks the certificate with curl
  need_apt openssl openssl  # WHIP tests make a P-256 DTLS certificate for FFmpeg
  need_apt redis-server redis-server  # the Redis store's contract and race tests
  need_apt varnishd varnish  # the edge tests run configs/edge.vcl in a real varnishd
  # GStreamer as an independent publisher (rtmp2sink, srtsink) and LL-HLS client (hlsdemux2)
  need_apt gst-launch-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
fi

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if [ "$mode" = test ]; then
  "${pip[@]}" -e '.[test]'
  if [ ! -f tests/web/node_modules/hls.js/dist/hls.min.js ]; then
    (cd tests/web && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
else
  "${pip[@]}" -e .
fi
# hls.js and tus-js-client for the pages (/play, /admin): from the npm registry into live/web/vendor
# (git-ignored), when npm is there. Without it the pages say what is missing;
# `web_js_url` can name a CDN instead.
if command -v npm >/dev/null 2>&1 && { [ ! -f live/web/vendor/node_modules/hls.js/dist/hls.min.js ] \
  || [ ! -f live/web/vendor/node_modules/tus-js-client/dist/tus.min.js ]; }; then
  if ! (cd live/web/vendor && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    if [ "$mode" = test ]; then exit 1; fi
    echo "setup: npm could not install hls.js and tus-js-client; the pages will say so (or set web_js_url)" >&2
  fi
fi
