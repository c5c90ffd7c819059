// The ExpressChat wire format (docs/protocol.md), translated to and from the client's own
// shapes. Pure functions: no DOM, no socket. Every message becomes
//   {key, id, seq, rev, senderId, senderName, content, ts, kind, state, readStatus, clientId,
//    editedAt, replyTo, reactions, myReactions, removed, was, caption, attachment}
// whatever event, history page or sync answer it came from:
// - rev: the Rev of the state held (§14.1), null when the server sent none;
// - kind: "text", "system", "removed", or another kind the server sends (§15: "emoji", and the
//   media kinds, whose `attachment` {id, kind, url, type, size, name, width, height} and
//   `caption` are kept for features.media; their `content` is the caption and the file's URL);
// - replyTo: the quote, {id, seq, kind, sender, senderId, excerpt, deleted}, or null (§13.3);
// - reactions: [{emoji, count}], most used first; myReactions: the emoji that are ours (§13.5);
// - removed: null, "deleted" or "hidden" (then kind is "removed", content a placeholder such as
//   "Photo deleted", and `was` the kind it had).

export const SELF = "self";
export const DIRECT = "direct";
export const GROUP = "group";

export const HISTORY_PAGE = 50;
export const EXCERPT_LENGTH = 100; // the server's quote excerpt, in characters (§13.3)

function message(fields) {
  return {
    state: "sent",
    readStatus: null,
    clientId: null,
    rev: null,
    editedAt: null,
    replyTo: null,
    reactions: [],
    myReactions: [],
    removed: null,
    caption: null,
    attachment: null,
    was: null,
    ...fields,
    key: `m:${fields.id}`,
  };
}

function revOf(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** The first characters of a text, as the server cuts a quote's excerpt (code points). */
export function excerpt(text) {
  return Array.from(String(text || "")).slice(0, EXCERPT_LENGTH).join("");
}

export const MEDIA_KINDS = new Set(["image", "video", "audio", "file"]);

export function isMedia(kind) {
  return MEDIA_KINDS.has(kind);
}

const KIND_WORDS = { image: "Photo", video: "Video", audio: "Voice message", file: "File" };

/** The text a quote of `msg` shows: a media message's caption, else its text. */
export function quoteText(msg) {
  return typeof msg.caption === "string" ? msg.caption : msg.content;
}

/** What stands for a quoted message without text (a photo without a caption). */
export function kindWord(kind) {
  return KIND_WORDS[kind] || "Message";
}

/** A tombstone's text: "Photo deleted", "Message hidden by a moderator"... (§12, §15.3). */
export function removedText(kind, how = "deleted") {
  const what = kindWord(kind);
  return how === "hidden" ? `${what} hidden by a moderator` : `${what} deleted`;
}

/** One line about a message, for announcements: "Photo: Look!" for media, else the text. */
export function messagePreview(msg) {
  if (!isMedia(msg.kind)) return msg.content;
  const caption = quoteText(msg);
  return caption ? `${kindWord(msg.kind)}: ${caption}` : kindWord(msg.kind);
}

/** A media message's `Content` as the server builds it for original clients (§15): the
 * caption, then the file's URL on its own line; the URL alone without a caption. */
export function mediaContent(caption, attachment) {
  const url = attachment ? attachment.url : "";
  return caption ? `${caption}\n${url}` : url;
}

// An emoji message (§15.2) as the server checks it (messaging/services.py `_is_emoji_only`):
// symbols (category So), joiners and variation selectors, skin tones, keycaps, flag tags.
const EMOJI_ONLY = /^(?:\p{So}|[\u200d\ufe0e\ufe0f\u20e3]|[\u{1F3FB}-\u{1F3FF}]|[\u{E0020}-\u{E007F}]|[0-9#*](?=[\u200d\ufe0e\ufe0f]?\u20e3))+$/u;
export const EMOJI_MESSAGE_MAX = 48; // CHAT_EMOJI_MESSAGE_MAX_LENGTH's default, in code points

/** Whether `text` can go as an emoji message (shown large). The server has the last word: a
 * refusal sends the text as a text message instead (app.js). */
export function isEmojiOnly(text) {
  const length = Array.from(text).length;
  return length > 0 && length <= EMOJI_MESSAGE_MAX && EMOJI_ONLY.test(text);
}

/** Code point order, as the server breaks ties between reactions of the same count. */
function byCodePoint(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Reactions in the server's order: most used first, then by emoji. */
export function sortReactions(list) {
  return list.filter((r) => r.count > 0).sort((a, b) => b.count - a.count || byCodePoint(a.emoji, b.emoji));
}

/** A `ReplyTo` object (live events, history, sync) in the client's shape. */
export function fromQuote(r) {
  if (!r || typeof r !== "object" || !r.Id) return null;
  return {
    id: r.Id,
    seq: r.Seq,
    kind: r.Kind || "text",
    sender: r.Sender || "",
    senderId: r.SenderId || null,
    excerpt: r.Excerpt || "",
    deleted: Boolean(r.Deleted),
  };
}

/** §15.3: a media message's file, in the client's shape (null for every other kind). The URL
 * is used as the server gives it (PUBLIC_BASE_URL + MEDIA_URL), if it is http(s). */
export function fromAttachment(a) {
  if (!a || typeof a !== "object" || !webUrl(a.Url)) return null;
  return {
    id: a.Id,
    kind: a.Kind,
    url: a.Url,
    type: a.Type || "",
    size: Number(a.Size) || 0,
    name: a.Name || "",
    width: a.Width || null,
    height: a.Height || null,
  };
}

/** An upload's answer (POST /api/uploads/, §15.1) in the same shape: the REST keys are the
 * snake_case twins of the socket's. */
export function fromUpload(u) {
  if (!u || typeof u !== "object" || !u.id) return null;
  return fromAttachment({
    Id: u.id, Kind: u.kind, Url: u.url, Type: u.content_type, Size: u.size, Name: u.name, Width: u.width, Height: u.height,
  });
}

function webUrl(url) {
  if (typeof url !== "string") return false;
  try {
    const { protocol } = new URL(url, "http://relative.invalid/"); // a relative URL is fine too
    return protocol === "https:" || protocol === "http:";
  } catch {
    return false;
  }
}

function media(m) {
  return { caption: typeof m.Caption === "string" ? m.Caption : null, attachment: fromAttachment(m.Attachment) };
}

/** The §13.5 keys every history and sync message carries. */
function extras(m) {
  const counts = m.Reactions && typeof m.Reactions === "object" ? m.Reactions : {};
  return {
    ...media(m),
    rev: revOf(m.Rev),
    editedAt: m.EditedAt || null,
    replyTo: fromQuote(m.ReplyTo),
    reactions: sortReactions(Object.entries(counts).map(([emoji, count]) => ({ emoji, count: Number(count) || 0 }))),
    myReactions: Array.isArray(m.MyReactions) ? m.MyReactions.filter((e) => typeof e === "string") : [],
  };
}

/** A message taken back: its place stays, its text, file, quote and reactions go; `was` keeps
 * its kind, so a photo's tombstone says "Photo deleted". */
export function tombstone(msg, how = "deleted") {
  const was = msg.kind === "removed" ? msg.was : msg.kind;
  return {
    ...msg,
    kind: "removed",
    was,
    removed: how,
    content: removedText(was, how),
    editedAt: null,
    replyTo: null,
    reactions: [],
    myReactions: [],
    caption: null,
    attachment: null,
  };
}

/** History and sync entries carry `Hidden`/`Deleted` for a message taken back. */
function removed(m, msg) {
  if (m.Hidden) return tombstone(msg, "hidden");
  if (m.Deleted) return tombstone(msg, "deleted");
  return msg;
}

/** A `personal-chat` history (or direct-chat sync) entry; `Sender` is an id there. */
export function fromPersonalHistory(m, partnerName, me) {
  const mine = m.Sender === me.id;
  return removed(m, message({
    id: m._id,
    seq: m.Seq,
    senderId: m.Sender,
    senderName: mine ? me.name : partnerName || "",
    content: m.Content,
    ts: m.Timestamp,
    kind: m.Kind || "text",
    readStatus: m.ReadStatus || null,
    ...extras(m),
  }));
}

export function fromSelfHistory(m, me) {
  return removed(m, message({
    id: m._id,
    seq: m.Seq,
    senderId: me.id,
    senderName: me.name,
    content: m.Content,
    ts: m.Timestamp,
    kind: m.Kind || "text",
    ...extras(m),
  }));
}

/** A `group-chat` history (or group sync) entry; `Sender` is a name there, the id is `SenderId`. */
export function fromGroupHistory(m) {
  return removed(m, message({
    id: m.Id,
    seq: m.Seq,
    senderId: m.SenderId,
    senderName: m.Sender || "",
    content: m.Content,
    ts: m.Timestamp,
    kind: m.Kind || "text",
    readStatus: m.ReadStatus || null,
    ...extras(m),
  }));
}

/** A live receive-personal-message / receive-group-message / system-message. */
export function fromLive(p) {
  return message({
    id: p.Id,
    seq: p.Seq,
    rev: revOf(p.Rev),
    senderId: p.SenderId,
    senderName: p.Sender || "",
    content: p.Content,
    ts: p.Timestamp,
    kind: p.Kind || "text",
    replyTo: fromQuote(p.ReplyTo),
    ...media(p),
  });
}

/** The fetch request for a conversation's history: [event, payload, reply event, match]. */
export function historyRequest(conv, { before = null, limit = HISTORY_PAGE } = {}) {
  const paging = { Limit: limit };
  if (before !== null) paging.Before = before;
  if (conv.kind === SELF) return ["fetch-self-chat", paging, "self-chat", () => true];
  if (conv.kind === GROUP) {
    return ["fetch-group-chat", { GroupId: conv.id, ...paging }, "group-chat", (p) => p && p.GroupId === conv.id];
  }
  return ["fetch-personal-chat", { ChatId: conv.id, ...paging }, "personal-chat", (p) => p && p.ChatId === conv.id];
}

/** The messages of a history reply, newest first as the server sends them. */
export function historyMessages(conv, page, me) {
  return syncMessages(conv, Array.isArray(page.Messages) ? page.Messages : [], me, page.Partner);
}

/** Messages in a history page's shape for `conv` (a sync answer's `Messages` use it too). */
export function syncMessages(conv, list, me, partnerName = null) {
  if (!Array.isArray(list)) return [];
  if (conv.kind === SELF) return list.map((m) => fromSelfHistory(m, me));
  if (conv.kind === GROUP) return list.map(fromGroupHistory);
  return list.map((m) => fromPersonalHistory(m, partnerName || conv.title, me));
}

/** A send (§5, §13.3, §15.2). `content` is a media message's caption; `kind` is given for
 * "emoji" only (a media message takes its upload's kind). */
export function sendRequest(conv, content, clientId, { replyTo = null, attachmentId = null, kind = null } = {}) {
  const extra = {};
  if (replyTo) extra.ReplyTo = replyTo;
  if (attachmentId) extra.AttachmentId = attachmentId;
  if (kind) extra.Kind = kind;
  if (conv.kind === SELF) return ["send-self-message", { Content: content, ClientMessageId: clientId, ...extra }];
  if (conv.kind === GROUP) return ["send-group-message", { GroupId: conv.id, Content: content, ClientMessageId: clientId, ...extra }];
  return ["send-personal-message", { ChatId: conv.id, Content: content, ClientMessageId: clientId, ...extra }];
}

/** §13: a message is named by its chat (any kind, the self chat's real id too) and its id. */
export function editRequest(conv, msg, content) {
  return ["edit-message", { ChatId: conv.id, Id: msg.id, Content: content }];
}

export function deleteRequest(conv, msg) {
  return ["delete-message", { ChatId: conv.id, Id: msg.id }];
}

export function reactRequest(conv, msg, emoji, add) {
  return [add ? "react" : "unreact", { ChatId: conv.id, Id: msg.id, Emoji: emoji }];
}

/** §14.3: positions (chat id -> Rev) and whether to add every other chat from 0. */
export function syncRequest(positions, all) {
  return ["sync", { Positions: positions, All: Boolean(all) }];
}

/** The read event for a conversation, or null for the self chat (nobody to tell). */
export function readRequest(conv, seq) {
  if (conv.kind === GROUP) return ["read-group-message", { GroupId: conv.id, Seq: seq }];
  if (conv.kind === DIRECT) return ["read-personal-message", { ChatId: conv.id, Seq: seq }];
  return null;
}

/** A ClientMessageId: random, so a retry after a timeout or reconnect is never stored twice.
 * crypto.getRandomValues works on plain http too (randomUUID needs a secure context). */
export function newClientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
