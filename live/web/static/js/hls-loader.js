// Plays HLS with hls.js (loaded as <meta name="hls-src"> says) or the browser's own.

import {loadVendored} from "./vendor-loader.js";

// Every playlist the server writes is fMP4, which hls.js passes through without
// transmuxing, so its worker buys nothing and costs a hop: a live playlist update that
// lands during that hop and completes the part's segment makes hls.js 1.7 take the
// segment as fully buffered (within its 0.2 s padding) and never load the segment's
// last part, a stall of a second or more on a busy machine. Inline, a part is matched
// to its segment as soon as it arrives.
const INLINE = {enableWorker: false};

/** Resolves to the Hls class, or null when there is no copy to load or it failed. */
export function loadHls() {
  return loadVendored("hls-src", "Hls");
}

export function nativeHls(video) {
  return Boolean(video.canPlayType("application/vnd.apple.mpegurl"));
}

/** Play `src` in `video`: hls.js where Media Source Extensions exist, else the
 *  browser's own HLS (Safari on iPhone). Returns {hls, native} or null if neither. */
export async function attach(video, src, config = {}) {
  const Hls = await loadHls();
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({...INLINE, ...config});
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
