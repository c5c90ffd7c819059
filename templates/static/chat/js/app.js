// The chat page: wires the Socket.IO connection (ExpressChat protocol, docs/protocol.md) to the
// store and the views.
//
// Who we are comes from the httpOnly login cookies the browser sends with the handshake; a
// refused handshake (`auth-failure`) sends the visitor to /auth. Everything else is a socket
// event: history pages with Before/Limit, sends with a ClientMessageId (safe to retry), an
// optional ReplyTo and an optional AttachmentId (a file uploaded over REST first, §15: the
// composer does that, ui/attachments.js), edits, deletes and reactions (§13), read pointers,
// search, group management. After a reconnect the greeting's lists replace ours and `sync`
// (resync.js, §14) brings every change we missed, in the chats we hold, by Rev: no history is
// fetched again unless the server says Reload.

import { $, announce, initial, setAlert } from "./dom.js";
import { features } from "./features.js";
import { postJSON } from "./http.js";
import { FLASH_KEY, OPEN_CHAT_KEY } from "./keys.js";
import {
  DIRECT,
  GROUP,
  HISTORY_PAGE,
  SELF,
  deleteRequest,
  editRequest,
  excerpt,
  fromLive,
  historyMessages,
  historyRequest,
  isEmojiOnly,
  isMedia,
  mediaContent,
  messagePreview,
  newClientId,
  quoteText,
  reactRequest,
  readRequest,
  sendRequest,
} from "./protocol.js";
import { Resync } from "./resync.js";
import { Connection } from "./socket.js";
import { Store } from "./store.js";
import { ChatList, conversationTitle } from "./ui/chatlist.js";
import { ConversationView } from "./ui/conversation.js";
import { NewGroupDialog, confirmDialog } from "./ui/dialogs.js";
import { GroupPanel } from "./ui/grouppanel.js";
import { PeopleSearch } from "./ui/search.js";

const store = new Store();
const conn = new Connection();
let everReady = false;
let leaving = false; // logging out or sent to /auth: ignore the connection's last words

// --- helpers ------------------------------------------------------------------------------

function nowIso() {
  return new Date().toISOString();
}

function visible() {
  return document.visibilityState === "visible";
}

function notice(text) {
  setAlert($("#app-notice"), text);
  if (text) announce(text);
}

function searchUsers(text) {
  return conn.request("search-user", { Name: text, Type: "Search" }).then((data) => (data && data.Users) || []);
}

/** A Rev the server sent (§14.1), or undefined (then store.upsert keeps what it has). */
function revOf(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function preview(text, max = 140) {
  const flat = String(text || "").replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

// --- history and read pointers ------------------------------------------------------------

/** Fetch a conversation's newest page (or the page before `before`) and merge it. */
async function fetchPage(conv, { before = null, limit = HISTORY_PAGE } = {}) {
  const [event, payload, reply, match] = historyRequest(conv, { before, limit });
  const page = await conn.request(event, payload, { reply, match });
  if (!store.get(conv.id)) return; // left or removed meanwhile
  if (conv.kind === GROUP) store.setGroupDetails(conv, page);
  const messages = historyMessages(conv, page, store.me);
  if (conv.kind === DIRECT) {
    if (page.Partner) conv.title = page.Partner;
    if (!conv.partnerId) {
      const ids = new Set(messages.flatMap((m) => Object.keys(m.readStatus || {})));
      conv.partnerId = [...ids].find((id) => id !== store.me.id) || null;
    }
  }
  store.mergePage(conv, messages, { before, limit, rev: revOf(page.Rev) });
  if (before === null && !(conv.id === store.openId && visible())) {
    store.setUnread(conv, store.unreadFromPage(conv, messages));
  }
}

const refreshing = new Map(); // chat id -> the refresh in flight

/** The newest page of a conversation, then mark it read if the reader is looking at it. One
 * at a time per conversation: asking again meanwhile waits for the one in flight. */
function refresh(conv) {
  if (!refreshing.has(conv.id)) {
    const done = (async () => {
      try {
        await fetchPage(conv);
      } catch (error) {
        if (error.code === "not_found") store.remove(conv.id); // not a member any more
        return;
      }
      if (conv.id === store.openId) markRead(conv);
    })().finally(() => refreshing.delete(conv.id));
    refreshing.set(conv.id, done);
  }
  return refreshing.get(conv.id);
}

const refreshTimers = new Map();
/** Membership events come in bursts (a hand-over is two); refresh a group once per burst. */
function refreshSoon(id) {
  clearTimeout(refreshTimers.get(id));
  refreshTimers.set(id, setTimeout(() => {
    refreshTimers.delete(id);
    const conv = store.get(id);
    if (conv && conn.connected) refresh(conv);
  }, 150));
}

function markRead(conv) {
  if (!conv || conv.kind === SELF || !visible() || !conn.connected || conv.id !== store.openId) return;
  const seq = conv.seq;
  if (seq <= 0 || (seq <= conv.markedSeq && conv.unread === 0)) return;
  conv.markedSeq = Math.max(conv.markedSeq, seq);
  store.setUnread(conv, 0);
  const [event, payload] = readRequest(conv, seq);
  conn.request(event, payload).then(
    (ack) => {
      store.setPointer(conv, store.me.id, ack.Seq);
      store.setUnread(conv, conv.id === store.openId ? 0 : Math.max(0, conv.seq - ack.Seq));
    },
    () => {
      conv.markedSeq = 0; // try again on the next chance
    },
  );
}

// --- opening conversations ----------------------------------------------------------------

async function openConversation(id, { focus = true } = {}) {
  const conv = store.get(id);
  if (!conv) return;
  notice("");
  store.setOpen(id);
  sessionStorage.setItem(OPEN_CHAT_KEY, id);
  document.body.classList.add("conversation-open");
  view.show(conv, { focus });
  if (conv.kind !== GROUP) groupPanel.close();
  else groupPanel.render();
  await refresh(conv);
}

function closeConversation() {
  const was = store.openId;
  store.setOpen(null);
  sessionStorage.removeItem(OPEN_CHAT_KEY);
  document.body.classList.remove("conversation-open");
  groupPanel.close();
  view.show(null);
  // Back to where the reader came from in the list (or its top when that chat is gone).
  const item = (was && $(`#chat-list [data-conv-id="${CSS.escape(was)}"]`)) || $("#chat-list button");
  if (item) item.focus();
}

async function loadSelf() {
  const conv0 = { kind: SELF, id: "self" };
  const [event, payload, reply, match] = historyRequest(conv0, { limit: 1 });
  const page = await conn.request(event, payload, { reply, match });
  const newest = Array.isArray(page.Messages) && page.Messages[0];
  const existing = store.selfConversation();
  store.upsert({
    id: page.ChatId,
    kind: SELF,
    title: "Notes to self",
    lastChat: newest ? newest.Timestamp : existing ? existing.lastChat : null,
    seq: newest ? newest.Seq : 0,
    latestRev: revOf(page.Rev), // not in the greeting's lists: its history reply says
  });
}

// --- sending ----------------------------------------------------------------------------

const RETRY_LATER = new Set(["offline", "timeout", "rate_limited", "internal_error", "no_reply"]);

/**
 * Send `text`, as a reply to `replyTo` (a message) when given. With `upload` (an uploaded file,
 * protocol.js fromUpload) it is a media message and `text` its caption. Text of nothing but
 * emoji goes as an emoji message, which clients show large (§15.2).
 */
function send(conv, text, replyTo = null, upload = null) {
  const clientId = newClientId();
  const kind = upload ? upload.kind : isEmojiOnly(text) ? "emoji" : "text";
  const msg = {
    key: `c:${clientId}`,
    clientId,
    id: null,
    seq: 0,
    rev: null,
    senderId: store.me.id,
    senderName: store.me.name,
    content: upload ? mediaContent(text, upload) : text,
    caption: upload ? text : null,
    attachment: upload,
    was: null,
    ts: null,
    kind,
    state: "pending",
    readStatus: null,
    editedAt: null,
    // The quote as the server will show it (§13.3), until the server's copy replaces ours.
    replyTo: replyTo
      ? { id: replyTo.id, seq: replyTo.seq, kind: replyTo.kind, sender: replyTo.senderName, senderId: replyTo.senderId, excerpt: excerpt(quoteText(replyTo)), deleted: false }
      : null,
    reactions: [],
    myReactions: [],
    removed: null,
  };
  store.addPending(conv, msg);
  deliver(conv, msg);
}

async function deliver(conv, msg) {
  const media = isMedia(msg.kind);
  const [event, payload] = sendRequest(conv, media ? msg.caption : msg.content, msg.clientId, {
    replyTo: msg.replyTo ? msg.replyTo.id : null,
    attachmentId: media && msg.attachment ? msg.attachment.id : null,
    kind: msg.kind === "emoji" ? "emoji" : null,
  });
  try {
    const ack = await conn.request(event, payload);
    store.confirm(conv, msg, ack);
    resync.note(conv, ack.Rev);
    if (conv.id === store.openId) markRead(conv);
  } catch (error) {
    if (error.code === "invalid" && msg.kind === "emoji") {
      // The server reads emoji differently (a newer emoji, a lower length limit): plain text.
      msg.kind = "text";
      store.retrying(conv, msg);
      deliver(conv, msg);
      return;
    }
    msg.retryOnReconnect = RETRY_LATER.has(error.code);
    if (error.code === "offline") return; // stays "Sending…" until we are back
    store.fail(conv, msg);
    if (!msg.retryOnReconnect) announce(`Message not sent: ${error.message}`);
  }
}

function retry(conv, msg) {
  store.retrying(conv, msg);
  deliver(conv, msg);
}

/** After a reconnect: send what could not be sent. The same ClientMessageId makes a message
 * that did reach the server come back as the original instead of being stored twice. */
function resendPending() {
  for (const conv of store.conversations.values()) {
    for (const msg of [...conv.pending]) {
      if (msg.state === "pending" || msg.retryOnReconnect) retry(conv, msg);
    }
  }
}

// --- edits, deletes and reactions (§13) ----------------------------------------------------

function failed(what, error) {
  if (error.code === "offline") return `You are offline: could not ${what}. Try again when connected.`;
  if (error.code === "conflict") return `Could not ${what}: the message was deleted meanwhile.`;
  return `Could not ${what}: ${error.message}`;
}

/** Edit a message's text, or a media message's caption (then `Content` is rebuilt from it as
 * the server does, §15.3). */
async function editMessage(conv, msg, text) {
  const media = isMedia(msg.kind);
  try {
    const ack = await conn.request(...editRequest(conv, msg, text));
    store.applyEdit(conv, {
      id: ack.Id,
      seq: ack.Seq,
      rev: ack.Rev,
      content: media ? mediaContent(text, msg.attachment) : text,
      caption: media ? text : null,
      editedAt: ack.EditedAt,
    });
    resync.note(conv, ack.Rev);
    announce("Message edited.");
  } catch (error) {
    notice(failed("save the edit", error));
    if (error.code === "conflict") resync.request({ ids: [conv.id] });
  }
}

async function deleteMessage(conv, msg) {
  const mine = msg.senderId === store.me.id;
  const ok = await confirmDialog({
    title: "Delete message",
    text: mine ? "Delete this message for everyone?" : `Delete this message from ${msg.senderName} for everyone?`,
    confirmLabel: "Delete",
    danger: true,
  });
  if (!ok) return;
  try {
    const ack = await conn.request(...deleteRequest(conv, msg));
    store.applyDelete(conv, { id: ack.Id, seq: ack.Seq, rev: ack.Rev });
    resync.note(conv, ack.Rev);
    announce("Message deleted.");
  } catch (error) {
    notice(failed("delete the message", error));
    if (error.code === "conflict") resync.request({ ids: [conv.id] });
  }
  // Its buttons went with its text: the keyboard stays on the message.
  if (conv.id === store.openId) view.focusMessage(msg.key);
}

async function react(conv, msg, emoji, add) {
  try {
    const ack = await conn.request(...reactRequest(conv, msg, emoji, add));
    store.applyReaction(conv, {
      id: ack.Id,
      seq: typeof ack.Seq === "number" ? ack.Seq : msg.seq,
      rev: ack.Rev,
      emoji: ack.Emoji,
      count: ack.Count,
      userId: store.me.id,
      added: add,
      mine: Array.isArray(ack.MyReactions) ? ack.MyReactions : null, // which are ours now (§13.4)
    });
    resync.note(conv, ack.Rev);
    announce(add ? `Reacted with ${emoji}.` : `Took back ${emoji}.`);
  } catch (error) {
    notice(failed(add ? "add the reaction" : "take the reaction back", error));
  }
}

// --- catching up (§14) ----------------------------------------------------------------------

const resync = new Resync(conn, store, {
  onReload(conv) {
    if (conv.id === store.openId) refresh(conv);
  },
  onNew(conv, messages) {
    // The greeting counted what was there when we connected; these came after, or were never
    // pushed to us (our other tabs' messages, group system messages).
    if (conv.id === store.openId && visible()) {
      markRead(conv);
      return;
    }
    const theirs = messages.filter((m) => m.senderId !== store.me.id || m.kind === "system").length;
    if (theirs) store.setUnread(conv, conv.unread + theirs);
  },
  onUnread(conv, unread) {
    // The server's count (newer servers send it in every sync entry) settles ours.
    if (!(conv.id === store.openId && visible())) store.setUnread(conv, unread);
  },
  onGroupChanged(conv) {
    if (conv.detailsLoaded) refreshSoon(conv.id); // members, roles or name changed
  },
  onDrop(conv, { left }) {
    const title = conversationTitle(conv);
    if (store.openId === conv.id) closeConversation();
    store.remove(conv.id);
    notice(left ? `You are no longer in ${title}.` : `${title} is not available any more.`);
  },
});

// --- starting chats and groups ------------------------------------------------------------

async function startChat(user) {
  people.reset();
  if (user._id === store.me.id) {
    const self = store.selfConversation();
    if (self) openConversation(self.id);
    return;
  }
  try {
    const data = await conn.request("create-personal-chat", { Receiver: user._id });
    const fields = { id: data.ChatId, kind: DIRECT, title: data.Partner, partnerId: user._id };
    if (!store.get(data.ChatId)) fields.lastChat = nowIso();
    store.upsert(fields);
    await openConversation(data.ChatId);
  } catch (error) {
    notice(error.code === "offline" ? "You are offline. Try again when connected." : `Could not open the chat: ${error.message}`);
  }
}

async function createGroup({ name, description, members }) {
  const data = await conn.request("create-group-chat", { Name: name, Description: description, Participants: members });
  store.upsert({ id: data.GroupId, kind: GROUP, title: data.Name, lastChat: nowIso(), seq: 1, unread: 0 });
  await openConversation(data.GroupId);
  announce(`Group ${data.Name} created.`);
}

const groupActions = {
  searchUsers,
  async add(conv, user) {
    await conn.request("add-member", { GroupId: conv.id, Member: user._id });
    announce(`${user.Name} added.`);
    refreshSoon(conv.id);
  },
  async kick(conv, id, name) {
    const ok = await confirmDialog({ title: "Remove member", text: `Remove ${name} from ${conv.title}?`, confirmLabel: "Remove", danger: true });
    if (!ok) return;
    await conn.request("kickout", { GroupId: conv.id, Member: id });
    announce(`${name} removed.`);
    refreshSoon(conv.id);
  },
  async handOver(conv, id, name, owner) {
    const text = owner
      ? `Make ${name} the owner of ${conv.title}? You will become a regular member.`
      : `Make ${name} an admin of ${conv.title}? You will become a regular member.`;
    const ok = await confirmDialog({ title: owner ? "Hand over ownership" : "Hand over admin rights", text, confirmLabel: owner ? "Make owner" : "Make admin" });
    if (!ok) return;
    await conn.request("change-admin", { GroupId: conv.id, Member: id });
    refreshSoon(conv.id);
  },
  async leave(conv) {
    const ok = await confirmDialog({ title: "Leave group", text: `Leave ${conv.title}? You will stop receiving its messages.`, confirmLabel: "Leave", danger: true });
    if (!ok) return;
    try {
      await conn.request("leave-grp", { GroupId: conv.id });
    } catch (error) {
      if (error.code === "conflict") throw Object.assign(error, { message: "You are the last admin: make someone else an admin before leaving." });
      throw error;
    }
    const title = conv.title;
    closeConversation();
    store.remove(conv.id);
    notice(`You left ${title}.`);
  },
  async remove(conv) {
    const ok = await confirmDialog({ title: "Delete group", text: `Delete ${conv.title} and its whole history for everyone? This cannot be undone.`, confirmLabel: "Delete", danger: true });
    if (!ok) return;
    await conn.request("delete-grp", { GroupId: conv.id });
    const title = conv.title;
    closeConversation();
    store.remove(conv.id);
    notice(`${title} was deleted.`);
  },
};

// --- views ------------------------------------------------------------------------------

const chatList = new ChatList($("#chat-list"), store, { onOpen: (id) => openConversation(id) });
const view = new ConversationView(store, {
  onSend: send,
  onEdit: editMessage,
  onDelete: deleteMessage,
  onReact: react,
  onRetry: retry,
  onLoadOlder: (conv) => fetchPage(conv, { before: conv.oldest }).catch(() => {}),
  onBack: closeConversation,
  onGroupInfo: () => groupPanel.toggle(),
  renewed: sessionRenewed,
});
const groupPanel = new GroupPanel(store, groupActions);
const newGroup = new NewGroupDialog({ searchUsers, me: () => store.me, onCreate: createGroup });
const people = new PeopleSearch({
  input: $("#user-search"),
  results: $("#search-results"),
  search: searchUsers,
  exclude: () => new Set(),
  onPick: startChat,
});
$("#new-group-btn").addEventListener("click", () => newGroup.open());
$("#logout-btn").addEventListener("click", logout);

let listQueued = false;
function renderListSoon() {
  if (listQueued) return;
  listQueued = true;
  queueMicrotask(() => {
    listQueued = false;
    chatList.render();
    const total = store.totalUnread();
    document.title = total ? `(${total}) Chat` : "Chat";
  });
}

store.subscribe(({ what, id, older, kind }) => {
  if (what === "list") renderListSoon();
  else if (what === "messages" && id === store.openId) view.renderMessages({ older });
  else if (what === "receipts" && id === store.openId) view.renderMessages();
  else if (what === "group" && id === store.openId) {
    view.renderHeader(store.open);
    groupPanel.render();
  } else if (what === "open" && !store.open && document.body.classList.contains("conversation-open")) {
    document.body.classList.remove("conversation-open");
    view.show(null);
    groupPanel.close();
  } else if (what === "me") {
    $("#me-name").textContent = store.me.name;
    $("#me-avatar").textContent = initial(store.me.name);
  } else if (what === "online") renderConnection();
  else if (what === "live") {
    // Presence or typing changed: the list's dots and hints, the header's "online / last seen".
    renderListSoon();
    if (kind === "presence" && store.open) {
      view.renderHeader(store.open);
      groupPanel.renderPresence();
    }
  }
});

function renderConnection(text = null) {
  const status = $("#me-status");
  const banner = $("#conn-banner");
  const online = store.online;
  status.className = `me-status ${online ? "online" : "offline"}`;
  status.textContent = online ? "Online" : navigator.onLine ? "Reconnecting…" : "Offline";
  document.body.dataset.connection = online ? "online" : "offline";
  if (online || !everReady) {
    banner.hidden = true;
    return;
  }
  banner.textContent = text || (navigator.onLine
    ? "Connection lost. Reconnecting… Messages you write now are sent when the connection is back."
    : "You are offline. Messages you write now are sent when you are back online.");
  banner.hidden = false;
}

// --- the connection's events ----------------------------------------------------------------

function goToLogin(message) {
  if (leaving) return;
  leaving = true;
  if (message) sessionStorage.setItem(FLASH_KEY, message);
  conn.close();
  location.replace("/auth");
}

function authMessage(code) {
  if (code === "revoked") return "You were logged out. Log in again to continue.";
  if (code === "banned") return "This account is suspended.";
  if (code === "deactivated") return "This account was deactivated.";
  if (code === "not_authenticated") return ""; // never logged in: no news
  return everReady ? "Your session ended. Log in again." : "";
}

conn.on("auth-failure", (payload) => {
  const code = (payload && payload.code) || "";
  if (code === "internal_error") {
    setTimeout(() => conn.reconnectNow(), 3000); // the server hiccuped, not our credentials
    return;
  }
  goToLogin(authMessage(code));
});

const session = new EventTarget(); // "renewed": a fresh access token is in the login cookie

/** Resolves true once the login cookie was renewed, or false after `ms`. An upload refused
 * with 401 (its cookie expired a moment before the socket's renewal) waits for this. */
function sessionRenewed(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      session.removeEventListener("renewed", done);
      resolve(false);
    }, ms);
    function done() {
      clearTimeout(timer);
      resolve(true);
    }
    session.addEventListener("renewed", done, { once: true });
  });
}

conn.on("access-token", async (payload) => {
  // The server renewed our access token at the handshake or at its expiry; the cookie is
  // httpOnly, so the server stores it: POST /update-access-token {acessToken} (sic).
  const token = payload && payload.accessToken;
  if (typeof token !== "string") return;
  const { status } = await postJSON("/update-access-token", { acessToken: token });
  if (status !== 200) console.warn("could not store the renewed access token (status %s)", status);
  else session.dispatchEvent(new Event("renewed"));
});

conn.on("user-id", (p) => store.setMe(p.userId, p.userName));

// Each entry's `Rev` is the chat's newest (§14.1): the position of a chat we hold nothing of.
conn.on("personal-chat-list", (p) => {
  store.applyList(DIRECT, (p.PersonalChatList || []).map((c) => ({
    id: c._id, title: c.Partner, partnerId: c.PartnerId || null, lastChat: c.LastChat, unread: Number(c.Unread) || 0, seq: c.Seq || 0,
    latestRev: revOf(c.Rev),
  })));
});

conn.on("group-chat-list", (p) => {
  store.applyList(GROUP, (p.GroupChatList || []).map((c) => ({
    id: c._id, title: c.Name, lastChat: c.LastChat, unread: Number(c.Unread) || 0, seq: c.Seq || 0, latestRev: revOf(c.Rev),
  })));
  ready(); // the greeting ends with this list
});

async function ready() {
  const first = !everReady;
  everReady = true;
  store.setOnline(true);
  $("#loading").hidden = true;
  try {
    await loadSelf();
  } catch {
    /* the list still works; retried on the next connect */
  }
  if (first) {
    // Nothing is held yet, so there is nothing to sync: the lists are current, and give each
    // chat its position (resync.js).
    resync.greeted({ reconnect: false });
    const wanted = sessionStorage.getItem(OPEN_CHAT_KEY);
    if (wanted && store.get(wanted)) await openConversation(wanted, { focus: false });
    return;
  }
  // Reconnected: the lists are the server's again. What could not be sent goes first (so a
  // message the server had stored comes back as the original before sync shows it), then
  // sync brings what changed in the chats we hold.
  resendPending();
  await resync.greeted({ reconnect: true });
  const open = store.open;
  if (open && !open.loaded) await refresh(open); // reloaded, or never got its first page
  else if (open) markRead(open);
  else if (document.body.classList.contains("conversation-open")) closeConversation();
}

function incoming(conv, payload) {
  const msg = fromLive(payload);
  const result = store.addLive(conv, msg);
  resync.note(conv, msg.rev);
  if (result === "duplicate") return;
  if (msg.kind !== "system") store.setPointer(conv, msg.senderId, msg.seq);
  const isOpen = conv.id === store.openId;
  if (result === "gap") {
    // A server that sends no Rev: fall back to the newest page.
    if (isOpen) refresh(conv);
    else conv.resetHistory();
  }
  if (isOpen && visible()) {
    markRead(conv);
  } else {
    store.setUnread(conv, conv.unread + 1);
  }
  if (msg.kind === "system") {
    if (isOpen) announce(msg.content);
    return;
  }
  const where = conv.kind === GROUP ? ` in ${conversationTitle(conv)}` : "";
  announce(isOpen ? `${msg.senderName}: ${preview(messagePreview(msg))}` : `New message from ${msg.senderName}${where}`);
}

conn.on("receive-personal-message", (p) => {
  const conv = store.get(p.ChatId) || store.upsert({ id: p.ChatId, kind: DIRECT, title: p.Sender, partnerId: p.SenderId, lastChat: p.Timestamp });
  if (!conv.partnerId && p.SenderId) conv.partnerId = p.SenderId;
  incoming(conv, p);
});

conn.on("receive-group-message", (p) => {
  let conv = store.get(p.ChatId);
  if (!conv) {
    conv = store.upsert({ id: p.ChatId, kind: GROUP, title: "", lastChat: p.Timestamp });
    refreshSoon(conv.id);
  }
  incoming(conv, p);
});

// Our own message, sent from another tab or device of ours (§14.2): shown at once, as ours,
// and read by us (writing a message means having read up to it). A chat this tab does not
// know yet comes with the lists of the next connect or a sync.
conn.on("message-sent", (p) => {
  const conv = p && store.get(p.ChatId);
  if (!conv) return;
  const msg = fromLive({ ...p, Sender: store.me.name });
  const result = store.addLive(conv, msg);
  resync.note(conv, msg.rev);
  if (result === "duplicate") return;
  store.setPointer(conv, store.me.id, msg.seq);
  if (conv.id === store.openId) announce(`You (another device): ${preview(messagePreview(msg))}`);
});

function onRead(p) {
  const conv = store.get(p.ChatId);
  if (conv && typeof p.Seq === "number") store.setPointer(conv, p.Reader, p.Seq);
}
conn.on("read-personal-msg-ack", onRead);
conn.on("read-grp-msg-ack", onRead);

// Reading on another device (or tab) clears the badge here too. (Newer servers send `unread`
// to every connection of the reader; older ones never do, and nothing depends on it.)
conn.on("unread", (p) => {
  const conv = store.get(p.ChatId);
  if (!conv || typeof p.Unread !== "number") return;
  if (typeof p.Seq === "number") {
    store.setPointer(conv, store.me.id, p.Seq);
    conv.markedSeq = Math.max(conv.markedSeq, p.Seq);
  }
  store.setUnread(conv, p.Unread);
});

// Changes to messages (§13): applied by Id when newer than what we hold, then counted towards
// the chat's position (a hole before them is a gap that resync fills).
conn.on("message-edited", (p) => {
  const conv = p && store.get(p.ChatId);
  if (!conv) return;
  const caption = typeof p.Caption === "string" ? p.Caption : null; // a media message's (§15.3)
  store.applyEdit(conv, { id: p.Id, seq: p.Seq, rev: p.Rev, content: p.Content, caption, editedAt: p.EditedAt });
  resync.note(conv, p.Rev);
});

// Deleted by its sender or a group admin, or hidden or deleted by a moderator: a tombstone.
conn.on("message-deleted", (p) => {
  const conv = p && store.get(p.ChatId);
  if (!conv) return;
  store.applyDelete(conv, { id: p.Id, seq: p.Seq, rev: p.Rev, hidden: Boolean(p.Hidden) });
  resync.note(conv, p.Rev);
});

conn.on("reaction", (p) => {
  const conv = p && store.get(p.ChatId);
  if (!conv) return;
  store.applyReaction(conv, { id: p.Id, seq: p.Seq, rev: p.Rev, emoji: p.Emoji, count: Number(p.Count) || 0, userId: p.UserId, added: Boolean(p.Added) });
  resync.note(conv, p.Rev);
});

conn.on("create-personal-chat-partner", (p) => {
  if (!store.get(p.ChatId)) store.upsert({ id: p.ChatId, kind: DIRECT, title: p.Partner, lastChat: nowIso() });
  announce(`${p.Partner} started a chat with you.`);
});

conn.on("create-group-chat-receiver", (p) => {
  // The group's history starts with its creation notice, which counts as unread.
  if (!store.get(p.GroupId)) store.upsert({ id: p.GroupId, kind: GROUP, title: p.Name, lastChat: nowIso(), seq: 1, unread: 1 });
  announce(`You were added to the group ${p.Name}.`);
});

// A group's membership changed or it was renamed ("Alice added Carol"): in its history like
// any message (with its Rev, so no gap), and the group's details are fetched again.
conn.on("system-message", (p) => {
  const conv = p && store.get(p.ChatId);
  if (!conv || conv.kind !== GROUP) return;
  incoming(conv, { ...p, Kind: "system" });
  refreshSoon(conv.id);
});

conn.on("new-grp-added", (p) => {
  if (!store.get(p.ChatId)) store.upsert({ id: p.ChatId, kind: GROUP, title: p.Name || "", lastChat: nowIso() });
  refreshSoon(p.ChatId);
  announce("You were added to a group.");
});

for (const event of ["add-member-success", "user-left-grp", "someone-kicked-out", "change-admin-success-receiver", "change-admin-success-creator", "kickout-successful"]) {
  conn.on(event, (p) => {
    const id = p.GroupId || p.ChatId;
    if (id && store.get(id)) refreshSoon(id);
  });
}

function removedFromGroup(id, text) {
  const conv = store.get(id);
  if (!conv) return;
  if (store.openId === id) closeConversation();
  store.remove(id);
  notice(text);
}
conn.on("kicked-out", (p) => removedFromGroup(p.GroupId, `You were removed from ${p.GroupName || "a group"}.`));
conn.on("delete-grp-success-receiver", (p) => {
  const conv = store.get(p.GroupId);
  removedFromGroup(p.GroupId, `${conv ? conversationTitle(conv) : "A group"} was deleted by an admin.`);
});

conn.on("disconnect", (reason) => {
  store.setOnline(false);
  resync.reset();
  // What the greeting said is old news from now on; the next greeting tells it again.
  for (const conv of store.conversations.values()) conv.latestRev = null;
  if (reason === "io server disconnect" && !leaving) {
    // Closed by the server without an auth-failure (a restart): connect again ourselves.
    setTimeout(() => conn.reconnectNow(), 1000);
  }
});
conn.onManager("reconnect_attempt", () => renderConnection());
conn.onTransport((name) => {
  document.body.dataset.transport = name;
});
conn.on("connect_error", () => {
  if (!everReady) $("#loading").firstElementChild.textContent = "Cannot reach the chat server. Retrying…";
  renderConnection();
});

// The browser knows before the socket does: drop the connection when the network goes, and
// reconnect at once (no backoff wait) when it is back.
window.addEventListener("offline", () => {
  conn.drop();
  store.setOnline(false);
});
window.addEventListener("online", () => conn.reconnectNow());
document.addEventListener("visibilitychange", () => {
  if (visible()) markRead(store.open);
});
window.addEventListener("focus", () => markRead(store.open));

async function logout() {
  leaving = true;
  $("#logout-btn").disabled = true;
  sessionStorage.removeItem(OPEN_CHAT_KEY);
  await postJSON("/logout");
  conn.close();
  location.replace("/auth");
}

features.attach(conn, store, { typing: $("#typing") });
conn.connect();
