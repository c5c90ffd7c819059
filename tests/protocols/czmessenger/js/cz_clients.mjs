#!/usr/bin/env node
/*
 * CZ Messenger clients as the marketplace apps run them: npm socket.io-client 2.3.1 (the alias
 * socket.io-client-v2), websocket only, credentials in the query. Run by
 * tests/protocols/czmessenger/test_live.py:
 *
 *     node cz_clients.mjs '<json config>'
 *
 * config: {scenario, buyerUrl, sellerUrl, buyer: {id, token}, seller: {id, token}, path, nsp,
 *          legacy: {path, nsp}}
 * Prints one JSON object per line ({"kind":"event"|"step"|"error", ...}) and {"kind":"done"}.
 * Exit codes: 0 done, 1 a step failed, 2 time limit passed.
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
const io2 = require("socket.io-client-v2");

const LIMIT_MS = 40_000;
const WAIT_MS = 10_000;
const config = JSON.parse(process.argv[2]);

setTimeout(() => {
  out({ kind: "error", message: `time limit of ${LIMIT_MS} ms passed` });
  process.exit(2);
}, LIMIT_MS).unref();

function out(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

const EVENTS = [
  "active_user_list", "create_room", "new_message", "typing", "stop_typing", "seen_messages",
  "verify_user", "user_status_change", "room_deletion", "error", "connect", "reconnect",
  "receive-personal-message", "typing-expresschat", "read-personal-msg-ack", "group-chat-list",
];

function client(name, url, query, { nsp, path: p, reconnection = false } = {}) {
  const socket = io2(url + (nsp || config.nsp), {
    path: p || config.path, transports: ["websocket"], query, reconnection, reconnectionDelay: 200,
  });
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

function next(socket, name, match = () => true) {
  const found = socket.seen.findIndex(([n, d]) => n === name && match(d));
  if (found >= 0) return Promise.resolve(socket.seen.splice(found, 1)[0][1]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name}`)), WAIT_MS);
    socket.waiters.push((n, data) => {
      if (n !== name || !match(data)) return false;
      clearTimeout(timer);
      socket.seen.splice(socket.seen.findIndex(([m, d]) => m === n && d === data), 1);
      resolve(data);
      return true;
    });
  });
}

async function nothing(socket, name, ms = 700) {
  await new Promise((r) => setTimeout(r, ms));
  return socket.seen.filter(([n]) => n === name).length;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function q(who, role) {
  return { token: config[who].token, user_id: config[who].id, user_role: role };
}

async function chat() {
  const b = config.buyer.id, s = config.seller.id, room = `${b}.${s}`;
  const buyer = client("buyer", config.buyerUrl, q("buyer", "BUYER"));
  await next(buyer, "active_user_list");
  buyer.emit("create_room", { type: "BS", buyer: b, seller: s, shop_id: "123", creator: b, buyer_info: { name: "Le Vuong", secret: "x" } });
  await next(buyer, "create_room");
  const seller = client("seller", config.sellerUrl, q("seller", "SELLER"));
  const seller2 = client("seller2", config.sellerUrl, q("seller", "SELLER"));
  await next(seller, "active_user_list");
  await next(seller2, "active_user_list");
  await next(buyer, "user_status_change", (d) => d.status === true);
  out({ kind: "step", step: "connected" });

  buyer.emit("new_message", { room_id: room, from: b, to: s, type: "TEXT", content: "hello", client_message_id: "c-1", evil: 1 });
  await next(buyer, "new_message");
  await next(seller, "new_message");
  await next(seller2, "new_message");
  // A retry of the same client message id: the original message comes back, nothing new is sent.
  buyer.emit("new_message", { room_id: room, from: b, to: s, type: "TEXT", content: "hello", client_message_id: "c-1" });
  await next(buyer, "new_message");
  // Spoofed sender, and a room the buyer is not in: dropped silently.
  buyer.emit("new_message", { room_id: room, from: s, to: b, type: "TEXT", content: "spoof" });
  buyer.emit("new_message", { room_id: `${b}.nobody`, from: b, to: "nobody", type: "TEXT", content: "lost" });
  buyer.emit("new_message", "not an object");
  out({ kind: "step", step: "extra-seller-messages", count: await nothing(seller, "new_message") });

  buyer.emit("typing", { room_id: room, from: b, to: s });
  await next(seller, "typing");
  await next(seller2, "typing");
  buyer.emit("stop_typing", { from: b, to: s });
  await next(seller, "stop_typing");
  out({ kind: "step", step: "buyer-own-typing", count: buyer.seen.filter(([n]) => n === "typing").length });

  seller.emit("new_message", { room_id: room, from: s, to: b, type: "TEXT", content: "hi buyer", client_message_id: "s-1" });
  const mine = await next(seller, "new_message");
  const got = await next(buyer, "new_message");
  await next(seller2, "new_message");
  buyer.emit("seen_messages", { room_id: room, from: b, to: s, last_message_id: got._id, last_message_created_at: got.created_at });
  await next(seller, "seen_messages");
  out({ kind: "step", step: "seen", sellerMessage: mine._id });
  buyer.emit("seen_messages", { room_id: room, from: b, to: s, message_ids: [got._id] });
  await next(seller, "seen_messages");

  // An IMAGE whose content is a URL (no client_message_id, as the apps send it): IMAGE for
  // the sender's echo and the seller's two tabs.
  buyer.emit("new_message", { room_id: room, from: b, to: s, type: "IMAGE", content: "https://cdn.example/a.jpg" });
  const imageEcho = await next(buyer, "new_message");
  const imageCopies = [await next(seller, "new_message"), await next(seller2, "new_message")];
  out({ kind: "step", step: "image", echo: imageEcho, copies: imageCopies });

  // REST DELETE of the room by the seller: both parties' sockets hear `room_deletion`.
  const deleted = await fetch(`${config.sellerUrl}/v1/conversations/rooms/${room}`, {
    method: "DELETE", headers: { Authorization: `Bearer ${config.seller.token}` },
  });
  out({ kind: "step", step: "deleted", status: deleted.status, body: await deleted.json() });
  await next(buyer, "room_deletion");
  await next(seller2, "room_deletion");

  seller2.close();
  seller.close();
  await next(buyer, "user_status_change", (d) => d.status === false);
  buyer.close();
  out({ kind: "done" });
}

async function refused() {
  const bad = client("bad", config.buyerUrl, { token: "nope", user_id: config.buyer.id, user_role: "BUYER" });
  await next(bad, "error");
  const other = client("other", config.buyerUrl, { token: config.buyer.token, user_id: config.seller.id, user_role: "BUYER" });
  await next(other, "error");
  const none = client("none", config.buyerUrl, { user_id: config.buyer.id, user_role: "BUYER" });
  await next(none, "error");
  bad.close(); other.close(); none.close();
  out({ kind: "done" });
}

async function reconnect() {
  const buyer = client("buyer", config.buyerUrl, q("buyer", "BUYER"), { reconnection: true });
  await next(buyer, "active_user_list");
  buyer.on("reconnect", () => buyer.emit("verify_user", q("buyer", "BUYER")));
  buyer.io.engine.close(); // the network went away: the client reconnects by itself
  await next(buyer, "reconnect");
  const verified = await next(buyer, "verify_user");
  const gone = new Promise((resolve) => buyer.once("disconnect", resolve));
  buyer.emit("verify_user", { token: config.buyer.token, user_id: config.seller.id, user_role: "BUYER" });
  await next(buyer, "verify_user", (d) => d.status === false);
  const reason = await gone; // the server disconnects the socket, as the original did
  out({ kind: "step", step: "verified", status: verified.status, afterFalse: reason });
  buyer.close();
  out({ kind: "done" });
}

async function legacy() {
  // The 4aa7954 clients: /socket.io + /messenger, no user_id (identity from the token).
  const buyer = client("buyer", config.buyerUrl, { token: config.buyer.token, user_role: "BUYER" }, config.legacy);
  await next(buyer, "active_user_list");
  buyer.close();
  out({ kind: "done" });
}

const SCENARIOS = { chat, refused, reconnect, legacy };

SCENARIOS[config.scenario]().then(() => process.exit(0)).catch((error) => {
  out({ kind: "error", message: String(error && error.message) });
  process.exit(1);
});
