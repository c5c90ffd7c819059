// The composer's attachment (docs/protocol.md §15.1): one file per message, picked with the
// attach button, dropped onto the conversation, or pasted into the message box.
//
// A file is uploaded at once (POST /api/uploads/, multipart, with the login cookie and the CSRF
// header) while the person writes the caption; the tray above the box shows its progress, then
// a thumbnail (pictures, from the URL the server answered) or its name and size, with a button
// that cancels the upload or deletes the unsent upload (DELETE /api/uploads/{id}/). The message
// box becomes the caption; conversation.js sends the upload's id with the message.
//
// The server decides what it takes: its refusals (413 too large, 415 not a type it accepts, 429
// over a quota or a throttle, 400) are shown in the #composer-error alert. The only check made
// here is the size, against the limit the server publishes (GET /api/uploads/limits/, read at
// the first file of the tab) or, failing that, the one an earlier 413 named.

import { announce, h, setAlert } from "../dom.js";
import { deleteJSON, getJSON, uploadFile } from "../http.js";
import { UPLOAD_LIMIT_KEY } from "../keys.js";
import { fromUpload, kindWord } from "../protocol.js";
import { fileExtension, formatBytes } from "./media.js";

const UPLOADS_URL = "/api/uploads/";
const LIMITS_URL = "/api/uploads/limits/";
const RENEWAL_WAIT_MS = 5000;

// Names for the types of §15.1, for "You can send ..." after a 415.
const TYPE_NAMES = {
  "image/jpeg": "JPEG",
  "image/png": "PNG",
  "image/gif": "GIF",
  "image/webp": "WebP",
  "video/mp4": "MP4",
  "video/webm": "WebM",
  "video/quicktime": "QuickTime",
  "audio/mpeg": "MP3",
  "audio/ogg": "Ogg",
  "audio/wav": "WAV",
  "audio/flac": "FLAC",
  "audio/mp4": "M4A",
  "audio/webm": "WebM",
  "application/pdf": "PDF",
  "application/zip": "ZIP",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Office",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Office",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": "Office",
  "application/vnd.oasis.opendocument.text": "OpenDocument",
  "application/vnd.oasis.opendocument.spreadsheet": "OpenDocument",
  "application/vnd.oasis.opendocument.presentation": "OpenDocument",
  "text/plain": "plain text",
};
const TYPE_GROUPS = [["image/", "pictures"], ["video/", "videos"], ["audio/", "audio"], ["", "documents"]];

/** "pictures (JPEG, PNG), videos (MP4) and documents (PDF, plain text)". */
export function allowedText(types) {
  const groups = TYPE_GROUPS.map(([prefix, label]) => ({ prefix, label, names: [] }));
  for (const type of Array.isArray(types) ? types : []) {
    const group = groups.find((g) => String(type).startsWith(g.prefix));
    const name = TYPE_NAMES[type] || String(type).split("/").pop();
    if (!group.names.includes(name)) group.names.push(name);
  }
  const parts = groups.filter((g) => g.names.length).map((g) => `${g.label} (${g.names.join(", ")})`);
  if (parts.length < 2) return parts.join("");
  return `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

function waitText(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 90) return `${minutes} minutes`;
  return `${Math.ceil(minutes / 60)} hours`;
}

function knownLimit() {
  const value = Number.parseInt(sessionStorage.getItem(UPLOAD_LIMIT_KEY) || "", 10);
  return Number.isFinite(value) && value > 0 ? value : null;
}

function learnLimit(bytes) {
  if (!(Number(bytes) > 0)) return;
  const known = knownLimit();
  sessionStorage.setItem(UPLOAD_LIMIT_KEY, String(known ? Math.min(known, bytes) : bytes));
}

/** Read the server's upload limit once per tab; a failure leaves the 413 path to learn it. */
async function fetchLimits() {
  if (knownLimit()) return;
  const result = await getJSON(LIMITS_URL);
  const bytes = result.status === 200 && result.data ? Number(result.data.max_bytes) : 0;
  if (bytes > 0) sessionStorage.setItem(UPLOAD_LIMIT_KEY, String(bytes));
}

function tooLarge(name, size, limit) {
  return `${name} is too large to send (${formatBytes(size)}): files can be up to ${formatBytes(limit)}.`;
}

/** What to tell the person about a refused or failed upload. */
export function refusal(result, file) {
  const { status, data, retryAfter } = result;
  const name = file.name || "The file";
  const extra = (data && data.extra) || {};
  const message = (data && data.message) || "";
  if (status === 413) {
    if (extra.max_pixels) return `${name} is too large a picture: at most ${Math.floor(extra.max_pixels / 1e6)} megapixels.`;
    if (extra.max_bytes) return tooLarge(name, file.size, extra.max_bytes);
    return `${name} is too large to send.`;
  }
  if (status === 415) {
    const allowed = allowedText(extra.allowed_types);
    return `${name} cannot be sent: the server does not accept this kind of file.${allowed ? ` You can send ${allowed}.` : ""}`;
  }
  if (status === 429) {
    const later = retryAfter ? ` Try again in ${waitText(retryAfter)}.` : "";
    if (data && data.code === "throttled") return `Too many uploads in a short time.${later || " Try again in a moment."}`;
    return `${message || "Upload limit reached."}${later}`;
  }
  if (status === 401) return "Your session has ended: reload the page to log in again.";
  if (status === 403) return "The upload was refused. Reload the page and try again.";
  if (status === 0) return `Could not upload ${name}: no connection to the server.`;
  if (status === 400 && message) return `Could not upload ${name}: ${message}`;
  return `Could not upload ${name}${message ? `: ${message}` : " (server error)."}`;
}

export class Attachments {
  /**
   * el: {button, input, tray, error, dropZone, box (the message box)}. hooks: onChange() when
   * there is a file or none any more; renewed(ms) resolves once the socket stored a fresh login
   * cookie (or after ms), for one retry of an upload refused with 401.
   */
  constructor(el, hooks) {
    this.el = el;
    this.hooks = hooks;
    this.item = null; // {file, status: "uploading" | "ready", controller, upload, progress}
    this.bind();
  }

  /** The upload a message can be sent with now, or null. */
  get ready() {
    return this.item && this.item.status === "ready" ? this.item.upload : null;
  }

  get busy() {
    return Boolean(this.item && this.item.status === "uploading");
  }

  get any() {
    return Boolean(this.item);
  }

  bind() {
    const { button, input, box, dropZone } = this.el;
    button.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      const files = [...input.files];
      input.value = ""; // picking the same file again fires `change` again
      this.add(files);
    });
    box.addEventListener("paste", (event) => {
      const files = event.clipboardData ? [...event.clipboardData.files] : [];
      if (!files.length) return; // text: pasted as usual
      event.preventDefault();
      this.add(files);
    });
    let depth = 0; // dragenter/dragleave pairs of the zone's children
    const isFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
    dropZone.addEventListener("dragenter", (event) => {
      if (!isFiles(event)) return;
      event.preventDefault();
      depth += 1;
      dropZone.classList.add("drop-target");
    });
    dropZone.addEventListener("dragover", (event) => {
      if (!isFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    dropZone.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) dropZone.classList.remove("drop-target");
    });
    dropZone.addEventListener("drop", (event) => {
      depth = 0;
      dropZone.classList.remove("drop-target");
      if (!isFiles(event)) return;
      event.preventDefault();
      this.add([...event.dataTransfer.files]);
    });
    // A file dropped anywhere else must not replace the chat with the file.
    for (const type of ["dragover", "drop"]) {
      window.addEventListener(type, (event) => {
        if (isFiles(event) && !dropZone.contains(event.target)) event.preventDefault();
      });
    }
  }

  /** Attach the first of `files` (one file per message), replacing what was attached. */
  async add(files) {
    const file = files.find((f) => f instanceof File);
    if (!file) return;
    this.discard();
    this.say("");
    // Asked at the first file, not at page load: a visitor who is not logged in asks nothing.
    await fetchLimits();
    const limit = knownLimit();
    if (limit && file.size > limit) {
      this.say(tooLarge(file.name || "The file", file.size, limit));
      return;
    }
    const item = { file, status: "uploading", controller: new AbortController(), upload: null, progress: 0 };
    this.item = item;
    this.render();
    this.upload(item, files.length > 1);
  }

  async upload(item, more) {
    const send = () => uploadFile(UPLOADS_URL, item.file, {
      signal: item.controller.signal,
      onProgress: (sent, total) => this.progress(item, total ? sent / total : 0),
    });
    let result = await send();
    if (result.status === 401 && !result.aborted && (await this.hooks.renewed(RENEWAL_WAIT_MS))) {
      // The login cookie expired a moment ago; the socket renews it (§2.5): once more.
      result = await send();
    }
    if (this.item !== item || result.aborted) return; // removed or replaced meanwhile
    const upload = result.status === 201 ? fromUpload(result.data) : null;
    if (!upload) {
      if (result.status === 413) learnLimit(result.data && result.data.extra && result.data.extra.max_bytes);
      this.item = null;
      this.render();
      this.say(result.status === 201 ? "The server's answer to the upload was not understood." : refusal(result, item.file));
      return;
    }
    item.status = "ready";
    item.upload = upload;
    this.render();
    const one = more ? " Only one file goes with a message: the first was attached." : "";
    announce(`${upload.name} attached.${one} Add a caption if you like, then send.`);
    const active = document.activeElement;
    if (!active || active === document.body || active === this.el.button) this.el.box.focus();
  }

  progress(item, fraction) {
    item.progress = fraction;
    const bar = this.el.tray.querySelector("progress");
    if (bar && this.item === item) bar.value = Math.round(fraction * 100);
  }

  /** The person removed the attachment: cancel the upload, or delete the unsent upload. */
  remove() {
    const item = this.item;
    if (!item) return;
    this.discard();
    announce(item.status === "uploading" ? "Upload cancelled." : "Attachment removed.");
    this.el.box.focus();
  }

  /** Drop the attachment without a word (another chat was opened): nobody will send it. */
  discard() {
    const item = this.item;
    if (!item) return;
    this.item = null;
    if (item.status === "uploading") item.controller.abort();
    // Best effort: an upload no message uses is deleted by the server after a day anyway.
    else deleteJSON(`${UPLOADS_URL}${encodeURIComponent(item.upload.id)}/`);
    this.render();
  }

  /** The upload goes with the message being sent: it leaves the tray (not deleted). */
  take() {
    const upload = this.ready;
    if (upload) {
      this.item = null;
      this.render();
    }
    return upload;
  }

  /** Show a problem in the composer's alert ("" hides it). */
  say(text) {
    setAlert(this.el.error, text);
  }

  render() {
    const { tray } = this.el;
    const item = this.item;
    this.hooks.onChange();
    if (!item) {
      tray.hidden = true;
      tray.replaceChildren();
      return;
    }
    const name = item.status === "ready" ? item.upload.name : item.file.name || "file";
    const uploading = item.status === "uploading";
    const preview = !uploading && item.upload.kind === "image"
      ? h("img", { class: "attachment-thumb", src: item.upload.url, alt: "" })
      : h("span", { class: "file-badge", "aria-hidden": "true", text: uploading ? "…" : fileExtension(name) });
    const detail = uploading
      ? h("progress", { class: "attachment-progress", max: "100", value: String(Math.round(item.progress * 100)), "aria-label": `Uploading ${name}` })
      : h("span", { class: "attachment-size", text: `${kindWord(item.upload.kind)} · ${formatBytes(item.upload.size)}` });
    tray.replaceChildren(
      preview,
      h("span", { class: "attachment-info" },
        h("span", { class: "attachment-name", text: name }),
        detail),
      h("button", {
        type: "button",
        class: "btn btn-icon btn-small attachment-remove",
        "aria-label": uploading ? `Cancel the upload of ${name}` : `Remove the attachment ${name}`,
        title: uploading ? "Cancel upload" : "Remove attachment",
        text: "×",
        on: { click: () => this.remove() },
      }),
    );
    tray.dataset.state = item.status;
    tray.hidden = false;
  }
}
