#!/usr/bin/env node
/*
 * socket.io-client 2.3.1 (what the legacy mobile apps ship; installed as the npm alias
 * socket.io-client-v2) against the Eio3Server test app. Run by
 * tests/gateway/transports/test_eio3_live.py:
 *
 *     node tests/gateway/transports/js/eio3_client.mjs <scenario> <server-url>
 *
 * Scenarios (TRANSPORTS, comma separated, overrides the client's transports where it applies):
 *   custom-ws     websocket only, namespace /v1/conversations/events, query token + user_id:
 *                 welcome, then `echo` with several arguments (emoji included) and its ack.
 *   polling       polling only, /customer: emoji echo, then three `slow` events whose acks must
 *                 come back in the order sent.
 *   upgrade       default transports (polling, then the websocket upgrade), /customer: echo
 *                 after the upgrade.
 *   refused       /v1/conversations/events without a token: the `error` event.
 *   unknown       a namespace nobody mounted: the `error` event.
 *   root          namespace `/`: the server connects it without being asked; echo.
 *   server-close  /customer, `bye`: the server disconnects the socket.
 *   fanout        A and B on /customer, C on /v1/conversations/events; A shouts.
 *
 * Output: one JSON object per line: {"kind":"event","client","event","data","transport"} for
 * every socket event, {"kind":"engine",...} for engine open/upgrade, {"kind":"ack",...} for acks,
 * and a last line {"kind":"done"}. Exit codes: 0 done, 1 a step failed, 2 time limit passed.
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
const io = require("socket.io-client-v2");

const OVERALL_LIMIT_MS = 15_000;
const WAIT_MS = 5_000;
const ENGINE_PATH = "/v1/conversations/sockets";
const [scenario, base] = process.argv.slice(2);
const TRANSPORTS = process.env.TRANSPORTS ? process.env.TRANSPORTS.split(",") : undefined;
const START = Date.now();

setTimeout(() => {
  out({ kind: "error", message: `time limit of ${OVERALL_LIMIT_MS} ms passed` });
  process.stderr.write(`eio3_client: time limit of ${OVERALL_LIMIT_MS} ms passed\n`);
  process.exit(2);
}, OVERALL_LIMIT_MS).unref();

function out(record) {
  process.stdout.write(JSON.stringify({ ...record, ms: Date.now() - START }) + "\n");
}

function transportOf(socket) {
  return socket.io.engine && socket.io.engine.transport ? socket.io.engine.transport.name : null;
}

const RECORDED = ["connect", "disconnect", "error", "welcome", "shouted", "connect_error"];

function open(client, nsp, options = {}) {
  const socket = io(base + nsp, { path: ENGINE_PATH, reconnection: false, ...options });
  socket.waiters = [];
  for (const event of RECORDED) {
    socket.on(event, (data) => {
      out({ kind: "event", client, event, data: data === undefined ? null : data, transport: transportOf(socket) });
      socket.waiters = socket.waiters.filter((w) => !(w.event === event && (w.resolve(data), true)));
    });
  }
  socket.io.on("open", () => {
    out({ kind: "engine", client, event: "open", transport: transportOf(socket) });
    socket.io.engine.on("upgrade", (t) => out({ kind: "engine", client, event: "upgrade", transport: t.name }));
  });
  return socket;
}

function next(socket, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.waiters.push({ event, resolve: (data) => (clearTimeout(timer), resolve(data)) });
  });
}

function ask(client, socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.emit(event, ...args, (...reply) => {
      clearTimeout(timer);
      out({ kind: "ack", client, event, data: reply, transport: transportOf(socket) });
      resolve(reply);
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const EMOJI = "héllo 😀👍🏽 — 漢字 \u2028 \"quoted\" \\ end";

const scenarios = {
  async "custom-ws"() {
    const s = open("A", "/v1/conversations/events", {
      transports: TRANSPORTS || ["websocket"],
      query: { token: "tok-1", user_id: "u-42" },
    });
    await next(s, "welcome");
    await ask("A", s, "echo", "one", 2, { three: [3, EMOJI] }, null, true);
    s.close();
  },
  async polling() {
    const s = open("A", "/customer", { transports: TRANSPORTS || ["polling"], query: { token: "t" } });
    await next(s, "welcome");
    await ask("A", s, "echo", EMOJI, EMOJI.repeat(200));
    const acks = [ask("A", s, "slow", 60), ask("A", s, "slow", 0), ask("A", s, "slow", 30)];
    await Promise.all(acks);
    s.close();
  },
  async upgrade() {
    const s = open("A", "/customer", { transports: TRANSPORTS, query: { token: "t" } });
    await next(s, "welcome");
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no upgrade")), WAIT_MS);
      const check = () => (transportOf(s) === "websocket" ? (clearTimeout(timer), resolve()) : setTimeout(check, 20));
      check();
    });
    await ask("A", s, "echo", EMOJI);
    s.close();
  },
  async refused() {
    const s = open("A", "/v1/conversations/events", { transports: TRANSPORTS, query: { user_id: "u-1" } });
    await next(s, "error");
    await sleep(300);
    s.close();
  },
  async unknown() {
    const s = open("A", "/nope", { transports: TRANSPORTS, query: { token: "t" } });
    await next(s, "error");
    s.close();
  },
  async root() {
    const s = open("A", "/", { transports: TRANSPORTS });
    await next(s, "welcome");
    await ask("A", s, "echo", "root");
    s.close();
  },
  async "server-close"() {
    const s = open("A", "/customer", { transports: TRANSPORTS, query: { token: "t" } });
    await next(s, "welcome");
    s.emit("bye");
    await next(s, "disconnect");
    await sleep(200);
  },
  async fanout() {
    const options = { transports: TRANSPORTS, query: { token: "t" }, forceNew: true };
    const a = open("A", "/customer", options);
    const b = open("B", "/customer", options);
    const c = open("C", "/v1/conversations/events", options);
    await Promise.all([next(a, "welcome"), next(b, "welcome"), next(c, "welcome")]);
    const got = next(b, "shouted");
    await ask("A", a, "shout", { text: EMOJI });
    await got;
    await sleep(300); // A and C would have received by now if the fanout were wrong
    for (const s of [a, b, c]) s.close();
  },
};

try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await scenarios[scenario]();
  await sleep(150); // let a closing client's last request (polling: the close POST) leave
  out({ kind: "done" });
  process.exit(0);
} catch (error) {
  out({ kind: "error", message: String(error && error.message) });
  process.stderr.write(`eio3_client ${scenario}: ${error && error.stack}\n`);
  process.exit(1);
}
