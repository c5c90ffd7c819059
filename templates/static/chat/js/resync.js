// Catching up with `sync` (docs/protocol.md §14): after every reconnect, and when a live change
// shows a hole in a conversation's Revs.
//
// Positions live in the store (Conversation.rev; store.noteRev / setPosition). They are learnt
// lazily: from a conversation's newest history page, from a sync answer, and then from every
// change applied in order. A fresh page load calls no `sync`: the greeting's lists and the
// pages fetched when a chat is opened are current, and nothing is held yet.
//
// - On a reconnect, `all()`: every known position, plus `All: true`, so chats we hold no
//   position for (never opened, or joined while away) come from 0 and get one.
// - On a gap, `gap(conv)`: wait GAP_WAIT_MS (the missing change may still arrive: events of
//   different senders cross between server processes), then sync that chat if the hole is
//   still there. Our own messages, edits and reactions from another tab, and group system
//   messages, are never pushed to us, so they always arrive this way.
// - Answers: `Messages` replace what we hold by id (store.applySync); `Reload` drops the chat's
//   history (the view fetches the newest page again when it is open); `More` asks again with
//   the positions we now have; `Left` and `Gone` drop the chat.
//
// One sync runs at a time; what is asked meanwhile is merged into the next one.

import { GROUP, syncMessages, syncRequest } from "./protocol.js";

const GAP_WAIT_MS = 1000;
const MAX_ROUNDS = 50; // `More` rounds in one catch-up: each carries up to 500 changes

export class Resync {
  /**
   * hooks: onReload(conv) the chat's history was dropped; onNew(conv, messages) messages newer
   * than any known arrived; onGroupChanged(conv) a group's system messages came (members or
   * name changed); onDrop(conv, {left}) we are not in the chat any more.
   */
  constructor(conn, store, hooks) {
    this.conn = conn;
    this.store = store;
    this.hooks = hooks;
    this.timers = new Map(); // chat id -> the gap check waiting
    this.running = null; // the sync in flight (a promise)
    this.queued = null; // {all, ids} for the sync after it
  }

  /** A change with `rev` was applied to `conv`: move its position, or watch the hole. */
  note(conv, rev) {
    if (this.store.noteRev(conv, rev)) this.gap(conv);
  }

  gap(conv) {
    if (this.timers.has(conv.id)) return;
    this.timers.set(conv.id, setTimeout(() => {
      this.timers.delete(conv.id);
      const current = this.store.get(conv.id);
      if (current && this.store.hasGap(current) && this.conn.connected) this.request({ ids: [conv.id] });
    }, GAP_WAIT_MS));
  }

  /** After a reconnect: catch up on every chat. */
  all() {
    return this.request({ all: true });
  }

  /** Ask for a sync; merged with one already waiting. Resolves when it has been applied. */
  request({ all = false, ids = [] } = {}) {
    if (!this.queued) this.queued = { all: false, ids: new Set() };
    this.queued.all = this.queued.all || all;
    for (const id of ids) this.queued.ids.add(id);
    if (!this.running) this.running = this._drain();
    return this.running;
  }

  async _drain() {
    try {
      while (this.queued) {
        const { all, ids } = this.queued;
        this.queued = null;
        await this._sync(all, ids);
      }
    } finally {
      this.running = null;
    }
  }

  async _sync(all, ids) {
    let wanted = all ? null : ids;
    let includeAll = all;
    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      const positions = {};
      for (const conv of this.store.conversations.values()) {
        if (conv.rev !== null && (!wanted || wanted.has(conv.id))) positions[conv.id] = conv.rev;
      }
      if (!includeAll && !Object.keys(positions).length) return;
      let answer;
      try {
        answer = await this.conn.request(...syncRequest(positions, includeAll));
      } catch (error) {
        // Offline or refused: the next reconnect (or gap) asks again.
        console.warn("sync failed: %s", error.code);
        return;
      }
      const more = new Set();
      for (const [id, entry] of Object.entries((answer && answer.Chats) || {})) {
        if (this._apply(id, entry)) more.add(id);
      }
      if (!more.size) return;
      wanted = more;
      includeAll = false;
    }
  }

  /** One chat of an answer. Returns true when it must be asked again (`More`). */
  _apply(id, entry) {
    if (!entry || typeof entry !== "object") return false;
    const conv = this.store.get(id);
    if (!conv) return false; // not in our lists: the greeting is the authority on which chats we have
    if (entry.Gone || entry.Left) {
      this.hooks.onDrop(conv, { left: Boolean(entry.Left) });
      return false;
    }
    if (entry.More) {
      // Nothing of this chat in the answer; its position (0 if it had none) is unchanged.
      this.store.setPosition(conv, entry.Rev);
      return true;
    }
    if (entry.Reload) {
      this.store.reload(conv, entry.Rev);
      this.hooks.onReload(conv);
      return false;
    }
    const messages = syncMessages(conv, entry.Messages, this.store.me);
    const fresh = this.store.applySync(conv, messages, entry.Rev);
    if (fresh.length) this.hooks.onNew(conv, fresh);
    if (conv.kind === GROUP && messages.some((m) => m.kind === "system")) this.hooks.onGroupChanged(conv);
    return false;
  }

  /** The connection dropped: pending gap checks would sync nothing; the reconnect syncs all. */
  reset() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
