// The ExpressChat wire format (docs/protocol.md), translated to and from the client's own
// shapes. Pure functions: no DOM, no socket. Every message becomes
//   {key, id, seq, senderId, senderName, content, ts, kind, state, readStatus}
// whatever event or history page it came from.

export const SELF = "self";
export const DIRECT = "direct";
export const GROUP = "group";

export const HISTORY_PAGE = 50;

function message(fields) {
  return { state: "sent", readStatus: null, clientId: null, ...fields, key: `m:${fields.id}` };
}

/** History entries carry `Hidden`/`Deleted` when a moderator took the message back. */
function removed(m, msg) {
  if (!m.Hidden && !m.Deleted) return msg;
  return { ...msg, kind: "removed", content: m.Deleted ? "Message deleted" : "Message hidden by a moderator" };
}

/** A `personal-chat` history entry; `Sender` is an id there. */
export function fromPersonalHistory(m, page, me) {
  const mine = m.Sender === me.id;
  return removed(m, message({
    id: m._id,
    seq: m.Seq,
    senderId: m.Sender,
    senderName: mine ? me.name : page.Partner || "",
    content: m.Content,
    ts: m.Timestamp,
    kind: "text",
    readStatus: m.ReadStatus || null,
  }));
}

export function fromSelfHistory(m, me) {
  return removed(m, message({ id: m._id, seq: m.Seq, senderId: me.id, senderName: me.name, content: m.Content, ts: m.Timestamp, kind: "text" }));
}

/** A `group-chat` history entry; `Sender` is a name there, the id is `SenderId`. */
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
  }));
}

/** A live receive-personal-message / receive-group-message. */
export function fromLive(p) {
  return message({ id: p.Id, seq: p.Seq, senderId: p.SenderId, senderName: p.Sender || "", content: p.Content, ts: p.Timestamp, kind: "text" });
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
  const list = Array.isArray(page.Messages) ? page.Messages : [];
  if (conv.kind === SELF) return list.map((m) => fromSelfHistory(m, me));
  if (conv.kind === GROUP) return list.map(fromGroupHistory);
  return list.map((m) => fromPersonalHistory(m, page, me));
}

export function sendRequest(conv, content, clientId) {
  if (conv.kind === SELF) return ["send-self-message", { Content: content, ClientMessageId: clientId }];
  if (conv.kind === GROUP) return ["send-group-message", { GroupId: conv.id, Content: content, ClientMessageId: clientId }];
  return ["send-personal-message", { ChatId: conv.id, Content: content, ClientMessageId: clientId }];
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
