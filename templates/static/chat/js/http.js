// The ExpressChat auth endpoints, same origin. They answer JSON and set or clear the httpOnly
// login cookies; the page never sees a token. The endpoints take only application/json (a
// cross-site form cannot send it without a CORS preflight) and the cookies are SameSite=Lax;
// the CSRF token is sent as well, so the calls keep working if CSRF checks are ever enabled.

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function call(method, url, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    cache: "no-store",
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    return { status: 0, data: {}, retryAfter: null };
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return { status: response.status, data: data || {}, retryAfter: Number.isFinite(retry) ? retry : null };
}

export function postJSON(url, body = {}) {
  return call("POST", url, body);
}

export function getJSON(url) {
  return call("GET", url);
}
