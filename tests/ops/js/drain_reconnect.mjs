#!/usr/bin/env node
/*
 * What socket.io-client 4.0.1 does when a server drains (tests/ops/test_drain.py):
 *
 *     TOKEN=<access> TRANSPORTS=websocket node tests/ops/js/drain_reconnect.mjs <server-url>
 *
 * CLIENT=v2 (with REFRESH=<refresh token>) uses socket.io-client 2.3.1 (Engine.IO 3), which sends
 * its credentials in the query; the default is socket.io-client 4.0.1 with `auth`.
 * Connects with reconnection on, prints one JSON line per socket event ({"event": "connect"},
 * {"event": "greeted"} on ExpressChat's last greeting event,
 * {"event": "disconnect", "reason": ...}, {"event": "connect_error", "message": ...}) and a
 * last line {"event": "done"} after the second connect (or exits 2 after 30 s).
 */

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const require = createRequire(path.join(ROOT, "package.json"));
const v2 = process.env.CLIENT === "v2";
const io = v2 ? require("socket.io-client-v2") : require("socket.io-client").io;

const print = (record) => process.stdout.write(JSON.stringify(record) + "\n");
setTimeout(() => process.exit(2), 30_000);

const credentials = v2
  ? { query: { accessToken: process.env.TOKEN, refreshToken: process.env.REFRESH } }
  : { auth: { token: process.env.TOKEN } };
const socket = io(process.argv[2], {
  ...credentials,
  transports: (process.env.TRANSPORTS || "websocket").split(","),
  reconnectionDelay: 200,
  reconnectionDelayMax: 500,
  randomizationFactor: 0,
});
let connects = 0;
socket.on("connect", () => {
  connects += 1;
  print({ event: "connect" });
  if (connects === 2) {
    print({ event: "done" });
    socket.close();
    process.exit(0);
  }
});
socket.on("group-chat-list", () => print({ event: "greeted" }));
socket.on("disconnect", (reason) => print({ event: "disconnect", reason }));
socket.on("connect_error", (err) => print({ event: "connect_error", message: err.message }));
