// Typing indicators, presence and delivered receipts (docs/protocol.md §11), and the hook that
// draws media messages (§15). app.js and the views call these hooks where a feature belongs;
// `attach(conn, store, ui)` listens to the connection's events.
//
// - typing:    onInput -> `typing` {ChatId}, at most once per TYPING_SEND_EVERY_MS (the server
//              relays one per CHAT_TYPING_MIN_INTERVAL_SECONDS, 1 s by default, and drops the
//              rest), with a trailing send so the last keystroke of a burst is not lost;
//              onIdle (sent, box cleared, composer left, chat switched, TYPING_IDLE_MS without
//              a key) -> `stop-typing`. Incoming `typing` {ChatId, UserId, UserName, ExpiresIn}
//              / `stop-typing` go into ui.typing (the #typing live region under the messages);
//              an indicator is dropped ExpiresIn seconds after its last `typing`, as the server
//              keeps no timer and sends no stop for a typist who just goes quiet.
// - presence:  `fetch-presence` {UserIds} after each greeting and whenever the people shown
//              change (direct chats' partners, loaded group members), then live `presence`
//              {UserId, Online, State, LastSeen}; avatarDecoration() returns the dot,
//              subtitle() "online" / "away" / "last seen ...". `presence-state` follows
//              document visibility for this connection.
// - receipts:  opt-in `message-delivered` {ChatId, Seq} for messages that reached this tab
//              without being read at once (live, and the unread ones a greeting announces);
//              incoming `message-delivered` {ChatId, UserId, Seq} moves that member's delivered
//              pointer, so direct chats show "Sent" -> "Delivered" -> "Read". History pages
//              carry no delivered state, so opening a direct chat asks `fetch-seen-by` about
//              the newest unread message of ours.
// - media:     render(msg) draws a message whose kind is not "text" (§15: pictures, video,
//              audio, file cards, large emoji) from the server's own media URLs, never from HTML
//              in the message (ui/media.js). ui/message.js calls it from messageBody(), the one
//              place a message's body is drawn. Attaching files to the composer (picker, drop,
//              paste, upload) lives in ui/attachments.js.
//
// Edits, deletes, replies and reactions (§13) live in app.js (requests), store.js (applying
// changes by Id and Rev) and ui/message.js / ui/messagemenu.js (drawing and the actions menu);
// catching up after a reconnect or a gap (§14) in resync.js.

import { h } from "./dom.js";
import { DIRECT, GROUP } from "./protocol.js";
import { clock, dayLabel, parse } from "./time.js";
import { renderMedia } from "./ui/media.js";

const TYPING_SEND_EVERY_MS = 1100; // the server's default min interval (1 s) plus a margin
const TYPING_IDLE_MS = 4000; // no keystroke for this long: stop-typing
const TYPING_DEFAULT_EXPIRY_S = 6; // if a `typing` comes without ExpiresIn
const DELIVERED_BATCH_MS = 200; // a burst of messages is reported once
const PRESENCE_BATCH_MS = 100;
const PRESENCE_MAX_IDS = 500; // CHAT_CONVERSATION_LIST_LIMIT
const LAST_SEEN_REFRESH_MS = 30_000; // "last seen just now" ages

let conn = null;
let store = null;
let ui = { typing: null };

function quietly(promise) {
  // Best effort: these are hints, and a refusal (offline, receipts turned off) changes nothing.
  return promise.catch(() => null);
}

function visible() {
  return document.visibilityState === "visible";
}

/** Something shown live changed: "typing" (the list's hints) or "presence" (the list's dots,
 * the header's subtitle, the group panel's members). */
function changed(kind) {
  if (store) store.emit("live", { kind });
}

// --- typing: ours -------------------------------------------------------------------------

const outgoing = {
  chatId: null, // the chat we told the server we are typing in
  active: false, // a `typing` was sent there and no `stop-typing` since
  lastSent: new Map(), // chat id -> performance.now() of the last `typing`
  trailing: null,
  idle: null,
};

function canType(conv) {
  return conv && (conv.kind === DIRECT || conv.kind === GROUP);
}

function sendTyping(chatId) {
  if (!conn || !conn.connected) return;
  outgoing.lastSent.set(chatId, performance.now());
  outgoing.active = true;
  quietly(conn.request("typing", { ChatId: chatId }));
}

function stopTyping() {
  clearTimeout(outgoing.trailing);
  clearTimeout(outgoing.idle);
  outgoing.trailing = outgoing.idle = null;
  const chatId = outgoing.chatId;
  outgoing.chatId = null;
  if (chatId && outgoing.active && conn && conn.connected) quietly(conn.request("stop-typing", { ChatId: chatId }));
  outgoing.active = false;
}

// --- typing: theirs -----------------------------------------------------------------------

const typists = new Map(); // chat id -> Map(user id -> {name, timer})

function typingNames(chatId) {
  const who = typists.get(chatId);
  return who ? [...who.values()].map((t) => t.name || "Someone") : [];
}

function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others are typing…`;
}

/** The live region says what changed, once: a refreshed `typing` does not rewrite it. */
function renderTyping() {
  const region = ui.typing;
  if (!region) return;
  const open = store && store.openId;
  const text = open ? typingText(typingNames(open)) : "";
  if (region.textContent !== text) region.textContent = text;
  region.classList.toggle("active", Boolean(text));
}

function dropTypist(chatId, userId) {
  const who = typists.get(chatId);
  const entry = who && who.get(userId);
  if (!entry) return;
  clearTimeout(entry.timer);
  who.delete(userId);
  if (!who.size) typists.delete(chatId);
  renderTyping();
  changed("typing");
}

function clearTypists() {
  for (const who of typists.values()) for (const entry of who.values()) clearTimeout(entry.timer);
  typists.clear();
  renderTyping();
  changed("typing");
}

function onTyping(p) {
  if (!p || !p.ChatId || !p.UserId || (store.me && p.UserId === store.me.id)) return;
  const seconds = Number(p.ExpiresIn) > 0 ? Number(p.ExpiresIn) : TYPING_DEFAULT_EXPIRY_S;
  let who = typists.get(p.ChatId);
  if (!who) typists.set(p.ChatId, (who = new Map()));
  const fresh = !who.has(p.UserId);
  const entry = who.get(p.UserId) || { name: "", timer: null };
  clearTimeout(entry.timer);
  entry.name = p.UserName || entry.name;
  entry.timer = setTimeout(() => dropTypist(p.ChatId, p.UserId), seconds * 1000);
  who.set(p.UserId, entry);
  if (fresh) {
    renderTyping();
    changed("typing");
  }
}

// --- presence -----------------------------------------------------------------------------

const people = new Map(); // user id -> {online, state, lastSeen}
const asked = new Set(); // ids fetched on this connection (live `presence` keeps them current)
let presenceTimer = null;

function setPresence(p) {
  if (!p || !p.UserId) return false;
  const next = { online: Boolean(p.Online), state: p.State || (p.Online ? "foreground" : "offline"), lastSeen: p.LastSeen || null };
  const before = people.get(p.UserId);
  people.set(p.UserId, next);
  return !before || before.state !== next.state || before.lastSeen !== next.lastSeen;
}

/** Everyone whose presence the page shows: direct partners and loaded group members. */
function shownPeople() {
  const ids = new Set();
  for (const conv of store.conversations.values()) {
    if (conv.kind === DIRECT && conv.partnerId) ids.add(conv.partnerId);
    else if (conv.kind === GROUP && conv.detailsLoaded) for (const id of conv.members.keys()) ids.add(id);
  }
  ids.delete(store.me.id);
  return ids;
}

function fetchPresenceSoon() {
  if (presenceTimer) return;
  presenceTimer = setTimeout(fetchPresence, PRESENCE_BATCH_MS);
}

async function fetchPresence() {
  presenceTimer = null;
  if (!conn.connected || !store.me.id) return;
  const ids = [...shownPeople()].filter((id) => !asked.has(id));
  for (let i = 0; i < ids.length; i += PRESENCE_MAX_IDS) {
    const chunk = ids.slice(i, i + PRESENCE_MAX_IDS);
    chunk.forEach((id) => asked.add(id));
    const data = await quietly(conn.request("fetch-presence", { UserIds: chunk }));
    if (!data) {
      chunk.forEach((id) => asked.delete(id)); // try again on the next change
      continue;
    }
    let any = false;
    for (const p of data.Users || []) any = setPresence(p) || any;
    if (any) changed("presence");
  }
}

function reportVisibility() {
  if (conn && conn.connected) quietly(conn.request("presence-state", { State: visible() ? "foreground" : "background" }));
}

function partnerPresence(conv) {
  if (!conv || conv.kind !== DIRECT || !conv.partnerId) return null;
  return people.get(conv.partnerId) || null;
}

function presenceWord(p) {
  if (!p) return "";
  if (p.state === "foreground") return "online";
  if (p.state === "background") return "away";
  return "offline";
}

function lastSeen(iso) {
  const date = parse(iso);
  if (!date) return "offline";
  const ago = Date.now() - date.getTime();
  if (ago < 60_000) return "last seen just now";
  const day = dayLabel(iso);
  if (day === "Today") return `last seen today at ${clock(iso)}`;
  if (day === "Yesterday") return `last seen yesterday at ${clock(iso)}`;
  return `last seen ${day} at ${clock(iso)}`;
}

function dot(p) {
  const word = presenceWord(p);
  return h("span", { class: `presence ${word}`, dataset: { presence: word } });
}

// --- delivered receipts -------------------------------------------------------------------

const toDeliver = new Map(); // chat id -> the highest Seq to report
let deliverTimer = null;
const seenByAsked = new Set(); // direct chats whose delivered state was asked on this connection

function deliveredSoon(chatId, seq) {
  if (!chatId || !(seq > 0)) return;
  toDeliver.set(chatId, Math.max(seq, toDeliver.get(chatId) || 0));
  if (!deliverTimer) deliverTimer = setTimeout(flushDelivered, DELIVERED_BATCH_MS);
}

function flushDelivered() {
  deliverTimer = null;
  if (!conn.connected) return; // the next greeting reports what is unread
  const batch = [...toDeliver];
  toDeliver.clear();
  for (const [chatId, seq] of batch) quietly(conn.request("message-delivered", { ChatId: chatId, Seq: seq }));
}

function onLiveMessage(p) {
  if (!p || !p.ChatId || p.SenderId === store.me.id) return;
  dropTypist(p.ChatId, p.SenderId); // whoever sent has stopped typing
  // The open, visible chat is marked read at once, and reading implies delivery.
  if (p.ChatId === store.openId && visible()) return;
  deliveredSoon(p.ChatId, p.Seq);
}

/** History pages say "Read" or "Unread" only: ask whether our newest unread message arrived. */
function askDelivered(conv) {
  if (!conv || conv.kind !== DIRECT || !conv.loaded || !conn.connected || seenByAsked.has(conv.id)) return;
  const partner = conv.partnerId || [...conv.pointers.keys()].find((id) => id !== store.me.id);
  if (!partner) return;
  const mine = conv.timeline().filter((m) => m.senderId === store.me.id && m.seq > 0 && m.kind !== "removed");
  const newest = mine[mine.length - 1];
  seenByAsked.add(conv.id);
  if (!newest || conv.pointer(partner) >= newest.seq || conv.deliveredTo(partner) >= newest.seq) return;
  quietly(conn.request("fetch-seen-by", { ChatId: conv.id, Seq: newest.seq })).then((data) => {
    if (data && (data.DeliveredCount > 0 || data.SeenCount > 0)) store.setDelivered(conv, partner, newest.seq);
  });
}

// --- wiring -------------------------------------------------------------------------------

function greeted() {
  // A new connection starts in the foreground and without our typing state.
  outgoing.active = false;
  asked.clear();
  seenByAsked.clear();
  if (!visible()) reportVisibility();
  fetchPresenceSoon();
  for (const conv of store.conversations.values()) {
    if ((conv.kind === DIRECT || conv.kind === GROUP) && conv.unread > 0) deliveredSoon(conv.id, conv.seq);
  }
}

export const features = {
  /** Called once the connection and the store exist. */
  attach(connection, theStore, elements) {
    conn = connection;
    store = theStore;
    ui = { ...ui, ...elements };

    conn.on("typing", onTyping);
    conn.on("stop-typing", (p) => p && dropTypist(p.ChatId, p.UserId));
    conn.on("presence", (p) => {
      if (setPresence(p)) changed("presence");
    });
    conn.on("message-delivered", (p) => {
      const conv = p && store.get(p.ChatId);
      if (conv && p.UserId && typeof p.Seq === "number") store.setDelivered(conv, p.UserId, p.Seq);
    });
    conn.on("receive-personal-message", onLiveMessage);
    conn.on("receive-group-message", onLiveMessage);
    conn.on("group-chat-list", greeted); // the greeting's last event; app.js took the lists
    conn.on("disconnect", () => {
      // No `stop-typing` will come for what we show, and our own typing ended with the socket.
      clearTypists();
      outgoing.active = false;
      stopTyping();
    });

    store.subscribe(({ what, id }) => {
      if (what === "list" || what === "group") fetchPresenceSoon();
      if (what === "messages" && id === store.openId) askDelivered(store.open);
    });
    setInterval(() => {
      const p = partnerPresence(store.open);
      if (p && !p.online) changed("presence");
    }, LAST_SEEN_REFRESH_MS);
    document.addEventListener("visibilitychange", () => {
      reportVisibility();
      if (!visible()) stopTyping();
    });
  },

  typing: {
    /** The composer's text changed in `conv`. */
    onInput(conv, text = "") {
      if (!canType(conv)) return;
      if (!text.trim()) {
        stopTyping();
        return;
      }
      if (outgoing.chatId !== conv.id) stopTyping();
      outgoing.chatId = conv.id;
      clearTimeout(outgoing.idle);
      outgoing.idle = setTimeout(stopTyping, TYPING_IDLE_MS);
      const wait = (outgoing.lastSent.get(conv.id) ?? -Infinity) + TYPING_SEND_EVERY_MS - performance.now();
      if (wait <= 0) {
        clearTimeout(outgoing.trailing);
        outgoing.trailing = null;
        sendTyping(conv.id);
      } else if (!outgoing.trailing) {
        outgoing.trailing = setTimeout(() => {
          outgoing.trailing = null;
          if (outgoing.chatId === conv.id) sendTyping(conv.id);
        }, wait);
      }
    },
    /** The user stopped typing in `conv`: sent, cleared the box, or left the composer. */
    onIdle(conv) {
      if (!conv || outgoing.chatId === conv.id) stopTyping();
    },
    /** Another conversation (or none: null) is shown. */
    onOpen(conv) {
      if (!conv || outgoing.chatId !== conv.id) stopTyping();
      renderTyping();
      if (conv) askDelivered(conv);
    },
    /** A short hint for the conversation list ("" when nobody types there). */
    hint(conv) {
      const names = typingNames(conv.id);
      if (!names.length) return "";
      return conv.kind === DIRECT ? "typing…" : typingText(names);
    },
  },

  presence: {
    /** An element to put on a conversation's avatar (null: nothing). */
    avatarDecoration(conv) {
      const p = partnerPresence(conv);
      return p ? dot(p) : null;
    },
    /** The header's subtitle for a direct chat (null: the default). */
    subtitle(conv) {
      const p = partnerPresence(conv);
      if (!p) return null;
      return p.online ? presenceWord(p) : lastSeen(p.lastSeen);
    },
    /** A word for the conversation's accessible name ("" when unknown). */
    label(conv) {
      return presenceWord(partnerPresence(conv));
    },
    /** A member row's presence: the dot and a word for screen readers (null: unknown). */
    member(userId) {
      const p = people.get(userId);
      if (!p || userId === store.me.id) return null;
      const word = presenceWord(p);
      return h("span", { class: "member-presence", dataset: { presence: word } },
        h("span", { class: `presence ${word}`, "aria-hidden": "true" }),
        h("span", { class: "visually-hidden", text: word }));
    },
  },

  media: {
    /** The body of a message of another kind than "text" (null: shown as text). */
    render(msg /* , conv */) {
      return renderMedia(msg);
    },
  },
};
