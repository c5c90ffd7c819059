#!/usr/bin/env node
/*
 * One conversation, two protocols: Alice with the CZ Messenger app (socket.io-client 2.3.1,
 * first-party access token in the query), Bob with ExpressChat (socket.io-client 4). Run by
 * tests/protocols/czmessenger/test_mixed_protocols.py:
 *
 *     node cz_and_expresschat.mjs <cz-url> <ec-url> <alice-id> <alice-token> <bob-id> <bob-token>
 *
 * Prints one JSON object per line and {"kind":"done"}; exit 1 when a step failed.
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
const io4 = require("socket.io-client");
const io2 = require("socket.io-client-v2");

const WAIT_MS = 10_000;
const [czUrl, ecUrl, aliceId, aliceToken, bobId, bobToken] = process.argv.slice(2);
setTimeout(() => { out({ kind: "error", message: "time limit" }); process.exit(2); }, 40_000).unref();

function out(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

function recorder(client, socket, names) {
  socket.seen = [];
  socket.waiters = [];
  for (const name of names) {
    socket.on(name, (data) => {
      out({ kind: "event", client, event: name, data: data === undefined ? null : data });
      socket.seen.push([name, data]);
      socket.waiters = socket.waiters.filter((w) => !w(name, data));
    });
  }
  return socket;
}

function next(socket, name) {
  const found = socket.seen.findIndex(([n]) => n === name);
  if (found >= 0) return Promise.resolve(socket.seen.splice(found, 1)[0][1]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name}`)), WAIT_MS);
    socket.waiters.push((n, data) => {
      if (n !== name) return false;
      clearTimeout(timer);
      socket.seen.splice(socket.seen.findIndex(([m, d]) => m === n && d === data), 1);
      resolve(data);
      return true;
    });
  });
}

function call(socket, event, data) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), WAIT_MS);
    socket.emit(event, data, (ack) => { clearTimeout(timer); resolve(ack); });
  });
}

async function main() {
  const room = `${aliceId}.${bobId}`;
  const alice = recorder("alice", io2(czUrl + "/v1/conversations/events", {
    path: "/v1/conversations/sockets", transports: ["websocket"], reconnection: false,
    query: { token: aliceToken, user_id: aliceId, user_role: "BUYER" },
  }), ["active_user_list", "create_room", "new_message", "typing", "stop_typing", "seen_messages", "error"]);
  const bob = recorder("bob", io4(ecUrl, { transports: ["websocket"], auth: { token: bobToken }, reconnection: false }),
    ["group-chat-list", "receive-personal-message", "typing", "read-personal-msg-ack", "create-personal-chat-partner"]);
  await next(alice, "active_user_list");
  await next(bob, "group-chat-list");
  alice.emit("create_room", { type: "BS", buyer: aliceId, seller: bobId, creator: aliceId });
  await next(alice, "create_room");
  alice.emit("new_message", { room_id: room, from: aliceId, to: bobId, type: "TEXT", content: "from cz", client_message_id: "a-1" });
  await next(alice, "new_message");
  const received = await next(bob, "receive-personal-message");
  const chatId = received.ChatId;
  await call(bob, "send-personal-message", { ChatId: chatId, Content: "from expresschat" });
  await next(alice, "new_message");
  alice.emit("typing", { room_id: room, from: aliceId, to: bobId });
  await next(bob, "typing");
  await call(bob, "typing", { ChatId: chatId });
  await next(alice, "typing");
  await call(bob, "read-personal-message", { ChatId: chatId });
  await next(alice, "seen_messages");
  alice.emit("seen_messages", { room_id: room, from: aliceId, to: bobId, last_message_created_at: new Date().toISOString() });
  await next(bob, "read-personal-msg-ack");
  // Alice blocks the room over CZ Messenger REST: the block is the conversation's, so Bob's
  // ExpressChat send is refused; once she unblocks, it goes through again.
  const block = async (flag) => {
    const answer = await fetch(`${czUrl}/v1/conversations/rooms/${room}/block`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${aliceToken}` },
      body: JSON.stringify({ block: flag }),
    });
    out({ kind: "rest", step: flag ? "block" : "unblock", status: answer.status, data: await answer.json() });
  };
  await block(true);
  out({ kind: "ack", step: "blocked-send", data: await call(bob, "send-personal-message", { ChatId: chatId, Content: "while blocked" }) });
  await block(false);
  out({ kind: "ack", step: "unblocked-send", data: await call(bob, "send-personal-message", { ChatId: chatId, Content: "after unblock" }) });
  await next(alice, "new_message");
  alice.close();
  bob.close();
  out({ kind: "done" });
  process.exit(0);
}

main().catch((error) => { out({ kind: "error", message: String(error && error.message) }); process.exit(1); });
