// Same-origin HTTP calls: the ExpressChat auth endpoints, and the REST uploads (docs/protocol.md
// §15.1). They answer JSON and set or clear the httpOnly login cookies; the page never sees a
// token. The auth endpoints take only application/json (a cross-site form cannot send it
// without a CORS preflight) and the cookies are SameSite=Lax; the CSRF token is sent as well,
// so the calls keep working if CSRF checks are ever enabled. The REST API authenticates the
// `access_token` cookie only together with that token (X-CSRFToken), for every unsafe method.

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function retryAfter(value) {
  const seconds = Number.parseInt(value || "", 10);
  return Number.isFinite(seconds) ? seconds : null;
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
  return { status: response.status, data: data || {}, retryAfter: retryAfter(response.headers.get("Retry-After")) };
}

export function postJSON(url, body = {}) {
  return call("POST", url, body);
}

export function getJSON(url) {
  return call("GET", url);
}

export function deleteJSON(url) {
  return call("DELETE", url);
}

/**
 * POST one file as multipart/form-data (field `file`). XMLHttpRequest rather than fetch(), for
 * its upload progress events: onProgress(sentBytes, totalBytes). `signal` (an AbortSignal)
 * cancels it. Resolves like the calls above ({status, data, retryAfter}, status 0 when the
 * request did not complete), plus `aborted`.
 */
export function uploadFile(url, file, { onProgress = null, signal = null } = {}) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const done = (result) => resolve({ data: {}, retryAfter: null, aborted: false, ...result });
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    if (onProgress) xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size));
    xhr.addEventListener("load", () => {
      let data = {};
      try {
        data = JSON.parse(xhr.responseText) || {};
      } catch {
        data = {};
      }
      done({ status: xhr.status, data, retryAfter: retryAfter(xhr.getResponseHeader("Retry-After")) });
    });
    xhr.addEventListener("error", () => done({ status: 0 }));
    xhr.addEventListener("abort", () => done({ status: 0, aborted: true }));
    if (signal) {
      if (signal.aborted) {
        done({ status: 0, aborted: true });
        return;
      }
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    const form = new FormData();
    form.append("file", file, file.name || "file");
    xhr.send(form);
  });
}
