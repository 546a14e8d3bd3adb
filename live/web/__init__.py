"""The pages people open in a browser: the player (`/play/{playback_id}`, `/vod/{asset_id}`),
the admin dashboard (`/admin`) and browser publishing (`/publish`).

Static HTML, CSS and JavaScript modules; the dashboard talks only to the public REST
API, so a script can do whatever it does. Third-party JavaScript (hls.js) is not ours:
it comes from `vendor/` (installed by `scripts/setup.sh` with npm) or a CDN."""

from live.web.routes import WebSettings, setup_web_routes
from live.web.status import stream_status

__all__ = ["WebSettings", "setup_web_routes", "stream_status"]
