// Talking to the API: one JSON request at a time, with a timeout, and the session's CSRF token. A page opened from
// the service worker's cache holds the token it was saved with; the data set brings a fresh one (setCsrfToken).

const meta = document.querySelector('meta[name="csrf-token"]');
let csrfToken = meta.content;

export class NetworkError extends Error {}

/** Take a fresh CSRF token for the API and for the page's forms (sign-out, language). */
export function setCsrfToken(token) {
  if (!token || token === csrfToken) return;
  csrfToken = token;
  meta.content = token;
  for (const input of document.querySelectorAll('input[name="csrf_token"]')) input.value = token;
}

/**
 * One JSON request; resolves to {status, data} (data null when the body is no JSON: a proxy's error page, say).
 * Throws NetworkError("timeout" or "network") when no answer came within `timeout` ms.
 */
export async function api(method, url, body, { timeout = 8000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken;
  }
  try {
    let response;
    try {
      response = await fetch(url, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin", cache: "no-store", redirect: "manual", signal: controller.signal,
      });
    } catch (error) {
      throw new NetworkError(error && error.name === "AbortError" ? "timeout" : "network");
    }
    if (response.type === "opaqueredirect") {
      return { status: 401, data: { result: "unauthorized" } }; // sent to a sign-in page by something in between
    }
    let data = null;
    try {
      data = await response.json(); // the timeout covers the body too: a stalled body is no answer
    } catch (error) {
      if (error && error.name === "AbortError") throw new NetworkError("timeout");
      data = null;
    }
    return { status: response.status, data };
  } finally {
    clearTimeout(timer);
  }
}

/** Whether an answer is the server's word about the request (not a 5xx, "too many", a proxy's page, or a 401). */
export function answered({ status, data }) {
  return status < 500 && status !== 401 && status !== 429 && data !== null && typeof data === "object";
}

/** A 401 for the CSRF token only: the page came from the service worker's cache; the data set brings a new one. */
export function staleToken({ status, data }) {
  return status === 401 && Boolean(data) && data.reason === "csrf";
}
