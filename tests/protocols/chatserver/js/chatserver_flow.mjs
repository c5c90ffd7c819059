#!/usr/bin/env node
/*
 * A CHAT SERVER tenant and its end-user apps, driven with npm socket.io-client 4.0.1 (the
 * version of the original's 2021 README) against a live server. Run by
 * tests/protocols/chatserver/test_js_client.py:
 *
 *     node tests/protocols/chatserver/js/chatserver_flow.mjs <scenario> <server-url>
 *
 * Environment: APP_ID and APP_SECRET (the tenant API's credential, `Authorization: AppKey
 * <id>:<secret>`), RUN_TAG (makes tokens unique per run). Scenarios:
 *   flow       the README's integration order: POST /user x2 (with tokens), POST /room, PUT
 *              /room/add; two sockets with `?token=`: join, send_message, typing, seen,
 *              load_more, update, delete, leave.
 *   goodbye    two members join; one closes its socket without `leave`: the other hears it.
 *   refusals   sockets without a token, with an empty one and with an unknown one.
 *
 * Output: one JSON object per line on stdout: {"kind":"http",...} per REST call,
 * {"kind":"event",...} per socket event in arrival order, {"kind":"note",...} for derived values,
 * and a last line {"kind":"done"}. The script checks only what it needs to go on (a status, an
 * awaited event arriving in time); the Python test asserts the content.
 * Exit codes: 0 done, 1 a step failed (message on stderr), 2 the overall time limit passed.
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
const { io } = require("socket.io-client");

const OVERALL_LIMIT_MS = 20_000;
const EVENT_WAIT_MS = 5_000;
const QUIET_MS = 500;

const overall = setTimeout(() => {
  out({ kind: "error", message: `overall time limit of ${OVERALL_LIMIT_MS} ms passed` });
  process.stderr.write(`chatserver_flow: overall time limit of ${OVERALL_LIMIT_MS} ms passed\n`);
  process.exit(2);
}, OVERALL_LIMIT_MS);

const START = Date.now();

function out(record) {
  process.stdout.write(JSON.stringify({ ...record, ms: Date.now() - START }) + "\n");
}

class StepFailed extends Error {}

function fail(message) {
  throw new StepFailed(message);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- the tenant's backend: REST with the app's secret ----------------------------------------

async function rest(base, method, urlPath, body, expected = 200) {
  const response = await fetch(base + urlPath, {
    method,
    headers: {
      Authorization: `AppKey ${process.env.APP_ID}:${process.env.APP_SECRET}`,
      "Content-Type": "application/json",
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = text;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: kept as text for the test to see
  }
  out({ kind: "http", method, path: urlPath, status: response.status, body: data });
  if (response.status !== expected) fail(`${method} ${urlPath}: ${response.status} ${text.slice(0, 300)}`);
  return data;
}

async function register(base, appUserId, firstName, token) {
  return rest(base, "POST", "/user", {
    appId: process.env.APP_ID,
    appUserId,
    firstName,
    lastName: "Tester",
    token,
  });
}

// --- an end-user app: one socket, every event recorded ---------------------------------------

class Client {
  constructor(name, base, token) {
    this.name = name;
    this.queues = new Map();
    this.waiters = new Map();
    // As the README: the token in the URL's query; no auto-reconnect so a refusal is final.
    const url = token === undefined ? base : `${base}?token=${encodeURIComponent(token)}`;
    this.socket = io(url, { forceNew: true, reconnection: false });
    this.socket.on("connect", () => this.record("connect", null));
    this.socket.on("disconnect", (reason) => this.record("disconnect", reason));
    this.socket.on("connect_error", (error) => this.record("connect_error", String(error && error.message)));
    this.socket.onAny((event, ...args) => this.record(event, args.length ? args[0] : null));
  }

  record(event, data) {
    out({ kind: "event", client: this.name, event, data });
    const waiting = this.waiters.get(event);
    if (waiting && waiting.length) {
      waiting.shift()(data);
      return;
    }
    if (!this.queues.has(event)) this.queues.set(event, []);
    this.queues.get(event).push(data);
  }

  next(event, timeout = EVENT_WAIT_MS) {
    const queued = this.queues.get(event);
    if (queued && queued.length) return Promise.resolve(queued.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new StepFailed(`${this.name}: no ${event} within ${timeout} ms`)), timeout);
      if (!this.waiters.has(event)) this.waiters.set(event, []);
      this.waiters.get(event).push((data) => {
        clearTimeout(timer);
        resolve(data);
      });
    });
  }

  async connected() {
    await this.next("connect");
    return this;
  }

  emit(event, ...args) {
    out({ kind: "emit", client: this.name, event, args });
    this.socket.emit(event, ...args);
  }

  close() {
    this.socket.close();
  }
}

async function setUp(base) {
  const tag = process.env.RUN_TAG || "run";
  const tokens = { ann: `ann-token-${tag}`, bob: `bob-token-${tag}` };
  const ann = await register(base, 1, "Ann", tokens.ann);
  const bob = await register(base, 2, "Bob", tokens.bob);
  const room = await rest(base, "POST", "/room", { room: "usr-1-2", appId: process.env.APP_ID, users: [1] });
  await rest(base, "PUT", "/room/add", { room: "usr-1-2", appId: process.env.APP_ID, users: [2] });
  out({ kind: "note", ann: ann.id, bob: bob.id, room: room.id });
  const a = await new Client("ann", base, tokens.ann).connected();
  const b = await new Client("bob", base, tokens.bob).connected();
  a.emit("join", "usr-1-2");
  await a.next("room_info");
  await a.next("roomData");
  b.emit("join", "usr-1-2");
  await b.next("room_info");
  await a.next("info"); // "<bob> has joined!"
  await a.next("roomData");
  await b.next("roomData");
  return { a, b };
}

// --- scenarios --------------------------------------------------------------------------------

async function flow(base) {
  const { a, b } = await setUp(base);
  a.emit("send_message", "héllo bob");
  await a.next("message");
  await b.next("message");
  b.emit("typing", true);
  await a.next("is_typing");
  await b.next("is_typing");
  b.emit("seen");
  await a.next("seen_by");
  await b.next("seen_by");
  a.emit("send_message", "second");
  await a.next("message");
  const second = await b.next("message");
  b.emit("load_more", { page: 1, limit: 1 });
  await b.next("load_more");
  b.emit("load_more", { page: 2, limit: 1 });
  await b.next("load_more");
  a.emit("update", { id: second.id, message: "second, edited" });
  await a.next("message");
  await b.next("message");
  a.emit("delete", second.id);
  await b.next("delete");
  b.emit("load_more", {});
  await b.next("load_more");
  b.emit("leave");
  await a.next("info"); // "<bob> has left"
  await a.next("roomData");
  a.emit("send_message", "after leave");
  await a.next("message");
  await sleep(QUIET_MS); // bob must not get it: the test checks
  a.close();
  b.close();
}

async function goodbye(base) {
  const { a, b } = await setUp(base);
  b.close(); // no `leave`: the tab was closed
  await a.next("info"); // "<bob> has left"
  await a.next("roomData");
  a.close();
}

async function refusals(base) {
  for (const [name, token] of [
    ["none", undefined],
    ["empty", ""],
    ["unknown", `unknown-token-${process.env.RUN_TAG || "run"}`],
  ]) {
    const client = new Client(name, base, token);
    await client.next("connect_error");
    await sleep(100); // a refusal must not come with a connect first: the test checks
    client.close();
  }
}

const SCENARIOS = { flow, goodbye, refusals };

async function main() {
  const [scenario, base] = process.argv.slice(2);
  if (!SCENARIOS[scenario] || !base) {
    fail(`usage: chatserver_flow.mjs <${Object.keys(SCENARIOS).join("|")}> <server-url>`);
  }
  await SCENARIOS[scenario](base.replace(/\/$/, ""));
  out({ kind: "done" });
}

main().then(
  () => {
    clearTimeout(overall);
    process.exit(0);
  },
  (error) => {
    const message = error instanceof StepFailed ? error.message : error.stack || String(error);
    out({ kind: "error", message });
    process.stderr.write(`chatserver_flow: ${message}\n`);
    process.exit(1);
  },
);
