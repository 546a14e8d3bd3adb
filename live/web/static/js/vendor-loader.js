// Loads a third-party script from where the server says (its vendored copy, or the CDN
// named by the `web_js_url` setting): the page's <meta name="NAME-src">. Empty: the
// server has no copy, and the caller says so rather than break.

const loading = new Map(); // meta name -> Promise of the global the script defines

/** Resolves to window[globalName] once the script ran, or null when there is none. */
export function loadVendored(metaName, globalName) {
  if (loading.has(metaName)) return loading.get(metaName);
  const src = document.querySelector(`meta[name="${metaName}"]`)?.content || "";
  const promise = !src ? Promise.resolve(null) : new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = () => resolve(window[globalName] || null);
    script.onerror = () => resolve(null);
    document.head.append(script);
  });
  loading.set(metaName, promise);
  return promise;
}
