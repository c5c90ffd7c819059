#!/usr/bin/env node
/*
 * Seed 001's React Native app (tyogautomo/realtime-chat-client), as its Redux actions and
 * screens drive the server, with npm socket.io-client 4.0.0 (the app's) and fetch against live servers. Run
 * by tests/protocols/privatechat/test_live.py:
 *
 *     node privatechat_app.mjs <scenario> <url> [<second url>] [<expresschat url> <tenant token>]
 *
 * Each "device" is what the app does on one phone: REST sign-in, then `io(url)` and, buffered
 * before the connection exists, `identity`, `get active chats`, `notify online` with its own
 * `_id` (the id handle), answering `get active chats` with `join room`. (`forceNew` only because
 * several phones share this one Node process: the app's single `io(url)` is a new manager anyway.)
 *
 * Scenarios:
 *   flow     two users, two devices each: sign-up, sign-in, profile, search, add friend (twice),
 *            init chat, the Chat screen's mount sequence, typing, send, read receipts, background
 *            and foreground, the polling transport upgraded to websocket.
 *   holes    a third user tries the original's holes (spec §5.1): events with someone else's id,
 *            from an unbound and a bound socket; joining other people's rooms and socket ids;
 *            init chat / add friend for others; a self chat; typing reaches only the named room;
 *            every event with malformed arguments; then everything still works.
 *   pair     two users on two server processes (one bus on Redis): friend, chat, typing, read,
 *            presence across processes.
 *   reconnect the network drops under a phone: the new socket binds again at the Chat screen's
 *            `read messages` and receives again; a killed app's user goes offline for the others.
 *   mixed    the app's user and an ExpressChat client (a tenant token of the same app, namespace
 *            /apps) share one conversation: messages and read receipts both ways.
 *
 * Output: one JSON object per line: {"kind":"http"|"event"|"emit"|"note",...}, last {"kind":"done"}.
 * The script waits only for what it needs to go on; the Python test asserts the content.
 * Exit codes: 0 done, 1 a step failed (message on stderr), 2 the overall time limit passed.
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
// The app's lockfile version by default: socket.io-client 4.0.0 (npm alias socket.io-client-v400).
const { io } = require(process.env.SOCKET_IO_CLIENT || "socket.io-client-v400");

const OVERALL_LIMIT_MS = 30_000;
const EVENT_WAIT_MS = 8_000;
const START = Date.now();
const TAG = process.env.RUN_TAG || "t";

setTimeout(() => {
  process.stderr.write(`privatechat_app: overall time limit of ${OVERALL_LIMIT_MS} ms passed\n`);
  process.exit(2);
}, OVERALL_LIMIT_MS).unref();

function out(record) {
  process.stdout.write(JSON.stringify({ ...record, ms: Date.now() - START }) + "\n");
}

class StepFailed extends Error {}

function fail(message) {
  throw new StepFailed(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

// --- REST, as the app's axios calls (JSON bodies, no credentials) ---------------------------

async function http(base, method, urlPath, body, note = "") {
  const response = await fetch(base + urlPath, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json;charset=utf-8" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = text;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  out({ kind: "http", note, method, path: urlPath.split("?")[0], status: response.status, body: data });
  return { status: response.status, body: data };
}

async function signUp(base, username, password) {
  const answer = await http(base, "POST", "/user", { username, password }, `signup ${username}`);
  check(answer.status === 201, `sign-up of ${username}: ${answer.status}`);
}

async function signIn(base, username, password) {
  const answer = await http(base, "POST", "/user/signin", { username, password }, `signin ${username}`);
  check(answer.status === 200, `sign-in of ${username}: ${answer.status}`);
  return answer.body; // the profile; `_id` is the handle
}

function search(base, q, handle, note) {
  // As the app: interpolated, not URL-encoded.
  return http(base, "GET", `/user/search?q=${q}&userId=${handle}`, undefined, note);
}

// --- one phone: a socket, every event recorded ------------------------------------------------

class Device {
  constructor(name, base, handle, { bind = true, options = {} } = {}) {
    this.name = name;
    this.handle = handle;
    this.seen = [];
    this.waiters = [];
    this.socket = io(base, { forceNew: true, ...options });
    this.socket.on("connect", () => this.record("connect", null));
    this.socket.on("disconnect", (reason) => this.record("disconnect", reason));
    this.socket.onAny((event, ...args) => {
      this.record(event, args.length === 1 ? args[0] : args);
      // The app's global listener: join every active room.
      if (event === "get active chats" && Array.isArray(args[0]) && this.joinRooms) {
        this.emit("join room", args[0].map((room) => room._id));
      }
    });
    this.joinRooms = bind;
    if (bind) {
      // userAction.js initSocket: emitted at once, flushed in order on connect.
      this.emit("identity", handle);
      this.emit("get active chats", handle);
      this.emit("notify online", handle);
    }
  }

  record(event, data) {
    const entry = { event, data, index: this.seen.length };
    this.seen.push(entry);
    out({ kind: "event", client: this.name, event, data });
    for (const waiter of [...this.waiters]) {
      if (waiter.event === event && waiter.test(data)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(data);
      }
    }
  }

  mark() {
    return this.seen.length;
  }

  // The first `event` (matching `test`) recorded at or after position `from`.
  wait(event, test = () => true, from = 0) {
    const found = this.seen.slice(from).find((e) => e.event === event && test(e.data));
    if (found) return Promise.resolve(found.data);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new StepFailed(`${this.name}: no ${event} within ${EVENT_WAIT_MS} ms`)),
        EVENT_WAIT_MS,
      );
      this.waiters.push({
        event,
        test,
        resolve: (data) => {
          clearTimeout(timer);
          resolve(data);
        },
      });
    });
  }

  since(from, event) {
    return this.seen.slice(from).filter((e) => e.event === event).map((e) => e.data);
  }

  emit(event, ...args) {
    out({ kind: "emit", client: this.name, event, args });
    this.socket.emit(event, ...args);
  }

  // A round trip through this socket: every event it sent before has been handled.
  async probe() {
    const from = this.mark();
    this.emit("get active chats", this.handle);
    return this.wait("get active chats", () => true, from);
  }

  close() {
    this.socket.close();
  }
}

async function upgraded(device) {
  const engine = device.socket.io.engine;
  if (engine.transport.name !== "websocket") {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new StepFailed(`${device.name}: no upgrade`)), EVENT_WAIT_MS);
      engine.once("upgrade", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  out({ kind: "note", note: "transport", client: device.name, transport: engine.transport.name });
}

// The Chat screen's mount (Chat.view.js): read, fetch, online info.
function openChat(device, roomId, recipientId) {
  device.emit("read messages", roomId, device.handle);
  device.emit("fetch messages", roomId);
  device.emit("get online info", recipientId);
}

async function users(base, names) {
  const found = {};
  for (const name of names) {
    const username = `${name}_${TAG}`;
    await signUp(base, username, `pw-${username}-long enough`);
    found[name] = { username, password: `pw-${username}-long enough` };
  }
  return found;
}

// --- scenarios ----------------------------------------------------------------------------------

async function flow(base) {
  await http(base, "GET", "/", undefined, "welcome");
  const u = await users(base, ["alice", "bob"]);
  // Refusals the app meets: a taken name, a wrong password.
  await http(base, "POST", "/user", { username: u.alice.username, password: "another password 1" }, "signup taken");
  await http(base, "POST", "/user/signin", { username: u.alice.username, password: "wrong" }, "signin wrong");
  const a1p = await signIn(base, u.alice.username, u.alice.password);
  const a2p = await signIn(base, u.alice.username, u.alice.password);
  const b1p = await signIn(base, u.bob.username, u.bob.password);
  const b2p = await signIn(base, u.bob.username, u.bob.password);
  await http(base, "GET", `/user/${a1p._id}`, undefined, "profile a1");

  const a1 = new Device("a1", base, a1p._id);
  const a2 = new Device("a2", base, a2p._id);
  const b1 = new Device("b1", base, b1p._id);
  const b2 = new Device("b2", base, b2p._id);
  for (const d of [a1, a2, b1, b2]) await d.wait("get active chats");
  await upgraded(a1);

  // AddFriend: search, add (tapped twice), the friend is gone from the next search.
  const found = await search(base, "alice_", b1p._id, "search before");
  const alice = found.body.find((r) => r.username === u.alice.username);
  check(alice, "bob's search finds alice");
  await http(base, "GET", `/user/${alice._id}`, undefined, "profile by public id");
  b1.emit("add friend", alice._id, b1.handle);
  b1.emit("add friend", alice._id, b1.handle);
  await b1.wait("add friend");
  await b2.wait("add friend");
  const bob = await a1.wait("add friend");
  await a2.wait("add friend");
  await b1.probe();
  await search(base, "alice_", b1p._id, "search after");

  // FriendList: init chat; the Chat screen opens.
  a1.emit("init chat", { userId: a1.handle, friendId: bob._id });
  const init = await a1.wait("init chat");
  const roomId = init.room._id;
  out({ kind: "note", note: "ids", room: roomId, alice: alice._id, bob: bob._id });
  let mark = a1.mark();
  openChat(a1, roomId, bob._id);
  await a1.wait("fetch messages", () => true, mark);
  await a1.wait("get online info", () => true, mark);
  await a1.wait("read messages", () => true, mark);

  // Typing, then send; the sender's typing stops after sending.
  a1.emit("notify typing", true, roomId);
  await b1.wait("notify typing", (v) => v === true);
  await b2.wait("notify typing", (v) => v === true);
  mark = b1.mark();
  a1.emit("send message", { senderId: a1.handle, recipientId: bob._id, roomId, message: "hello bob" });
  a1.emit("notify typing", false, roomId);
  for (const d of [a1, a2, b1, b2]) await d.wait("send message", (m) => m.message.message === "hello bob");
  await b1.wait("notify typing", (v) => v === false, mark);

  // Bob opens the chat: his read moves the pointer; everyone gets `read messages`.
  mark = a1.mark();
  const mark2 = a2.mark();
  openChat(b1, roomId, alice._id);
  await b1.wait("fetch messages");
  const read = await a1.wait("read messages", (r) => r.updatedMessages.some((m) => m.read), mark);
  await a2.wait("read messages", (r) => r.updatedMessages.some((m) => m.read), mark2);
  out({ kind: "note", note: "read", data: read });

  // Bob's devices go to the background one by one: offline only when both are.
  mark = a1.mark();
  b1.emit("background app", b1.handle);
  await b1.probe();
  b2.emit("background app", b2.handle);
  await a1.wait("get online info", (v) => v.isOnline === false, mark);
  mark = a1.mark();
  b1.emit("active app", b1.handle);
  await a1.wait("get online info", (v) => v.isOnline === true, mark);

  // A restart of the app: the list now has the room with its last message.
  const list = await a2.probe();
  out({ kind: "note", note: "active chats", data: list });
  await http(base, "GET", `/user/${a1p._id}`, undefined, "profile a1 after");
  for (const d of [a1, a2, b1, b2]) d.close();
}

async function holes(base) {
  const u = await users(base, ["alice", "bob", "mallory"]);
  const ap = await signIn(base, u.alice.username, u.alice.password);
  const bp = await signIn(base, u.bob.username, u.bob.password);
  const mp = await signIn(base, u.mallory.username, u.mallory.password);
  const a = new Device("alice", base, ap._id);
  const b = new Device("bob", base, bp._id);
  const m = new Device("mallory", base, mp._id);
  for (const d of [a, b, m]) await d.wait("get active chats");
  // Alice befriends bob and mallory and has a room with each (so typing has two rooms to go to).
  const bob = (await search(base, u.bob.username, ap._id, "find bob")).body[0];
  const mallory = (await search(base, u.mallory.username, ap._id, "find mallory")).body[0];
  const alice = (await search(base, u.alice.username, bp._id, "find alice")).body[0];
  a.emit("add friend", bob._id, a.handle);
  a.emit("add friend", mallory._id, a.handle);
  a.emit("init chat", { userId: a.handle, friendId: bob._id });
  const abRoom = (await a.wait("init chat", (i) => i.friendId === bob._id)).room._id;
  a.emit("init chat", { userId: a.handle, friendId: mallory._id });
  const amRoom = (await a.wait("init chat", (i) => i.friendId === mallory._id)).room._id;
  out({ kind: "note", note: "ids", alice: alice._id, bob: bob._id, mallory: mallory._id, abRoom, amRoom });
  a.emit("send message", { senderId: a.handle, recipientId: bob._id, roomId: abRoom, message: "private" });
  await b.wait("send message");

  // An unbound socket claims alice's public id everywhere: nothing binds, nothing answers.
  const spy = new Device("spy", base, alice._id, { bind: false });
  await spy.wait("connect");
  spy.emit("identity", alice._id);
  spy.emit("get active chats", alice._id);
  spy.emit("notify online", alice._id);
  spy.emit("fetch messages", abRoom);
  spy.emit("read messages", abRoom, alice._id);
  spy.emit("send message", { senderId: alice._id, recipientId: bob._id, roomId: abRoom, message: "spoof 1" });
  spy.emit("init chat", { userId: alice._id, friendId: bob._id });
  spy.emit("add friend", mallory._id, alice._id);
  spy.emit("join room", [abRoom, a.socket.id]);
  // Then binds with mallory's own handle: what it gets is mallory's, not alice's.
  spy.handle = mp._id;
  spy.emit("identity", mp._id);
  const spyList = await spy.probe();
  out({ kind: "note", note: "spy list", data: spyList });

  // Mallory's bound socket: someone else's id in a self position, rooms she is not in.
  let mark = m.mark();
  m.emit("get active chats", alice._id);
  m.emit("read messages", abRoom, m.handle);
  m.emit("fetch messages", abRoom);
  m.emit("join room", [abRoom, a.socket.id, b.socket.id]);
  m.emit("send message", { senderId: m.handle, recipientId: bob._id, roomId: abRoom, message: "spoof 2" });
  m.emit("send message", { senderId: alice._id, recipientId: bob._id, roomId: abRoom, message: "spoof 3" });
  m.emit("send message", { senderId: m.handle, recipientId: bob._id, roomId: amRoom, message: "spoof 4" });
  m.emit("init chat", { userId: alice._id, friendId: bob._id });
  m.emit("init chat", { userId: m.handle, friendId: mallory._id });
  m.emit("add friend", mallory._id, bob._id);
  m.emit("add friend", bob._id, alice._id);
  m.emit("notify typing", true, abRoom);
  await m.probe();
  out({ kind: "note", note: "mallory after holes", events: m.seen.slice(mark).map((e) => e.event) });

  // Typing goes only to the room named: alice types to bob; mallory shares another room with her.
  const mMark = m.mark();
  a.emit("notify typing", true, abRoom);
  await b.wait("notify typing", (v) => v === true);
  // A message to mallory after it: mallory has it, and no typing before it.
  a.emit("send message", { senderId: a.handle, recipientId: mallory._id, roomId: amRoom, message: "to mallory" });
  await m.wait("send message", (x) => x.message.message === "to mallory", mMark);
  out({ kind: "note", note: "mallory after typing", events: m.seen.slice(mMark).map((e) => e.event) });

  // Malformed arguments for every event, on a bound socket and on an unbound one.
  const junk = [[], [null], [42], [true], [{}], [[]], ["x".repeat(5000)], [{ a: { b: { c: [1, 2, { d: null }] } } }]];
  const names = [
    "identity", "get active chats", "notify online", "join room", "leave room", "get online info",
    "notify typing", "init chat", "send message", "fetch messages", "read messages", "add friend",
    "active app", "background app", "no such event",
  ];
  const loose = new Device("loose", base, null, { bind: false });
  await loose.wait("connect");
  mark = m.mark();
  for (const name of names) {
    for (const args of junk) {
      m.emit(name, ...args);
      loose.emit(name, ...args);
    }
  }
  m.emit("notify typing", "yes", amRoom);
  m.emit("notify typing", true);
  m.emit("send message", { senderId: m.handle, recipientId: alice._id, roomId: amRoom, message: 7 });
  m.emit("send message", { senderId: m.handle, recipientId: alice._id, roomId: amRoom, message: "" });
  m.emit("read messages", null, m.handle);
  m.emit("init chat", { userId: m.handle, friendId: { $ne: null } });
  m.emit("add friend", { $ne: null }, m.handle);
  m.emit("get online info", { toString: 1 });
  const after = await m.probe();
  out({ kind: "note", note: "after junk", events: m.seen.slice(mark).map((e) => e.event), list: after });
  // Still serving: a legit round trip, and a fresh app start.
  m.emit("send message", { senderId: m.handle, recipientId: alice._id, roomId: amRoom, message: "still up" });
  await a.wait("send message", (x) => x.message.message === "still up");
  const fresh = new Device("fresh", base, mp._id);
  await fresh.wait("get active chats");
  out({ kind: "note", note: "loose events", events: loose.seen.map((e) => e.event) });
  for (const d of [a, b, m, spy, loose, fresh]) d.close();
}

async function pair(base, other) {
  const u = await users(base, ["alice", "bob"]);
  const ap = await signIn(base, u.alice.username, u.alice.password);
  const bp = await signIn(other, u.bob.username, u.bob.password);
  const a = new Device("a", base, ap._id);
  const b = new Device("b", other, bp._id);
  await a.wait("get active chats");
  await b.wait("get active chats");
  const alice = (await search(other, u.alice.username, bp._id, "find alice")).body[0];
  b.emit("add friend", alice._id, b.handle);
  const bob = await a.wait("add friend");
  a.emit("init chat", { userId: a.handle, friendId: bob._id });
  const roomId = (await a.wait("init chat")).room._id;
  a.emit("notify typing", true, roomId);
  await b.wait("notify typing", (v) => v === true);
  a.emit("send message", { senderId: a.handle, recipientId: bob._id, roomId, message: "across" });
  await b.wait("send message", (m) => m.message.message === "across");
  await a.wait("send message", (m) => m.message.message === "across");
  let mark = a.mark();
  openChat(b, roomId, alice._id);
  await a.wait("read messages", (r) => r.updatedMessages.every((m) => m.read), mark);
  b.emit("get online info", alice._id);
  await b.wait("get online info", (v) => v.recipientId === alice._id);
  mark = b.mark();
  a.emit("background app", a.handle);
  await b.wait("get online info", (v) => v.isOnline === false, mark);
  out({ kind: "note", note: "ids", room: roomId, alice: alice._id, bob: bob._id });
  a.close();
  b.close();
}

async function reconnect(base) {
  const u = await users(base, ["alice", "bob"]);
  const ap = await signIn(base, u.alice.username, u.alice.password);
  const bp = await signIn(base, u.bob.username, u.bob.password);
  const a = new Device("a", base, ap._id);
  const b = new Device("b", base, bp._id);
  await a.wait("get active chats");
  await b.wait("get active chats");
  const bob = (await search(base, u.bob.username, ap._id, "find bob")).body[0];
  a.emit("add friend", bob._id, a.handle);
  const alice = await b.wait("add friend");
  a.emit("init chat", { userId: a.handle, friendId: bob._id });
  const roomId = (await a.wait("init chat")).room._id;
  // The network drops under bob's app: socket.io-client reconnects by itself, and the app sends
  // nothing on reconnect (spec §5.3 Q6). The new socket is unbound.
  let mark = b.mark();
  b.socket.io.engine.close();
  await b.wait("disconnect", () => true, mark);
  await b.wait("connect", () => true, mark);
  mark = b.mark();
  b.emit("fetch messages", roomId); // no self argument: dropped while unbound
  // The Chat screen opens: `read messages` carries the handle and binds the socket again.
  openChat(b, roomId, alice._id);
  // Answered in order on one socket: once `get online info` (sent last) is answered, every
  // `fetch messages` answer there will be is in.
  await b.wait("get online info", () => true, mark);
  out({ kind: "note", note: "after reconnect", events: b.since(mark, "fetch messages").length });
  a.emit("send message", { senderId: a.handle, recipientId: bob._id, roomId, message: "after the drop" });
  await b.wait("send message", (m) => m.message.message === "after the drop", mark);
  // Bob's app is killed: his last socket ends, and alice sees him offline. Presence pushes are
  // debounced: when the reconnect and the kill fall in one debounce window they are one flap,
  // published as nothing (alice last heard "offline" at the drop). So alice asks, as her Chat
  // screen does, until the answer (read from presence, not debounced) says offline.
  b.socket.close();
  let offline = false;
  for (let attempt = 0; attempt < 16 && !offline; attempt += 1) {
    mark = a.mark();
    a.emit("get online info", bob._id);
    offline = (await a.wait("get online info", (v) => v.recipientId === bob._id, mark)).isOnline === false;
    if (!offline) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (!offline) throw new StepFailed("a: bob still online 8 s after his app was killed");
  out({ kind: "note", note: "ids", room: roomId, alice: alice._id, bob: bob._id });
  a.close();
}

async function mixed(base, expressUrl, carolToken) {
  const u = await users(base, ["alice"]);
  const ap = await signIn(base, u.alice.username, u.alice.password);
  const a = new Device("alice", base, ap._id);
  await a.wait("get active chats");
  // Carol: the app's tenant signed a token for her; she uses ExpressChat on namespace /apps.
  const carol = io(`${expressUrl}/apps`, {
    forceNew: true,
    transports: ["websocket"],
    auth: { token: carolToken },
    extraHeaders: { host: process.env.EXPRESSCHAT_HOST },
  });
  const carolSeen = [];
  const carolWaiters = [];
  carol.onAny((event, ...args) => {
    out({ kind: "event", client: "carol", event, data: args[0] });
    carolSeen.push({ event, data: args[0] });
    for (const w of [...carolWaiters]) {
      if (w.event === event) {
        carolWaiters.splice(carolWaiters.indexOf(w), 1);
        w.resolve(args[0]);
      }
    }
  });
  const carolNext = (event) =>
    new Promise((resolve, reject) => {
      const found = carolSeen.find((e) => e.event === event);
      if (found) {
        carolSeen.splice(carolSeen.indexOf(found), 1);
        resolve(found.data);
        return;
      }
      const timer = setTimeout(() => reject(new StepFailed(`carol: no ${event}`)), EVENT_WAIT_MS);
      carolWaiters.push({ event, resolve: (d) => { clearTimeout(timer); resolve(d); } });
    });
  const me = await carolNext("user-id");
  const found = (await search(base, "carol", ap._id, "find carol")).body;
  const carolRef = found.find((r) => r._id === me.userId);
  check(carolRef, "alice finds carol");
  a.emit("add friend", carolRef._id, a.handle);
  await a.wait("add friend");
  a.emit("init chat", { userId: a.handle, friendId: carolRef._id });
  const roomId = (await a.wait("init chat")).room._id;
  a.emit("send message", { senderId: a.handle, recipientId: carolRef._id, roomId, message: "from the app" });
  const got = await carolNext("receive-personal-message");
  out({ kind: "note", note: "carol got", data: got });
  const mark = a.mark();
  carol.emit("send-personal-message", { ChatId: roomId, Content: "from expresschat" });
  await a.wait("send message", (m) => m.message.message === "from expresschat", mark);
  carol.emit("read-personal-message", { ChatId: roomId });
  await a.wait("read messages", (r) => r.updatedMessages.some((m) => m.message === "from the app" && m.read), mark);
  openChat(a, roomId, carolRef._id);
  const ack = await carolNext("read-personal-msg-ack");
  out({ kind: "note", note: "ids", room: roomId, carol: carolRef._id, ack });
  a.close();
  carol.close();
}

const [scenario, url, ...rest] = process.argv.slice(2);
const run = { flow, holes, pair, mixed, reconnect }[scenario];
try {
  if (!run) fail(`unknown scenario ${scenario}`);
  await run(url, ...rest);
  out({ kind: "done" });
  process.exit(0);
} catch (error) {
  process.stderr.write(`privatechat_app: ${error && error.stack ? error.stack : error}\n`);
  out({ kind: "error", message: String(error && error.message) });
  process.exit(1);
}
