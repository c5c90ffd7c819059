#!/usr/bin/env node
/*
 * The marketplace's customer and artisan apps as seed 002's README runs them: npm
 * socket.io-client 2.3.1 (the alias socket.io-client-v2), websocket only, the id in the query.
 * Run by tests/protocols/roomtoken/test_live.py:
 *
 *     node roomtoken_clients.mjs '<json config>'
 *
 * config: {scenario, urlA, urlB, customer, artisan, stranger: {id, handle}, tenantApi?,
 *          artisanToken?}
 * Prints one JSON object per line ({"kind":"event"|"step"|"error", ...}) and {"kind":"done"}.
 * Exit codes: 0 done, 1 a step failed, 2 time limit passed. The waits are failure limits only:
 * no step depends on how long anything takes.
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
const io2 = require("socket.io-client-v2");
const io4 = require("socket.io-client");

const LIMIT_MS = 50_000;
const WAIT_MS = 10_000;
const config = JSON.parse(process.argv[2]);
const { customer: C, artisan: A, stranger: S } = config;

setTimeout(() => {
  out({ kind: "error", message: `time limit of ${LIMIT_MS} ms passed` });
  process.exit(2);
}, LIMIT_MS).unref();

function out(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

const step = (name, data) => out({ kind: "step", step: name, ...data });

const EVENTS = [
  "private", "joined", "join-room", "accept-room", "message", "typing", "leave", "leave-room",
  "AUTH_FAILED", "connect", "disconnect", "error",
  "chat-request", "chat-request-accepted", "receive-personal-message", "group-chat-list",
];

function record(name, socket) {
  socket.seen = [];
  socket.waiters = [];
  for (const event of EVENTS) {
    socket.on(event, (data) => {
      out({ kind: "event", client: name, event, data: data === undefined ? null : data });
      socket.seen.push([event, data]);
      socket.waiters = socket.waiters.filter((w) => !w(event, data));
    });
  }
  return socket;
}

function client(name, url, nsp, query) {
  return record(name, io2(url + nsp, { transports: ["websocket"], query, reconnection: false }));
}

function next(socket, name, match = () => true) {
  const found = socket.seen.findIndex(([n, d]) => n === name && match(d));
  if (found >= 0) return Promise.resolve(socket.seen.splice(found, 1)[0][1]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not come`)), WAIT_MS);
    socket.waiters.push((n, data) => {
      if (n !== name || !match(data)) return false;
      clearTimeout(timer);
      socket.seen.splice(socket.seen.findIndex(([m, d]) => m === n && d === data), 1);
      resolve(data);
      return true;
    });
  });
}

const isEvent = (kind) => (d) => d && d.event === kind;

async function bootstrap(socket) {
  const rooms = await next(socket, "private", isEvent("list-room"));
  const online = await next(socket, "private", isEvent("list-online-user"));
  return { rooms, online };
}

function room(customerID, vendorID, roomToken, roomID) {
  return { customerID, vendorID, roomToken, ...(roomID ? { roomID } : {}) };
}

async function flow() {
  const cust = client("customer", config.urlA, "/customer", { userId: C.handle });
  const custBoot = await bootstrap(cust);
  step("customer-bootstrap", { ...custBoot, engine: { pingInterval: cust.io.engine.pingInterval, pingTimeout: cust.io.engine.pingTimeout } });
  const art = client("artisan", config.urlB, "/customer", { userId: A.handle });
  const art2 = client("artisan2", config.urlB, "/customer", { userId: A.handle });
  step("artisan-bootstrap", { first: await bootstrap(art), second: await bootstrap(art2) });

  // The customer asks for a chat; both artisan tabs hear the request.
  cust.emit("join-room", room(C.handle, A.id, "tok-1", "r-1"));
  const joined = await next(cust, "joined");
  const request = await next(art, "join-room");
  const request2 = await next(art2, "join-room");
  cust.emit("message", { message: "before accept", type: "text", roomToken: "tok-1" });
  const early = await next(cust, "message");
  step("requested", { joined, request, request2, early });

  // The artisan accepts; the customer hears it.
  art.emit("accept-room", room(C.id, A.handle, "tok-1", "r-1"));
  const acceptJoined = await next(art, "joined");
  const accepted = await next(cust, "accept-room");
  step("accepted", { acceptJoined, accepted });

  // Both talk; every socket of both parties gets each message, each seeing itself by its own id.
  art.emit("message", { message: "hi there", type: "text", roomToken: "tok-1" });
  const hiC = await next(cust, "message");
  const hiA = await next(art, "message");
  const hiA2 = await next(art2, "message");
  cust.emit("message", { message: "https://cdn.example/p.png", type: "image", roomToken: "tok-1" });
  const imageA = await next(art, "message");
  const imageC = await next(cust, "message");
  step("talk", { hiC, hiA, hiA2, imageA, imageC });

  // Typing reaches every tab of the other party.
  cust.emit("typing", { roomToken: "tok-1" });
  step("typing", { first: await next(art, "typing"), second: await next(art2, "typing") });

  for (let i = 1; i <= 6; i++) {
    cust.emit("message", { message: `n${i}`, type: "text", roomToken: "tok-1" });
    await next(art, "message", (d) => d.message === `n${i}`);
  }

  // A stranger who guessed the token: refused, and its message is not stored (the test reads
  // the history afterwards). Its own room afterwards is the barrier: events of one socket are
  // handled in order.
  const str = client("stranger", config.urlA, "/customer", { userId: S.handle });
  await bootstrap(str);
  str.emit("join-room", room(S.handle, A.id, "tok-1"));
  const strangerJoined = await next(str, "joined");
  str.emit("join-room", room(C.id, A.id, "tok-1"));
  const claimed = await next(str, "joined");
  str.emit("message", { message: "spoof", type: "text", roomToken: "tok-1" });
  str.emit("typing", { roomToken: "tok-1" });
  str.emit("leave-room", { roomToken: "tok-1" });
  str.emit("message", ["not", "an", "object"]);
  str.emit("join-room", room(S.handle, A.id, "tok-s"));
  const own = await next(str, "joined");
  str.close();
  step("stranger", { strangerJoined, claimed, own });

  // The artisan leaves the room from one tab: the customer hears `leave`, the tab gets its ack,
  // and neither artisan tab gets the room's messages, nor may write into it, until the artisan
  // accepts again (the first message either tab gets afterwards is "back").
  await next(art2, "message", (d) => d.message === "n6");
  for (const s of [art, art2]) s.seen = s.seen.filter(([n]) => n !== "message");
  art2.emit("leave-room", { roomToken: "tok-1" });
  const ack = await next(art2, "leave-room");
  const leftC = await next(cust, "leave");
  art.emit("message", { message: "after leaving", type: "text", roomToken: "tok-1" });
  cust.emit("message", { message: "while away", type: "text", roomToken: "tok-1" });
  await next(cust, "message", (d) => d.message === "while away");
  art.emit("accept-room", room(C.id, A.handle, "tok-1"));
  const rejoined = await next(art, "joined");
  cust.emit("message", { message: "back", type: "text", roomToken: "tok-1" });
  const back = await next(art, "message");
  const back2 = await next(art2, "message");
  const leaveToArtisan = [...art.seen, ...art2.seen].filter(([n]) => n === "leave").length;
  step("leave", { ack, leftC, rejoined, back, back2, leaveToArtisan });

  // The same token in the other namespace is another room (a new request).
  const custArt = client("customer-artisans", config.urlA, "/artisans", { userId: C.handle });
  const otherBoot = await bootstrap(custArt);
  custArt.emit("join-room", room(C.handle, A.id, "tok-1", "r-2"));
  const otherJoined = await next(custArt, "joined");
  step("namespaces", { otherBoot, otherJoined });

  // The artisan closes both tabs: offline at once, in the room's namespace; back online later.
  art.close();
  art2.close();
  const offline = await next(cust, "private", isEvent("offline"));
  // A new socket of the customer no longer lists the artisan (the original kept it 300 s).
  const cust2 = client("customer2", config.urlB, "/customer", { userId: C.handle });
  const afterOffline = await bootstrap(cust2);
  const art3 = client("artisan3", config.urlB, "/customer", { userId: A.handle });
  const againBoot = await bootstrap(art3);
  const online = await next(cust, "private", isEvent("online"));
  step("presence", { offline, online, againBoot, afterOffline });
  for (const s of [cust, cust2, custArt, art3]) s.close();
}

async function refused() {
  const results = {};
  for (const [name, query] of [
    ["missing", {}],
    ["unknown", { userId: "x".repeat(27) }],
    ["revoked", { userId: config.revokedHandle }],
    ["bad-token", { token: "a.b.c" }],
  ]) {
    const socket = client(name, config.urlA, "/customer", query);
    const failed = await next(socket, "AUTH_FAILED");
    await next(socket, "disconnect");
    results[name] = failed;
  }
  // README's form: customerID in the query, and a tenant token for updated apps; connecting
  // together, each with its own identity (spec §8.4). The online list names only people who
  // share a room (none here), not everyone connected (spec §8.5).
  const readme = client("readme", config.urlA, "/customer", { customerID: C.handle });
  const updated = client("updated", config.urlA, "/customer", { token: config.artisanToken });
  const [readmeBoot, updatedBoot] = await Promise.all([bootstrap(readme), bootstrap(updated)]);
  step("refused", { results, readmeBoot, updatedBoot });

  // A live socket whose handle the marketplace revokes is disconnected.
  const response = await fetch(`${config.urlA}/api/tenant/v1/handles/${config.liveHandleId}`, {
    method: "DELETE",
    headers: { Authorization: config.appKey },
  });
  const dropped = await next(readme, "disconnect");
  step("revoked-live", { status: response.status, dropped });
  updated.close();
}

function ecClient(name, url, token) {
  const socket = io4(url + "/apps", { transports: ["websocket"], auth: { token }, reconnection: false });
  return record(name, socket);
}

function call(socket, event, data) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), WAIT_MS);
    socket.emit(event, data, (ack) => {
      clearTimeout(timer);
      resolve(ack);
    });
  });
}

async function expresschat() {
  // The customer app asks; the artisan answers from an ExpressChat client of the same app.
  const cust = client("customer", config.urlA, "/customer", { userId: C.handle });
  await bootstrap(cust);
  const ec = ecClient("artisan-ec", config.urlB, config.artisanToken);
  // The greeting, not `connect`: the server subscribes a connection to its user's events after
  // answering CONNECT and before greeting it (gateway/hub.py), so only the greeting says that
  // the request below cannot pass it by.
  await next(ec, "group-chat-list");
  cust.emit("join-room", room(C.handle, A.id, "tok-ec", "r-ec"));
  const joined = await next(cust, "joined");
  const request = await next(ec, "chat-request");
  cust.emit("message", { message: "anyone?", type: "text", roomToken: "tok-ec" });
  await next(cust, "message");
  const accept = await call(ec, "accept-chat-request", { RequestId: request.RequestId });
  const accepted = await next(cust, "accept-room");
  const sent = await call(ec, "send-personal-message", { ChatId: request.ChatId, Content: "hello from ExpressChat" });
  const fromEc = await next(cust, "message");
  cust.emit("message", { message: "hello from the app", type: "text", roomToken: "tok-ec" });
  const toEc = await next(ec, "receive-personal-message");
  step("expresschat", { joined, request, accept, accepted, sent, fromEc, toEc });
  cust.close();
  ec.close();
}

const SCENARIOS = { flow, refused, expresschat };

try {
  await SCENARIOS[config.scenario]();
  out({ kind: "done" });
  process.exit(0);
} catch (error) {
  out({ kind: "error", message: String(error && error.stack ? error.stack : error) });
  process.exit(1);
}
