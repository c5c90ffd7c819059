#!/usr/bin/env node
/*
 * The original ExpressChat browser client's life, driven with socket.io-client 4.0.1 (the
 * version the original page loads) against a live server. Run by tests/e2e/test_js_client.py:
 *
 *     node tests/e2e/js/expresschat_flow.mjs <scenario> <server-url>
 *
 * Scenarios and their environment:
 *   flow            MAIL_DIR (where the server's file mail backend writes), RUN_TAG (makes the
 *                   emails unique: the mail directory lives as long as the server process).
 *                   Two users sign up, verify from the mail, log in, connect with the login
 *                   cookies (polling, then the websocket upgrade) and chat.
 *   bad-cookie      A socket with cookies that are not tokens: the refusal sequence.
 *   expired-access  ACCESS_TOKEN (correctly signed but expired) and REFRESH_TOKEN (valid, same
 *                   session) as cookies: the socket pushes `access-token`, which is then stored
 *                   through POST /update-access-token, and a second socket uses the new cookie.
 *   TRANSPORTS      optional, comma separated (default: socket.io's own, polling then websocket).
 *
 * Output: one JSON object per line on stdout. {"kind":"http",...} for each REST call,
 * {"kind":"event",...} for every socket event in arrival order, {"kind":"note",...} for values
 * the flow derived, and a last line {"kind":"done"}. The script checks only what it needs to go
 * on (a status, an awaited event arriving in time); the Python test asserts the content.
 * Exit codes: 0 done, 1 a step failed (message on stderr), 2 the overall time limit passed.
 */

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// Resolve socket.io-client from the project's node_modules (package.json at the repo root),
// whatever the working directory.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
const { io } = require("socket.io-client");

const OVERALL_LIMIT_MS = 20_000;
const EVENT_WAIT_MS = 5_000;
const PASSWORD = "correct horse battery";

const overall = setTimeout(() => {
  out({ kind: "error", message: `overall time limit of ${OVERALL_LIMIT_MS} ms passed` });
  process.stderr.write(`expresschat_flow: overall time limit of ${OVERALL_LIMIT_MS} ms passed\n`);
  process.exit(2);
}, OVERALL_LIMIT_MS);

const START = Date.now();

function out(record) {
  // stdout is a pipe: Node writes to pipes synchronously on POSIX, so nothing is lost on exit.
  process.stdout.write(JSON.stringify({ ...record, ms: Date.now() - START }) + "\n");
}

class StepFailed extends Error {}

function fail(message) {
  throw new StepFailed(message);
}

// --- HTTP, with a cookie jar per browser ----------------------------------------------------

function parseSetCookie(line) {
  const [pair, ...attributes] = line.split(";").map((part) => part.trim());
  const eq = pair.indexOf("=");
  const attrs = {};
  for (const attribute of attributes) {
    const [key, ...rest] = attribute.split("=");
    attrs[key.toLowerCase()] = rest.length ? rest.join("=") : true;
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs };
}

class Browser {
  constructor(name, base) {
    this.name = name;
    this.base = base;
    this.jar = new Map();
  }

  cookieHeader() {
    return [...this.jar].map(([key, value]) => `${key}=${value}`).join("; ");
  }

  async request(method, urlPath, body) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.jar.size) headers["Cookie"] = this.cookieHeader();
    const response = await fetch(this.base + urlPath, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: "manual",
      signal: AbortSignal.timeout(EVENT_WAIT_MS),
    });
    const text = await response.text();
    const cookies = response.headers.getSetCookie().map(parseSetCookie);
    for (const cookie of cookies) {
      const expired = cookie.attrs.expires && Date.parse(cookie.attrs.expires) <= Date.now();
      if (cookie.value === "" || expired || cookie.attrs["max-age"] === "0") this.jar.delete(cookie.name);
      else this.jar.set(cookie.name, cookie.value);
    }
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: reported as null, the test decides whether that is wrong
    }
    out({
      kind: "http",
      client: this.name,
      method,
      path: urlPath.split("?")[0],
      status: response.status,
      contentType: response.headers.get("content-type"),
      body: json,
      // Names and attributes only: the values are tokens.
      setCookies: cookies.map(({ name, value, attrs }) => ({ name, empty: value === "", attrs })),
    });
    return { status: response.status, body: json };
  }
}

async function expectStatus(browser, method, urlPath, body, status) {
  const response = await browser.request(method, urlPath, body);
  if (response.status !== status) {
    fail(`${browser.name}: ${method} ${urlPath} answered ${response.status}, expected ${status}: ${JSON.stringify(response.body)}`);
  }
  return response;
}

// --- mail -----------------------------------------------------------------------------------

const MAIL_SEPARATOR = "-".repeat(79);

function mailsTo(mailDir, email) {
  if (!fs.existsSync(mailDir)) return [];
  const found = [];
  for (const file of fs.readdirSync(mailDir)) {
    const full = path.join(mailDir, file);
    const mtime = fs.statSync(full).mtimeMs;
    for (const message of fs.readFileSync(full, "utf8").split(MAIL_SEPARATOR)) {
      if (new RegExp(`^To: ${email.replace(/[.+]/g, "\\$&")}$`, "m").test(message)) {
        found.push({ mtime, message });
      }
    }
  }
  return found.sort((a, b) => a.mtime - b.mtime);
}

async function verificationMail(mailDir, email) {
  const deadline = Date.now() + EVENT_WAIT_MS;
  while (Date.now() < deadline) {
    const mails = mailsTo(mailDir, email);
    if (mails.length) {
      const text = mails[mails.length - 1].message;
      const code = /verification code is: (\d{6})/.exec(text);
      const link = /(https?:\/\/\S+\/verify\?\S+)/.exec(text);
      if (!code || !link) fail(`the mail to ${email} has no code or no link:\n${text}`);
      return { code: code[1], link: new URL(link[1]) };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return fail(`no verification mail to ${email} in ${mailDir} within ${EVENT_WAIT_MS} ms`);
}

// --- a recording Socket.IO client -----------------------------------------------------------

class Client {
  constructor(name, base, cookieHeader, transports) {
    this.name = name;
    this.queues = new Map();
    this.waiters = new Map();
    // Options as the original page has them (defaults: polling then upgrade, auto-reconnect),
    // plus what a browser would add by itself: its cookies. forceNew because each Client is a
    // separate browser, never a shared connection.
    const options = { forceNew: true, extraHeaders: cookieHeader ? { Cookie: cookieHeader } : {} };
    if (transports) options.transports = transports;
    this.socket = io(base, options);
    this.socket.on("connect", () => this.record("connect", null));
    this.socket.on("disconnect", (reason) => this.record("disconnect", reason));
    this.socket.on("connect_error", (error) => this.record("connect_error", String(error && error.message)));
    this.socket.onAny((event, ...args) => this.record(event, args.length ? args[0] : null));
    // Engine-level, not a socket event: it may come before or after "connect".
    const engine = this.socket.io.engine;
    engine.on("open", () => out({ kind: "engine", client: this.name, event: "open", transport: engine.transport.name }));
    this.upgraded = new Promise((resolve) => {
      engine.on("upgrade", (transport) => {
        out({ kind: "engine", client: this.name, event: "upgrade", transport: transport.name });
        resolve(transport.name);
      });
    });
  }

  transport() {
    const engine = this.socket.io.engine;
    return engine && engine.transport ? engine.transport.name : null;
  }

  record(event, data) {
    out({ kind: "event", client: this.name, event, data, transport: this.transport() });
    const waiters = this.waiters.get(event);
    if (waiters && waiters.length) {
      waiters.shift()(data);
      return;
    }
    if (!this.queues.has(event)) this.queues.set(event, []);
    this.queues.get(event).push(data);
  }

  /** The next `event` not yet taken, waiting up to `ms`. */
  next(event, ms = EVENT_WAIT_MS) {
    const queued = this.queues.get(event);
    if (queued && queued.length) return Promise.resolve(queued.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const waiters = this.waiters.get(event);
        waiters.splice(waiters.indexOf(done), 1);
        reject(new StepFailed(`${this.name}: no "${event}" within ${ms} ms`));
      }, ms);
      const done = (data) => {
        clearTimeout(timer);
        resolve(data);
      };
      if (!this.waiters.has(event)) this.waiters.set(event, []);
      this.waiters.get(event).push(done);
    });
  }

  /** Wait `ms` and fail if `event` arrived meanwhile (or was waiting unread). */
  async none(event, ms) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const queued = this.queues.get(event);
    if (queued && queued.length) fail(`${this.name}: unexpected "${event}": ${JSON.stringify(queued[0])}`);
  }

  emit(event, data) {
    this.socket.emit(event, data); // no ack callback, as the original client
  }

  close() {
    this.socket.disconnect();
  }
}

async function greeted(client) {
  await client.next("connect");
  const user = await client.next("user-id");
  await client.next("personal-chat-list");
  await client.next("group-chat-list");
  return user;
}

// --- scenarios ------------------------------------------------------------------------------

async function signUpVerifyLogIn(base, mailDir, name, email) {
  const browser = new Browser(name, base);
  await expectStatus(browser, "POST", "/signup", { name, email, password: PASSWORD }, 200);
  const { code, link } = await verificationMail(mailDir, email);
  out({ kind: "note", client: name, linkEmail: link.searchParams.get("email"), linkToken: link.searchParams.get("token"), code });
  // The app's way: the code from the mail, with source=app for a JSON answer (plus cookies).
  const query = new URLSearchParams({ email, token: code, source: "app" });
  await expectStatus(browser, "GET", `/verify?${query}`, undefined, 200);
  // The web page then logs in; its cookies are the ones the socket sends.
  browser.jar.clear();
  await expectStatus(browser, "POST", "/login", { email, password: PASSWORD }, 200);
  return browser;
}

async function flow(base, transports) {
  const mailDir = process.env.MAIL_DIR;
  const tag = process.env.RUN_TAG;
  if (!mailDir || !tag) fail("the flow scenario needs MAIL_DIR and RUN_TAG");
  const aliceWeb = await signUpVerifyLogIn(base, mailDir, "Alice", `alice.${tag}@example.com`);
  const bobWeb = await signUpVerifyLogIn(base, mailDir, "Bob", `bob.${tag}@example.com`);

  const alice = new Client("Alice", base, aliceWeb.cookieHeader(), transports);
  const bob = new Client("Bob", base, bobWeb.cookieHeader(), transports);
  const [aliceUser, bobUser] = await Promise.all([greeted(alice), greeted(bob)]);
  if (!transports) {
    const upgraded = Promise.all([alice.upgraded, bob.upgraded]);
    const late = new Promise((_, reject) => setTimeout(() => reject(new StepFailed("no websocket upgrade")), EVENT_WAIT_MS));
    await Promise.race([upgraded, late]);
  }

  alice.emit("search-user", { Name: "bob", Type: "Search" });
  const found = (await alice.next("searched-user")).Users || [];
  const bobFound = found.find((user) => user.Name === "Bob");
  if (!bobFound) fail(`search for "bob" did not find Bob: ${JSON.stringify(found)}`);

  alice.emit("create-personal-chat", { Receiver: bobFound._id, Partner: bobFound.Name, UserName: aliceUser.userName });
  const created = await alice.next("create-personal-chat-creator");
  await bob.next("create-personal-chat-partner");
  const chatId = created.ChatId;

  alice.emit("send-personal-message", { ChatId: chatId, Content: "hi Bob" });
  await bob.next("receive-personal-message");
  bob.emit("send-personal-message", { ChatId: chatId, Content: "hi Alice" });
  await alice.next("receive-personal-message");

  bob.emit("read-personal-message", { ChatId: chatId });
  await alice.next("read-personal-msg-ack");
  alice.emit("read-personal-message", { ChatId: chatId });
  await bob.next("read-personal-msg-ack");

  alice.emit("fetch-personal-chat", { ChatId: chatId, Partner: bobFound.Name });
  await alice.next("personal-chat");
  // The sender never gets its own message back.
  await Promise.all([alice.none("receive-personal-message", 200), bob.none("receive-personal-message", 200)]);
  out({ kind: "note", chatId, aliceId: aliceUser.userId, bobId: bobUser.userId });

  alice.close();
  bob.close();
}

async function badCookie(base, transports) {
  const mallory = new Client("Mallory", base, "access_token=not-a-jwt; refresh_token=also-not-a-jwt", transports);
  await mallory.next("connect");
  await mallory.next("auth-failure");
  await mallory.next("disconnect");
  // The page navigates to /auth; socket.io-client must not be reconnecting meanwhile.
  await mallory.none("connect", 500);
  mallory.close();
}

async function expiredAccess(base, transports) {
  const access = process.env.ACCESS_TOKEN;
  const refresh = process.env.REFRESH_TOKEN;
  if (!access || !refresh) fail("the expired-access scenario needs ACCESS_TOKEN and REFRESH_TOKEN");
  const web = new Browser("Alice", base);
  web.jar.set("refresh_token", refresh);
  web.jar.set("access_token", access);

  const first = new Client("first", base, web.cookieHeader(), transports);
  await first.next("connect");
  const pushed = await first.next("access-token");
  await first.next("user-id");
  await first.next("personal-chat-list");
  await first.next("group-chat-list");
  // What the page does on access-token (chat.js): store it as the cookie through the server.
  await expectStatus(web, "POST", "/update-access-token", { acessToken: pushed.accessToken }, 200);
  if (web.jar.get("access_token") !== pushed.accessToken) fail("the access_token cookie was not updated");

  // A reload of the page: the new cookie is good as it is, no new token is pushed.
  const second = new Client("second", base, web.cookieHeader(), transports);
  await greeted(second);
  await second.none("access-token", 200);
  first.close();
  second.close();
}

const SCENARIOS = { flow, "bad-cookie": badCookie, "expired-access": expiredAccess };

async function main() {
  const [scenario, base] = process.argv.slice(2);
  if (!SCENARIOS[scenario] || !base) {
    fail(`usage: expresschat_flow.mjs <${Object.keys(SCENARIOS).join("|")}> <server-url>`);
  }
  const transports = process.env.TRANSPORTS ? process.env.TRANSPORTS.split(",") : undefined;
  await SCENARIOS[scenario](base.replace(/\/$/, ""), transports);
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
    process.stderr.write(`expresschat_flow: ${message}\n`);
    process.exit(1);
  },
);
