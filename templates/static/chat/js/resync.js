// Catching up with `sync` (docs/protocol.md §14): after every reconnect, and when a live change
// shows a hole in a conversation's Revs.
//
// Positions live in the store (Conversation.rev; store.noteRev / setPosition). They come from
// the greeting (each list entry's `Rev`, §14.1; the self chat's from its history reply), for
// the chats we hold no messages of: what we keep of those, the Seq, the time and the unread
// count, the greeting told as of that Rev. A chat's newest history page gives one too (its
// top-level Rev, §14.2 point 5); then a sync answer, and every change applied in order.
//
// - On every greeting, `greeted()`: chats we hold nothing of take the greeting's Rev as their
//   position. After a reconnect, the chats we hold messages of are synced: changes to what we
//   show, and the read receipts missed meanwhile (read state has no Rev). No `All: true`: the
//   greeting lists every chat, and one we never opened is fetched when it is.
// - On a gap, `gap(conv)`: wait GAP_WAIT_MS (the missing change may still arrive: events of
//   different senders cross between server processes), then sync that chat if the hole is
//   still there. Our own messages, edits and reactions from another tab, and group system
//   messages, are never pushed to us, so they always arrive this way.
// - Answers: `Messages` replace what we hold by id (store.applySync); `Reload` drops the chat's
//   history (the view fetches the newest page again when it is open); `More` asks again with
//   the positions we now have; `Left` and `Gone` drop the chat. Every entry also carries the
//   chat's read state whole (`Seq`, `Unread`, `ReadPointers`): receipts and the unread count
//   missed while away.
//
// One sync runs at a time; what is asked meanwhile is merged into the next one.

import { GROUP, syncMessages, syncRequest } from "./protocol.js";

const GAP_WAIT_MS = 1000;
const MAX_ROUNDS = 50; // rounds in one catch-up (`More`, or over MAX_POSITIONS chats)
const MAX_POSITIONS = 500; // per `sync` (CHAT_CONVERSATION_LIST_LIMIT)

export class Resync {
  /**
   * hooks: onReload(conv) the chat's history was dropped; onNew(conv, messages) messages newer
   * than any known arrived; onUnread(conv, count) the server's unread count for the chat;
   * onGroupChanged(conv) a group's system messages came (members or name changed);
   * onDrop(conv, {left}) we are not in the chat any more.
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

  /** The greeting's lists are in (every connect): positions for the chats we hold nothing of,
   * and after a `reconnect`, a sync of the others. Resolves when it has been applied. */
  greeted({ reconnect }) {
    const ids = [];
    for (const conv of this.store.conversations.values()) {
      const held = conv.loaded || conv.messages.size > 0;
      if (!held && conv.latestRev !== null) this.store.setPosition(conv, conv.latestRev, { exact: true });
      else if (held && reconnect && conv.rev !== null) ids.push(conv.id);
    }
    return this.request({ ids });
  }

  /** Ask for a sync of these chats; merged with one already waiting. Resolves when it has
   * been applied. */
  request({ ids = [] } = {}) {
    if (!this.queued) this.queued = new Set();
    for (const id of ids) this.queued.add(id);
    if (!this.running) this.running = this._drain();
    return this.running;
  }

  async _drain() {
    try {
      while (this.queued) {
        const ids = this.queued;
        this.queued = null;
        await this._sync(ids);
      }
    } finally {
      this.running = null;
    }
  }

  async _sync(ids) {
    const wanted = new Set(ids);
    for (let round = 0; round < MAX_ROUNDS && wanted.size; round += 1) {
      const positions = {};
      for (const id of wanted) {
        const conv = this.store.get(id);
        if (!conv || conv.rev === null) wanted.delete(id);
        else if (Object.keys(positions).length < MAX_POSITIONS) positions[id] = conv.rev;
      }
      if (!Object.keys(positions).length) return;
      let answer;
      try {
        answer = await this.conn.request(...syncRequest(positions, false));
      } catch (error) {
        // Offline or refused: the next reconnect (or gap) asks again.
        console.warn("sync failed: %s", error.code);
        return;
      }
      const chats = (answer && answer.Chats) || {};
      for (const id of Object.keys(positions)) {
        if (!this._apply(id, chats[id])) wanted.delete(id); // done, unless `More`
      }
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
    this.store.applyReadState(conv, { seq: entry.Seq, pointers: entry.ReadPointers });
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
    if (typeof entry.Unread === "number") this.hooks.onUnread(conv, entry.Unread);
    if (conv.kind === GROUP && messages.some((m) => m.kind === "system")) this.hooks.onGroupChanged(conv);
    return false;
  }

  /** The connection dropped: pending gap checks would sync nothing; the reconnect syncs all. */
  reset() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
