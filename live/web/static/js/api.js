// The public REST API (/v1), as any script would call it: the dashboard can do nothing
// a script with the same key cannot.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(key) {
    this.key = key;
  }

  async call(method, path, body) {
    const headers = {"X-API-Key": this.key};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(`/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "The server cannot be reached.");
    }
    const text = await response.text();
    let answer = null;
    try {
      answer = text ? JSON.parse(text) : null;
    } catch {
      answer = null;
    }
    if (!response.ok) {
      const error = answer?.error || {};
      throw new ApiError(response.status, error.code || "error",
        error.message || `The server answered ${response.status}.`);
    }
    return answer;
  }

  get(path) { return this.call("GET", path); }
}
