#!/usr/bin/env node
/*
 * Binary arguments end to end through the tiny test protocol (tests/gateway/tiny/), with the
 * real npm clients: socket.io-client 2.3.1 (Engine.IO 3; the npm alias socket.io-client-v2) on
 * namespace /tiny of /socket.io/, or socket.io-client 4.0.1 (Engine.IO 4) on / of /tiny.io/.
 * Run by tests/gateway/test_binary_live.py:
 *
 *     CLIENT=v2|v4 [TRANSPORTS=websocket|polling] [FORCE_BASE64=1] node tests/gateway/js/binary_clients.mjs <url> <token>
 *
 * Steps: connect and wait for `hello`; `echo` with bytes (top level and nested) and emoji text,
 * answered with an `echoed` event and an ack, both carrying the same arguments; `echo` with 11 attachments, then with one attachment over the
 * 64 KiB event limit (each refused with `oops`, no ack); `echo` again on the same connection.
 *
 * Output: one JSON object per line ({"kind":"ack"|"event"|"engine", ...}), bytes written as
 * {"bytes": "<hex>"}, and a last line {"kind":"done"}. Exit codes: 0 done, 1 a step failed,
 * 2 time limit passed.
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));

const LIMIT_MS = 15_000;
const WAIT_MS = 5_000;
const [base, token] = process.argv.slice(2);
const CLIENT = process.env.CLIENT || "v2";
const TRANSPORTS = process.env.TRANSPORTS ? process.env.TRANSPORTS.split(",") : undefined;
const FORCE_BASE64 = process.env.FORCE_BASE64 === "1";
const EMOJI = "héllo 😀👍🏽 — 漢字";

setTimeout(() => {
  out({ kind: "error", message: `time limit of ${LIMIT_MS} ms passed` });
  process.exit(2);
}, LIMIT_MS).unref();

function plain(value) {
  if (Buffer.isBuffer(value)) return { bytes: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { bytes: Buffer.from(value).toString("hex") };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function out(record) {
  process.stdout.write(JSON.stringify(plain(record)) + "\n");
}

function open() {
  const options = { reconnection: false, forceNew: true, query: { token }, forceBase64: FORCE_BASE64 };
  if (TRANSPORTS) options.transports = TRANSPORTS;
  const socket =
    CLIENT === "v2"
      ? require("socket.io-client-v2")(base + "/tiny", { ...options, path: "/socket.io" })
      : require("socket.io-client")(base + "/", { ...options, path: "/tiny.io" });
  socket.waiters = [];
  for (const name of ["hello", "echoed", "oops", "connect_error", "error", "disconnect"]) {
    socket.on(name, (data) => {
      out({ kind: "event", event: name, data: data === undefined ? null : data });
      socket.waiters = socket.waiters.filter((w) => !(w.event === name && (w.resolve(data), true)));
    });
  }
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    out({ kind: "engine", transport: engine.transport.name, b64: !engine.transport.supportsBinary });
    engine.on("upgrade", (t) => out({ kind: "upgrade", transport: t.name, b64: !t.supportsBinary }));
  });
  return socket;
}

function next(socket, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.waiters.push({ event, resolve: (data) => (clearTimeout(timer), resolve(data)) });
  });
}

function ask(socket, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack within ${WAIT_MS} ms`)), WAIT_MS);
    socket.emit("echo", ...args, (...reply) => {
      clearTimeout(timer);
      out({ kind: "ack", data: reply });
      resolve(reply);
    });
  });
}

try {
  const socket = open();
  await next(socket, "hello");
  await ask(socket, Buffer.from([0, 1, 2, 255]), EMOJI, { nested: [Buffer.from("é😀", "utf8"), 7] });
  const many = Array.from({ length: 11 }, (_, n) => Buffer.from([n]));
  let refused = next(socket, "oops");
  socket.emit("echo", ...many);
  await refused;
  refused = next(socket, "oops");
  socket.emit("echo", "big", Buffer.alloc(70_000, 120));
  await refused;
  await ask(socket, "still connected", Buffer.from("ok"));
  socket.close();
  await new Promise((resolve) => setTimeout(resolve, 150)); // a polling client's close POST
  out({ kind: "done" });
  process.exit(0);
} catch (error) {
  out({ kind: "error", message: String(error && error.message) });
  process.stderr.write(`binary_clients: ${error && error.stack}\n`);
  process.exit(1);
}
