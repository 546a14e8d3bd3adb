// Loads hls.js from where the server says (its vendored copy, or the CDN named by the
// `web_js_url` setting): the page's <meta name="hls-src">. Empty: not installed.

let loading = null;

/** Resolves to the Hls class, or null when there is no copy to load or it failed. */
export function loadHls() {
  if (loading) return loading;
  const src = document.querySelector('meta[name="hls-src"]')?.content || "";
  if (!src) return (loading = Promise.resolve(null));
  loading = new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = () => resolve(window.Hls || null);
    script.onerror = () => resolve(null);
    document.head.append(script);
  });
  return loading;
}

export function nativeHls(video) {
  return Boolean(video.canPlayType("application/vnd.apple.mpegurl"));
}

/** Play `src` in `video`: hls.js where Media Source Extensions exist, else the
 *  browser's own HLS (Safari on iPhone). Returns {hls, native} or null if neither. */
export async function attach(video, src, config = {}) {
  const Hls = await loadHls();
  if (Hls && Hls.isSupported()) {
    const hls = new Hls(config);
    hls.loadSource(src);
    hls.attachMedia(video);
    return {hls, Hls, native: false};
  }
  if (nativeHls(video)) {
    video.src = src;
    return {hls: null, Hls: null, native: true};
  }
  return null;
}
