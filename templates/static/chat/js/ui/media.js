// Media messages (docs/protocol.md §15): the bodies features.media.render() draws for kinds other
// than "text", and the image viewer.
//
// - image: the picture at a bounded size, with width/height attributes from the attachment so
//   the list does not jump while it loads (loading="lazy"). It is a button: click, Enter or
//   Space open the viewer (a modal <dialog>: Escape closes it and focus returns).
// - video: <video controls preload="metadata">; audio: <audio controls>.
// - file: a card with the name, the size and a download link (the server serves such files as
//   attachments, under their cleaned name).
// - emoji: the text, large.
// Captions go under the media. Everything is built from the attachment's fields with
// textContent and attributes, never from HTML; URLs are the server's own (protocol.js checks
// they are http(s)). Other kinds, or a media message without its file, are left to the caller
// (null: shown as text).

import { $, h } from "../dom.js";
import { isMedia, kindWord } from "../protocol.js";

// The largest box a picture is shown in, in CSS pixels (narrower bubbles shrink it further:
// chat.css gives images max-width: 100% and height: auto, kept in proportion by the attributes).
const IMAGE_BOX = { width: 320, height: 320 };

const UNITS = ["KB", "MB", "GB", "TB"];

/** A size for people: "512 bytes", "48 KB", "1.4 MB" (binary multiples, as file managers do). */
export function formatBytes(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} ${n === 1 ? "byte" : "bytes"}`;
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = value < 10 ? Math.round(value * 10) / 10 : Math.round(value);
  return `${shown} ${UNITS[unit]}`;
}

/** "PDF", "DOCX"...: the name's extension, for a file's badge. */
export function fileExtension(name) {
  const match = /\.([A-Za-z0-9]{1,5})$/.exec(name || "");
  return match ? match[1].toUpperCase() : "FILE";
}

/** The size a picture of `width` x `height` is shown at: at most IMAGE_BOX, never enlarged. */
export function fitted(width, height, box = IMAGE_BOX) {
  if (!(width > 0 && height > 0)) return null;
  const scale = Math.min(1, box.width / width, box.height / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function caption(text) {
  return text ? h("p", { class: "text caption", text }) : null;
}

function image(att, alt) {
  const img = h("img", {
    src: att.url,
    alt,
    loading: "lazy",
    decoding: "async",
    width: att.width || null,
    height: att.height || null,
  });
  // The attributes give the proportions (and the space reserved before the file arrives); the
  // shown width is the fitted one (CSSOM, which the page's CSP allows, unlike style attributes).
  const size = fitted(att.width, att.height);
  if (size) img.style.width = `${size.width}px`;
  const button = h("button", {
    type: "button",
    class: "media-image",
    "aria-label": `Open photo: ${alt}`,
    "aria-haspopup": "dialog",
    on: { click: () => viewer.open(att, alt) },
  }, img);
  return { el: button, width: size ? size.width : null };
}

function video(att, label) {
  return h("video", { class: "media-video", src: att.url, controls: true, preload: "metadata", "aria-label": label },
    // Shown only by browsers that cannot play video at all.
    h("a", { href: att.url, text: `Download ${att.name}` }));
}

function audio(att, label) {
  return h("audio", { class: "media-audio", src: att.url, controls: true, preload: "metadata", "aria-label": label },
    h("a", { href: att.url, text: `Download ${att.name}` }));
}

function fileCard(att) {
  const size = formatBytes(att.size);
  return h("div", { class: "file-card" },
    h("span", { class: "file-badge", "aria-hidden": "true", text: fileExtension(att.name) }),
    h("span", { class: "file-info" },
      h("span", { class: "file-name", text: att.name || "File" }),
      h("span", { class: "file-size", text: size })),
    h("a", {
      class: "btn btn-small file-download",
      href: att.url,
      download: att.name || true,
      "aria-label": `Download ${att.name || "the file"}, ${size}`,
      text: "Download",
    }));
}

/** The body of a message of kind `emoji` or a media kind, or null (the caller shows text). */
export function renderMedia(msg) {
  if (msg.kind === "emoji") return h("p", { class: "text emoji-only", text: msg.content });
  if (!isMedia(msg.kind) || !msg.attachment) return null;
  const att = msg.attachment;
  const text = typeof msg.caption === "string" ? msg.caption : "";
  const label = text || att.name || kindWord(msg.kind);
  // A `file` message may carry any upload (§15.2): it is a card whatever the file is.
  const shown = msg.kind === att.kind ? msg.kind : "file";
  let body;
  let width = null;
  if (shown === "image") ({ el: body, width } = image(att, label));
  else if (shown === "video") body = video(att, label);
  else if (shown === "audio") body = audio(att, label);
  else body = fileCard(att);
  const wrapper = h("div", { class: "media", dataset: { media: shown } }, body, caption(text));
  // The caption wraps at the picture's width instead of widening the bubble.
  if (width) wrapper.style.maxWidth = `${width}px`;
  return wrapper;
}

// --- the image viewer ---------------------------------------------------------------------

const viewer = {
  /** Show the picture full size in the #media-viewer dialog. */
  open(att, alt) {
    const dialog = $("#media-viewer");
    if (!dialog) {
      window.open(att.url, "_blank", "noopener");
      return;
    }
    this.bind(dialog);
    $("#media-viewer-title").textContent = att.name || "Photo";
    const img = $("#media-viewer-img");
    img.alt = alt;
    img.src = att.url;
    const text = $("#media-viewer-caption");
    text.textContent = alt === att.name ? "" : alt;
    text.hidden = !text.textContent;
    $("#media-viewer-open").href = att.url;
    dialog.showModal();
    $("#media-viewer-close").focus();
  },

  bind(dialog) {
    if (dialog.dataset.bound) return;
    dialog.dataset.bound = "1";
    $("#media-viewer-close").addEventListener("click", () => dialog.close());
    // A click on the backdrop (outside the dialog's box) closes it too.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener("close", () => {
      $("#media-viewer-img").removeAttribute("src");
    });
  },
};
