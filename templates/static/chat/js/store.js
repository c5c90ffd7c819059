// Client state: the conversations, their loaded messages, read pointers and group details.
// The server is the source of truth; this is a cache that history pages and live events are
// merged into, keyed by the per-conversation sequence number (Seq), so a page fetched twice or
// a live message that also shows up in history is stored once. Views subscribe to changes.

import { DIRECT, GROUP, SELF } from "./protocol.js";

export class Conversation {
  constructor({ id, kind, title = "", partnerId = null, lastChat = null, seq = 0, unread = 0 }) {
    this.id = id;
    this.kind = kind;
    this.title = title;
    this.partnerId = partnerId;
    this.lastChat = lastChat; // ISO time of the newest message (or of creation)
    this.seq = seq; // newest Seq known to exist
    this.unread = unread;
    this.resetHistory();
    this.pointers = new Map(); // user id -> the highest Seq they have read
    this.delivered = new Map(); // user id -> the highest Seq that reached one of their devices
    this.markedSeq = 0; // the highest Seq this tab reported as read
    // groups
    this.members = new Map(); // id -> name, in joining order
    this.admins = new Set();
    this.owner = null;
    this.description = "";
    this.detailsLoaded = false;
  }

  resetHistory() {
    this.messages = new Map(); // seq -> message
    this.pending = []; // sent by this tab, not acknowledged yet (no Seq)
    this.oldest = null;
    this.newestLoaded = 0;
    this.hasMore = true;
    this.loaded = false;
  }

  /** Loaded messages in Seq order, then this tab's unacknowledged ones. */
  timeline() {
    const sent = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    return sent.concat(this.pending);
  }

  pointer(userId) {
    return this.pointers.get(userId) || 0;
  }

  /** Delivered up to: reading implies delivery. */
  deliveredTo(userId) {
    return Math.max(this.delivered.get(userId) || 0, this.pointer(userId));
  }
}

export class Store extends EventTarget {
  constructor() {
    super();
    this.me = { id: null, name: "" };
    this.conversations = new Map();
    this.openId = null;
    this.online = false;
  }

  emit(what, detail = {}) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what, ...detail } }));
  }

  subscribe(fn) {
    this.addEventListener("change", (event) => fn(event.detail));
  }

  get open() {
    return this.openId ? this.conversations.get(this.openId) || null : null;
  }

  get(id) {
    return this.conversations.get(id) || null;
  }

  selfConversation() {
    for (const conv of this.conversations.values()) if (conv.kind === SELF) return conv;
    return null;
  }

  setMe(id, name) {
    this.me = { id, name };
    this.emit("me");
  }

  setOnline(online, reason = "") {
    this.online = online;
    this.emit("online", { reason });
  }

  /** Add a conversation or update the one we have; returns it. */
  upsert(fields) {
    let conv = this.conversations.get(fields.id);
    if (!conv) {
      conv = new Conversation(fields);
      this.conversations.set(conv.id, conv);
    } else {
      for (const [key, value] of Object.entries(fields)) if (value !== undefined) conv[key] = value;
    }
    this.emit("list");
    return conv;
  }

  remove(id) {
    if (!this.conversations.delete(id)) return;
    if (this.openId === id) this.openId = null;
    this.emit("list");
    this.emit("open");
  }

  /**
   * The greeting's lists (on every connect and reconnect): the server's view replaces ours.
   * Conversations of `kind` that are not listed any more (left or kicked while offline) go.
   */
  applyList(kind, entries) {
    const seen = new Set();
    for (const entry of entries) {
      seen.add(entry.id);
      // Loaded history stays: opening a chat always fetches its newest page and merges it.
      this.upsert({ ...entry, kind });
    }
    for (const conv of [...this.conversations.values()]) {
      if (conv.kind === kind && !seen.has(conv.id)) this.remove(conv.id);
    }
    this.emit("list");
  }

  setOpen(id) {
    this.openId = id;
    this.emit("open");
    this.emit("list");
  }

  /** Conversations for the sidebar: notes to self first, then by last activity. */
  sorted() {
    const list = [...this.conversations.values()];
    const time = (c) => (c.lastChat ? Date.parse(c.lastChat) || 0 : 0);
    return list.sort((a, b) => {
      if (a.kind === SELF) return -1;
      if (b.kind === SELF) return 1;
      return time(b) - time(a);
    });
  }

  totalUnread() {
    let total = 0;
    for (const conv of this.conversations.values()) total += conv.unread;
    return total;
  }

  // --- messages -------------------------------------------------------------------------

  _put(conv, msg) {
    const existing = conv.messages.get(msg.seq);
    if (existing && existing.id === msg.id) msg.key = existing.key; // keep the element
    conv.messages.set(msg.seq, msg);
    // Read receipts: "Read" for a member means their pointer is at least this Seq.
    if (msg.readStatus) {
      for (const [userId, status] of Object.entries(msg.readStatus)) {
        if (status === "Read" && msg.seq > conv.pointer(userId)) conv.pointers.set(userId, msg.seq);
      }
    }
    // A sender has read their own message.
    if (msg.senderId && msg.kind === "text" && msg.seq > conv.pointer(msg.senderId)) conv.pointers.set(msg.senderId, msg.seq);
    if (msg.seq > conv.newestLoaded) conv.newestLoaded = msg.seq;
    if (conv.oldest === null || msg.seq < conv.oldest) conv.oldest = msg.seq;
    if (msg.seq > conv.seq) conv.seq = msg.seq;
    if (msg.ts && (!conv.lastChat || Date.parse(msg.ts) >= Date.parse(conv.lastChat)) && msg.seq >= conv.seq) {
      conv.lastChat = msg.ts;
    }
  }

  /**
   * Merge one history page (newest first). `before` is null for the newest page. When the
   * newest page does not reach what we hold (more missed than one page), what we hold is
   * dropped: the page is the new bottom and scrolling back fetches the rest.
   */
  mergePage(conv, messages, { before = null, limit }) {
    const seqs = messages.map((m) => m.seq);
    const lowest = seqs.length ? Math.min(...seqs) : null;
    if (before === null && conv.loaded && lowest !== null && lowest > conv.newestLoaded + 1) {
      const pending = conv.pending;
      conv.resetHistory();
      conv.pending = pending;
    }
    for (const msg of messages) this._put(conv, msg);
    // Drop our unacknowledged copies the page already holds (a resend after reconnect).
    conv.pending = conv.pending.filter((p) => !messages.some((m) => m.id === p.id));
    if (before !== null || !conv.loaded) {
      conv.hasMore = messages.length >= limit && lowest !== null && lowest > 1;
      if (messages.length === 0) conv.hasMore = false;
    }
    conv.loaded = true;
    this.emit("messages", { id: conv.id, older: before !== null });
    this.emit("list");
  }

  /** The unread count a newest page tells: exact when our read pointer is inside it. */
  unreadFromPage(conv, messages) {
    const mine = conv.pointer(this.me.id);
    if (!messages.length) return 0;
    const lowest = Math.min(...messages.map((m) => m.seq));
    if (mine >= lowest - 1) return Math.max(0, conv.seq - mine);
    return messages.length;
  }

  /**
   * A live message. Returns "added", "duplicate", or "gap" (Seq jumped past what we hold:
   * the caller fetches the newest page to fill it).
   */
  addLive(conv, msg) {
    if (conv.messages.has(msg.seq)) return "duplicate";
    const gap = conv.loaded && msg.seq > conv.newestLoaded + 1;
    // The open chat keeps a message that arrives while its first page is on the way (the page
    // may have been read just before the message was stored). Others load when opened.
    if (conv.loaded || conv.id === this.openId) this._put(conv, msg);
    else {
      if (msg.seq > conv.seq) conv.seq = msg.seq;
      conv.lastChat = msg.ts || conv.lastChat;
    }
    this.emit("messages", { id: conv.id, live: true });
    this.emit("list");
    return gap ? "gap" : "added";
  }

  addPending(conv, msg) {
    conv.pending.push(msg);
    this.emit("messages", { id: conv.id, own: true });
  }

  /** The server stored a message this tab sent: it takes its place in Seq order. */
  confirm(conv, msg, ack) {
    conv.pending = conv.pending.filter((p) => p !== msg);
    msg.id = ack.Id;
    msg.seq = ack.Seq;
    msg.ts = ack.Timestamp;
    msg.state = "sent";
    if (!conv.messages.has(msg.seq)) {
      conv.messages.set(msg.seq, msg);
      if (msg.seq > conv.newestLoaded) conv.newestLoaded = msg.seq;
      if (conv.oldest === null) conv.oldest = msg.seq;
    }
    if (msg.seq > conv.seq) conv.seq = msg.seq;
    conv.lastChat = msg.ts;
    // Sending moves our own read pointer to the message.
    if (msg.seq > conv.pointer(this.me.id)) conv.pointers.set(this.me.id, msg.seq);
    if (msg.seq > conv.markedSeq) conv.markedSeq = msg.seq;
    this.emit("messages", { id: conv.id });
    this.emit("list");
  }

  /** A message taken back (a moderator hid or deleted it): keep its place, drop its text. */
  blank(conv, seq, hidden) {
    const msg = conv.messages.get(seq);
    if (!msg) return;
    conv.messages.set(seq, { ...msg, kind: "removed", content: hidden ? "Message hidden by a moderator" : "Message deleted" });
    this.emit("messages", { id: conv.id });
  }

  fail(conv, msg) {
    msg.state = "failed";
    this.emit("messages", { id: conv.id });
  }

  retrying(conv, msg) {
    msg.state = "pending";
    this.emit("messages", { id: conv.id });
  }

  setPointer(conv, userId, seq) {
    if (seq > conv.pointer(userId)) {
      conv.pointers.set(userId, seq);
      this.emit("receipts", { id: conv.id });
    }
  }

  /** A member's device received the messages up to `seq` (a delivered receipt). */
  setDelivered(conv, userId, seq) {
    if (seq > (conv.delivered.get(userId) || 0)) {
      conv.delivered.set(userId, seq);
      this.emit("receipts", { id: conv.id });
    }
  }

  setUnread(conv, unread) {
    if (conv.unread !== unread) {
      conv.unread = unread;
      this.emit("list");
    }
  }

  // --- groups ---------------------------------------------------------------------------

  /** The member list and roles from a `group-chat` page. */
  setGroupDetails(conv, page) {
    conv.title = page.Name || conv.title;
    conv.description = page.Description || "";
    conv.members = new Map(Object.entries(page.Participants || {}));
    conv.admins = new Set(Array.isArray(page.Admins) ? page.Admins : []);
    conv.owner = page.Owner || null;
    conv.detailsLoaded = true;
    this.emit("group", { id: conv.id });
    this.emit("list");
  }

  isAdmin(conv) {
    return conv.kind === GROUP && conv.admins.has(this.me.id);
  }

  /** Who has read one of my messages: {read, delivered, of}; groups add the readers' names. */
  receipt(conv, msg) {
    if (conv.kind === DIRECT) {
      const partner = conv.partnerId || [...conv.pointers.keys()].find((id) => id !== this.me.id);
      if (!partner) return { read: 0, delivered: 0, of: 1 };
      return { read: conv.pointer(partner) >= msg.seq ? 1 : 0, delivered: conv.deliveredTo(partner) >= msg.seq ? 1 : 0, of: 1 };
    }
    if (conv.kind === GROUP) {
      const others = [...conv.members.keys()].filter((id) => id !== this.me.id);
      const readers = others.filter((id) => conv.pointer(id) >= msg.seq);
      return { read: readers.length, of: others.length, names: readers.map((id) => conv.members.get(id)) };
    }
    return null;
  }
}
