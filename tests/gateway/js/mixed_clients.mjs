#!/usr/bin/env node
/*
 * One conversation, two client generations: Alice with socket.io-client 4.0.1 (Engine.IO 4),
 * Bob with socket.io-client 2.3.1 (Engine.IO 3; the npm alias socket.io-client-v2), both
 * speaking ExpressChat on /socket.io/, possibly on two different server processes. Run by
 * tests/gateway/test_mixed_clients.py:
 *
 *     node tests/gateway/js/mixed_clients.mjs <alice-url> <bob-url> <alice-token> <bob-access> <bob-refresh> <bob-id>
 *
 * Prints one JSON object per line ({"kind":"event"|"ack"|"step", ...}) and {"kind":"done"}.
 * Exit codes: 0 done, 1 a step failed, 2 time limit passed.
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
const io4 = require("socket.io-client");
const io2 = require("socket.io-client-v2");

const LIMIT_MS = 20_000;
const WAIT_MS = 8_000;
const [aliceUrl, bobUrl, aliceToken, bobToken, bobRefresh, bobId] = process.argv.slice(2);

setTimeout(() => {
  out({ kind: "error", message: `time limit of ${LIMIT_MS} ms passed` });
  process.exit(2);
}, LIMIT_MS).unref();

function out(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

function recorder(client, socket) {
  socket.seen = [];
  socket.waiters = [];
  const names = ["user-id", "group-chat-list", "receive-personal-message", "create-personal-chat-partner", "auth-failure"];
  for (const name of names) {
    socket.on(name, (data) => {
      out({ kind: "event", client, event: name, data });
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
      socket.seen.splice(socket.seen.findIndex(([m]) => m === name), 1);
      resolve(data);
      return true;
    });
  });
}

function call(client, socket, event, data) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), WAIT_MS);
    socket.emit(event, data, (ack) => {
      clearTimeout(timer);
      out({ kind: "ack", client, event, data: ack });
      resolve(ack);
    });
  });
}

async function main() {
  // ALICE_CLIENT=v2: Alice is a Socket.IO 2 client too (her token in the Authorization header).
  const alice = recorder(
    "alice",
    process.env.ALICE_CLIENT === "v2"
      ? io2(aliceUrl, { transports: ["websocket"], extraHeaders: { Authorization: `Bearer ${aliceToken}` }, reconnection: false })
      : io4(aliceUrl, { transports: ["websocket"], auth: { token: aliceToken }, reconnection: false }),
  );
  // The 2.x apps force websocket and put their credentials in the query.
  const bob = recorder("bob", io2(bobUrl, { transports: ["websocket"], query: { accessToken: bobToken, refreshToken: bobRefresh }, reconnection: false }));
  await next(alice, "group-chat-list");
  await next(bob, "group-chat-list");
  out({ kind: "step", step: "greeted", bobTransport: bob.io.engine.transport.name });
  const created = await call("alice", alice, "create-personal-chat", { Receiver: bobId });
  const chatId = created.data.ChatId;
  await next(bob, "create-personal-chat-partner");
  await call("alice", alice, "send-personal-message", { ChatId: chatId, Content: "hi from 4 👋" });
  await next(bob, "receive-personal-message");
  await call("bob", bob, "send-personal-message", { ChatId: chatId, Content: "hi from 2 🎉", ClientMessageId: "b-1" });
  await next(alice, "receive-personal-message");
  alice.close();
  bob.close();
  out({ kind: "done" });
  process.exit(0);
}

main().catch((error) => {
  out({ kind: "error", message: String(error && error.message) });
  process.exit(1);
});
