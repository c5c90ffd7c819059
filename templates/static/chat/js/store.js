// Client state: the conversations, their loaded messages, read pointers and group details.
// The server is the source of truth; this is a cache that history pages, live events, acks and
// sync answers are merged into, keyed by the per-conversation sequence number (Seq), so a page
// fetched twice or a live message that also shows up in history is stored once. Views
// subscribe to changes.
//
// Resync bookkeeping (docs/protocol.md §14.2): each message keeps the Rev of the state held,
// and a change is applied only when its Rev is higher. Each conversation keeps its position
// (`rev`: the highest Rev everything is held up to, null while unknown) and the Revs seen above
// it (`revsAhead`); a hole between the two is a gap that resync.js fills with `sync`. The
// chat's newest Rev as the greeting told it (`latestRev`) is the position of a chat we hold
// no messages of.
//
// The loaded history of a conversation is one window of Seqs, [oldest, newest]: history pages
// grow it downwards, live messages upwards. Changes to messages below the window are not kept
// (the page that loads them later brings their current state).

import { DIRECT, GROUP, SELF, excerpt, quoteText, sortReactions, tombstone } from "./protocol.js";

export class Conversation {
  constructor({ id, kind, title = "", partnerId = null, lastChat = null, seq = 0, unread = 0, latestRev = null }) {
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
    this.rev = null; // position: everything up to this Rev is held (null: unknown, nothing held)
    this.revsAhead = new Set(); // Revs applied above the position, past a hole
    this.latestRev = latestRev; // the chat's newest Rev when the server last said (null: unknown)
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

  /** Whether a message of this Seq belongs to the loaded window (or would extend it upwards). */
  inWindow(seq) {
    return this.loaded && !(this.hasMore && this.oldest !== null && seq < this.oldest);
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

  /**
   * Store `msg` in its Seq slot. A held message of the same id is replaced only by a state at
   * least as new (§14.2: by Rev; an equal Rev is the same state, maybe with fresher read
   * receipts). Returns false when what is held is newer.
   */
  _put(conv, msg) {
    const existing = conv.messages.get(msg.seq);
    let taken = true;
    if (existing && existing.id === msg.id) {
      msg.key = existing.key; // keep the element
      if (existing.rev !== null && msg.rev !== null && msg.rev < existing.rev) taken = false;
      else if (existing.clientId && !msg.clientId) msg.clientId = existing.clientId;
    }
    if (taken) conv.messages.set(msg.seq, msg);
    // Read receipts: "Read" for a member means their pointer is at least this Seq.
    if (msg.readStatus) {
      for (const [userId, status] of Object.entries(msg.readStatus)) {
        if (status === "Read" && msg.seq > conv.pointer(userId)) conv.pointers.set(userId, msg.seq);
      }
    }
    // A sender has read their own message.
    if (msg.senderId && msg.kind !== "system" && msg.seq > conv.pointer(msg.senderId)) conv.pointers.set(msg.senderId, msg.seq);
    if (msg.seq > conv.newestLoaded) conv.newestLoaded = msg.seq;
    if (conv.oldest === null || msg.seq < conv.oldest) conv.oldest = msg.seq;
    this._seen(conv, msg);
    return taken;
  }

  /** A message exists (held or not): the conversation's newest Seq and last activity. */
  _seen(conv, msg) {
    if (msg.seq > conv.seq) conv.seq = msg.seq;
    if (msg.ts && (!conv.lastChat || Date.parse(msg.ts) >= Date.parse(conv.lastChat)) && msg.seq >= conv.seq) {
      conv.lastChat = msg.ts;
    }
  }

  /**
   * Merge one history page (newest first). `before` is null for the newest page. When the
   * newest page does not reach what we hold (more missed than one page), what we hold is
   * dropped: the page is the new bottom and scrolling back fetches the rest.
   *
   * The newest page, when it reaches down to everything held, also gives a position: the
   * chat's Rev the server read before the page (`rev`, §14.2), or else the highest Rev on the
   * page. Every held message is at least that new, and every message created up to that Rev
   * is on the page or above it (changes to older ones wait for the page that loads them).
   */
  mergePage(conv, messages, { before = null, limit, rev = null }) {
    const seqs = messages.map((m) => m.seq);
    const lowest = seqs.length ? Math.min(...seqs) : null;
    let heldFrom = conv.messages.size ? conv.oldest : null;
    if (before === null && conv.loaded && lowest !== null && lowest > conv.newestLoaded + 1) {
      const pending = conv.pending;
      conv.resetHistory();
      conv.pending = pending;
      heldFrom = null;
    }
    for (const msg of messages) this._put(conv, msg);
    // Drop our unacknowledged copies the page already holds (a resend after reconnect).
    conv.pending = conv.pending.filter((p) => !messages.some((m) => m.id === p.id));
    if (before !== null || !conv.loaded) {
      conv.hasMore = messages.length >= limit && lowest !== null && lowest > 1;
      if (messages.length === 0) conv.hasMore = false;
    }
    conv.loaded = true;
    if (before === null && (heldFrom === null || (lowest !== null && lowest <= heldFrom))) {
      const revs = messages.map((m) => m.rev).filter((r) => r !== null);
      if (typeof rev === "number") this.setPosition(conv, rev);
      else if (revs.length === messages.length) this.setPosition(conv, revs.length ? Math.max(...revs) : 0);
    }
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
   * A live message. Returns "added", "duplicate" (held already, maybe from a sync), or "gap"
   * (Seq jumped past what we hold; only for servers that send no Rev, whose gaps resync.js
   * cannot see: the caller fetches the newest page).
   */
  addLive(conv, msg) {
    const held = conv.messages.get(msg.seq);
    if (held && held.id === msg.id) return "duplicate";
    const gap = msg.rev === null && conv.loaded && msg.seq > conv.newestLoaded + 1;
    // The open chat keeps a message that arrives while its first page is on the way (the page
    // may have been read just before the message was stored). Others load when opened.
    if (conv.loaded || conv.id === this.openId) this._put(conv, msg);
    else this._seen(conv, msg);
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
    msg.rev = typeof ack.Rev === "number" ? ack.Rev : null;
    msg.state = "sent";
    const held = conv.messages.get(msg.seq);
    if (!held) {
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

  // --- changes to existing messages (§13): live events, acks, sync ------------------------

  /** The held message a change names (same Seq and id), if the change is news for it (or, with
   * `orSame`, at least as new as what is held). */
  _target(conv, id, seq, rev, { orSame = false } = {}) {
    const msg = conv.messages.get(seq);
    if (!msg || msg.id !== id) return null;
    if (rev !== null && rev !== undefined && msg.rev !== null && (orSame ? rev < msg.rev : rev <= msg.rev)) return null;
    return msg;
  }

  _holds(conv, id, seq) {
    const msg = conv.messages.get(seq);
    return Boolean(msg && msg.id === id);
  }

  /** Replace a held message by a changed copy (new object: views compare what they show). */
  _replace(conv, msg, changes) {
    const next = { ...msg, ...changes };
    conv.messages.set(msg.seq, next);
    this.emit("messages", { id: conv.id });
    return next;
  }

  /** A message's text changed (`message-edited`, or the ack of our own edit). A media
   * message's edit changes its caption (`caption`, when given); `content` is rebuilt with it. */
  applyEdit(conv, { id, seq, rev = null, content, caption = null, editedAt }) {
    const msg = this._target(conv, id, seq, rev);
    if (!msg && this._holds(conv, id, seq)) return false; // old news
    this._requote(conv, id, { content: caption ?? content });
    if (!msg || msg.kind === "removed") return false;
    const changes = { content, editedAt: editedAt || msg.editedAt, rev: rev ?? msg.rev };
    if (caption !== null) changes.caption = caption;
    this._replace(conv, msg, changes);
    return true;
  }

  /** A message was deleted (by its sender or a group admin) or hidden or deleted by a moderator. */
  applyDelete(conv, { id, seq, rev = null, hidden = false }) {
    const msg = this._target(conv, id, seq, rev);
    if (!msg && this._holds(conv, id, seq)) return false; // old news
    this._requote(conv, id, { removed: true });
    if (!msg || msg.kind === "removed") return false;
    const next = tombstone(msg, hidden ? "hidden" : "deleted");
    next.rev = rev ?? msg.rev;
    conv.messages.set(msg.seq, next);
    this.emit("messages", { id: conv.id });
    return true;
  }

  /**
   * One emoji's count on a message changed (`reaction`, or the ack of our own react). An ack
   * says which emoji are ours now (`mine`, §13.4): it is applied even at the Rev we hold (an
   * unchanged react), so a wrong idea of our own reactions is corrected.
   */
  applyReaction(conv, { id, seq, rev = null, emoji, count, userId = null, added, mine = null }) {
    const ack = Array.isArray(mine);
    const msg = this._target(conv, id, seq, rev, { orSame: ack });
    if (!msg || msg.kind === "removed") return false;
    const others = msg.reactions.filter((r) => r.emoji !== emoji);
    const reactions = sortReactions(count > 0 ? [...others, { emoji, count }] : others);
    let myReactions = msg.myReactions;
    if (ack) {
      myReactions = mine.filter((e) => typeof e === "string");
    } else if (userId === this.me.id) {
      myReactions = myReactions.filter((e) => e !== emoji);
      if (added) myReactions.push(emoji);
    }
    myReactions = myReactions.filter((e) => reactions.some((r) => r.emoji === e));
    this._replace(conv, msg, { reactions, myReactions, rev: rev ?? msg.rev });
    return true;
  }

  /** Quotes follow the message they quote: the server cuts each excerpt from its current text. */
  _requote(conv, id, { content = "", removed = false }) {
    const update = (m) => {
      if (!m.replyTo || m.replyTo.id !== id) return m;
      return { ...m, replyTo: { ...m.replyTo, excerpt: removed ? "" : excerpt(content), deleted: removed } };
    };
    let changed = false;
    for (const [seq, m] of conv.messages) {
      const next = update(m);
      if (next !== m) {
        conv.messages.set(seq, next);
        changed = true;
      }
    }
    conv.pending = conv.pending.map((m) => {
      const next = update(m);
      if (next !== m) {
        Object.assign(m, next); // pending messages are referenced by their sends in flight
        changed = true;
      }
      return m;
    });
    if (changed) this.emit("messages", { id: conv.id });
  }

  // --- positions and sync (§14.2) ------------------------------------------------------------

  /** A change with `rev` was applied. Returns true while a hole is open below a Rev seen. */
  noteRev(conv, rev) {
    if (typeof rev !== "number" || conv.rev === null) return false;
    if (rev > conv.rev) {
      conv.revsAhead.add(rev);
      while (conv.revsAhead.delete(conv.rev + 1)) conv.rev += 1;
    }
    return conv.revsAhead.size > 0;
  }

  hasGap(conv) {
    return conv.rev !== null && conv.revsAhead.size > 0;
  }

  /** Everything up to `rev` is held: move the position there (never back, unless `exact`). */
  setPosition(conv, rev, { exact = false } = {}) {
    if (typeof rev !== "number") return;
    conv.rev = exact || conv.rev === null ? rev : Math.max(conv.rev, rev);
    for (const r of [...conv.revsAhead]) if (r <= conv.rev) conv.revsAhead.delete(r);
    while (conv.revsAhead.delete(conv.rev + 1)) conv.rev += 1;
  }

  /**
   * A sync answer's messages for `conv` (whole messages in their current state, in Rev order)
   * and its new position. Returns the messages that are new to us (past the newest Seq known
   * before), for unread counts.
   *
   * - A conversation with nothing held, answered from position 0, got its whole history: it is
   *   loaded, with nothing older to fetch.
   * - A loaded one takes each message by id within its window; changes to older messages wait
   *   for the page that loads them.
   * - Otherwise (not loaded, answered from a position) only the list's Seq and time move.
   */
  applySync(conv, messages, rev) {
    const knownSeq = conv.seq;
    const whole = !conv.loaded && !conv.messages.size && (conv.rev === null || conv.rev === 0);
    if (whole) {
      conv.loaded = true;
      conv.hasMore = false;
    }
    for (const msg of messages) {
      let taken = true;
      if (conv.inWindow(msg.seq)) taken = this._put(conv, msg);
      else this._seen(conv, msg);
      if (taken) this._requote(conv, msg.id, msg.kind === "removed" ? { removed: true } : { content: quoteText(msg) });
    }
    this.setPosition(conv, rev);
    this.emit("messages", { id: conv.id });
    this.emit("list");
    return messages.filter((m) => m.seq > knownSeq);
  }

  /** A sync answer's read state (§14.3, whole in every entry): the newest Seq, and the members'
   * read pointers, which only move forward. */
  applyReadState(conv, { seq, pointers }) {
    if (typeof seq === "number" && seq > conv.seq) {
      conv.seq = seq;
      this.emit("list");
    }
    if (pointers && typeof pointers === "object") {
      for (const [userId, read] of Object.entries(pointers)) if (typeof read === "number") this.setPointer(conv, userId, read);
    }
  }

  /** §14.3 `Reload`: too much changed; drop what is held and start again from `rev`. */
  reload(conv, rev) {
    const pending = conv.pending;
    conv.resetHistory();
    conv.pending = pending;
    conv.revsAhead.clear();
    this.setPosition(conv, rev, { exact: true });
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
