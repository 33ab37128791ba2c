// The API, from the browser. The credential lives in this tab's sessionStorage only:
// never a cookie, never the URL.
const STORE = "dataloft.credential";

export const credential = {
  get: () => sessionStorage.getItem(STORE),
  set: (value) => sessionStorage.setItem(STORE, value),
  clear: () => sessionStorage.removeItem(STORE),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${credential.get() || ""}`, ...extra };
}

async function failure(response) {
  let code = "ERROR";
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    code = body.code || code;
    message = body.message || message;
  } catch { /* not JSON */ }
  return new ApiError(response.status, code, message);
}

export async function call(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);

export async function all(path, take = 100) {
  const items = [];
  let cursor = null;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}take=${take}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.cursor;
    if (!cursor || !page.items.length) return items;
  }
}

// Upload one file's bytes with progress (fetch cannot report upload progress; XHR can).
export function uploadBytes(fileId, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/file/${encodeURIComponent(fileId)}/upload`);
    xhr.setRequestHeader("Authorization", `Bearer ${credential.get() || ""}`);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) { onProgress(file.size, file.size); resolve(); return; }
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      reject(new ApiError(xhr.status, body.code || "ERROR", body.message || xhr.statusText));
    };
    xhr.onerror = () => reject(new ApiError(0, "NETWORK", "the upload failed to reach the server"));
    xhr.send(file);
  });
}

// Server-sent events from a POST (EventSource only does GET): JSON payloads, one by one.
export function streamPost(path, body) {
  return stream(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify(body),
  });
}

// Server-sent events from a GET, sent with the Authorization header (EventSource cannot
// send one, and an API key never goes in a URL).
export function streamGet(path, signal, onOpen) {
  return stream(path, { headers: headers({ Accept: "text/event-stream" }), signal }, onOpen);
}

async function* stream(path, init, onOpen) {
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart()).join("\n");
      if (!data || data === "[DONE]") continue;
      try { yield JSON.parse(data); } catch { /* not JSON: skip */ }
    }
  }
}
