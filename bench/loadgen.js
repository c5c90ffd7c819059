#!/usr/bin/env node
// Load generator for bench/run.py: socket.io-client 4.x, websocket transport only, one Node
// process (pinned to its own core by run.py). Usage: node bench/loadgen.js CONFIG.json
//
// Modes (config.mode):
//   direct  pairs of sender/receiver sockets. Closed loop (config.window messages in flight per
//           sender, saturation) or open loop (config.rate messages/s offered in total, round
//           robin over senders). Checks every delivery: lost, duplicated, out of order, Seq gaps.
//   idle    open config.auths.length sockets, config.concurrency handshakes at a time, hold them,
//           close them on "close" from stdin.
//
// stdout carries one JSON object per line: {"event": ...} markers run.py waits for (it samples
// server CPU and RSS at them), and last {"event": "result", ...}. Progress goes to stderr.

"use strict";

const fs = require("fs");
const readline = require("readline");
const { performance } = require("perf_hooks");
const { io } = require("socket.io-client");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const now = () => performance.now();
const emitLine = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const log = (msg) => process.stderr.write(`[loadgen] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The event after which a connection is fully set up (subscribed to its bus groups): the
// product's greeting ends with group-chat-list; the floor is ready at connect.
const READY_EVENT = config.protocol === "product" ? "group-chat-list" : "connect";

let stdinLines = null;
function nextStdinLine() {
  if (stdinLines === null) {
    const rl = readline.createInterface({ input: process.stdin });
    stdinLines = { queue: [], waiters: [] };
    rl.on("line", (line) => {
      const w = stdinLines.waiters.shift();
      if (w) w(line.trim());
      else stdinLines.queue.push(line.trim());
    });
    rl.on("close", () => {
      for (const w of stdinLines.waiters.splice(0)) w("close");
      stdinLines.queue.push("close");
    });
  }
  if (stdinLines.queue.length) return Promise.resolve(stdinLines.queue.shift());
  return new Promise((r) => stdinLines.waiters.push(r));
}

function connect(url, auth, timeoutMs) {
  return new Promise((resolve) => {
    const socket = io(url, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
      auth,
    });
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ socket, ok, why });
    };
    const timer = setTimeout(() => finish(false, "timeout"), timeoutMs);
    socket.once(READY_EVENT, () => finish(true));
    socket.once("auth-failure", (p) => finish(false, `auth-failure ${JSON.stringify(p)}`));
    socket.once("connect_error", (e) => finish(false, `connect_error ${e && e.message}`));
    socket.once("disconnect", (r) => finish(false, `disconnect ${r}`));
  });
}

function percentiles(samples) {
  if (!samples.length) return null;
  const s = Float64Array.from(samples).sort();
  const at = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  const curve = [];
  for (const p of [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]) curve.push([p, +at(p).toFixed(3)]);
  let sum = 0;
  for (const v of s) sum += v;
  return {
    count: s.length,
    mean: +(sum / s.length).toFixed(3),
    p50: +at(50).toFixed(3),
    p90: +at(90).toFixed(3),
    p99: +at(99).toFixed(3),
    p999: +at(99.9).toFixed(3),
    max: +s[s.length - 1].toFixed(3),
    curve,
  };
}

async function connectAll(specs, concurrency, timeoutMs, onEach) {
  const results = new Array(specs.length);
  let next = 0;
  async function worker() {
    while (next < specs.length) {
      const i = next++;
      results[i] = await connect(specs[i].url, specs[i].auth, timeoutMs);
      if (onEach) onEach(i, results[i]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, worker));
  return results;
}

// ------------------------------------------------------------------------------------------
// direct

async function runDirect() {
  const pad = "x".repeat(config.pad || 40);
  const pairs = config.pairs.map((p, i) => ({
    index: i,
    chat: p.chat,
    nextK: 0,
    inflight: 0,
    acked: new Set(),
    seen: new Set(),
    maxK: -1,
    lastSeq: null,
    sender: null,
    receiver: null,
  }));
  const stats = {
    sent: 0,
    acked: 0,
    ackErrors: 0,
    ackErrorCodes: {},
    received: 0,
    duplicates: 0,
    outOfOrder: 0,
    seqGaps: 0,
    skipped: 0,
    unexpectedErrors: 0,
  };
  const t = { connect0: now() };

  const receiverSpecs = config.pairs.map((p) => ({ url: p.receiverUrl, auth: p.receiverAuth }));
  const senderSpecs = config.pairs.map((p) => ({ url: p.senderUrl, auth: p.senderAuth }));
  const receivers = await connectAll(receiverSpecs, 50, 30000);
  const senders = await connectAll(senderSpecs, 50, 30000);
  const failed = [...receivers, ...senders].filter((r) => !r.ok);
  if (failed.length) {
    emitLine({ event: "result", error: `connect failed: ${failed.length}, e.g. ${failed[0].why}` });
    process.exit(2);
  }
  log(`connected ${pairs.length} pairs in ${((now() - t.connect0) / 1000).toFixed(1)}s`);

  let phase = "warmup"; // warmup -> measure -> stop
  let windowStart = 0;
  let windowEnd = Infinity;
  const latency = []; // receive time - send time, messages received in the window
  const ackLatency = [];
  let windowReceived = 0;
  let windowAcked = 0;

  for (const pair of pairs) {
    pair.receiver = receivers[pair.index].socket;
    pair.sender = senders[pair.index].socket;
    pair.receiver.on("receive-personal-message", (m) => {
      const at = now();
      const content = m.Content;
      const space = content.indexOf(" ");
      const k = parseInt(content.slice(0, space), 10);
      const sentAt = parseFloat(content.slice(space + 1, content.indexOf(" ", space + 1)));
      stats.received++;
      if (pair.seen.has(k)) {
        stats.duplicates++;
        return;
      }
      pair.seen.add(k);
      if (k < pair.maxK) stats.outOfOrder++;
      else pair.maxK = k;
      if (config.protocol === "product") {
        if (pair.lastSeq !== null && m.Seq !== pair.lastSeq + 1) stats.seqGaps++;
        pair.lastSeq = m.Seq;
      }
      if (at >= windowStart && at < windowEnd && phase !== "warmup") {
        windowReceived++;
        latency.push(at - sentAt);
      }
    });
    for (const s of [pair.sender, pair.receiver]) {
      s.on("error", () => stats.unexpectedErrors++);
      s.on("disconnect", (reason) => {
        if (phase !== "closing") {
          stats.unexpectedErrors++;
          log(`unexpected disconnect: ${reason}`);
        }
      });
    }
  }

  function send(pair, intendedAt) {
    const k = pair.nextK++;
    const sentAt = intendedAt === undefined ? now() : intendedAt;
    const payload = {
      ChatId: pair.chat,
      Content: `${k} ${sentAt.toFixed(3)} ${pad}`,
      ClientMessageId: `${config.runId}-${pair.index}-${k}`,
    };
    pair.inflight++;
    stats.sent++;
    pair.sender.emit("send-personal-message", payload, (ack) => {
      const at = now();
      pair.inflight--;
      if (ack && ack.ok) {
        stats.acked++;
        pair.acked.add(k);
        if (phase === "measure" && at >= windowStart && at < windowEnd) {
          windowAcked++;
          ackLatency.push(at - sentAt);
        }
      } else {
        stats.ackErrors++;
        const code = (ack && ack.error && ack.error.code) || "no-ack";
        stats.ackErrorCodes[code] = (stats.ackErrorCodes[code] || 0) + 1;
      }
      if (!config.rate && phase !== "stop" && phase !== "closing") pump(pair);
    });
  }

  function pump(pair) {
    while (pair.inflight < config.window) send(pair);
  }

  const cpu0 = process.cpuUsage();
  const t0 = now();
  let ticker = null;
  if (config.rate) {
    // Open loop: message n is due at t0 + n/rate; a sender with maxInflight unacked messages
    // skips its turn (counted), so the generator never queues without bound.
    let due = 0;
    const tick = () => {
      const target = Math.floor(((now() - t0) / 1000) * config.rate);
      while (due < target) {
        const pair = pairs[due % pairs.length];
        const intended = t0 + (due * 1000) / config.rate;
        due++;
        if (pair.inflight >= (config.maxInflight || 200)) {
          stats.skipped++;
          continue;
        }
        send(pair, intended);
      }
    };
    ticker = setInterval(tick, 1);
  } else {
    for (const pair of pairs) pump(pair);
  }

  await sleep(config.warmup * 1000);
  phase = "measure";
  windowStart = now();
  const cpuW0 = process.cpuUsage();
  emitLine({ event: "measure-start" });
  let last = { t: windowStart, r: 0 };
  const progress = setInterval(() => {
    const at = now();
    log(`${config.label}: ${((windowReceived - last.r) / ((at - last.t) / 1000)).toFixed(0)} msg/s delivered`);
    last = { t: at, r: windowReceived };
  }, 5000);
  await sleep(config.duration * 1000);
  windowEnd = now();
  const cpuW = process.cpuUsage(cpuW0);
  emitLine({ event: "measure-end" });
  clearInterval(progress);
  phase = "stop";
  if (ticker) clearInterval(ticker);

  // Drain: everything sent is acked and everything acked is delivered, or the deadline passes.
  const drainDeadline = now() + config.drain * 1000;
  const missing = () => {
    let n = 0;
    for (const pair of pairs) for (const k of pair.acked) if (!pair.seen.has(k)) n++;
    return n;
  };
  while (now() < drainDeadline) {
    if (pairs.every((p) => p.inflight === 0) && missing() === 0) break;
    await sleep(50);
  }
  // Freeze what counts as acked now: an ack that arrives from here on is not checked (its
  // delivery may legitimately trail it). Then give the deliveries of the frozen set `settle`
  // seconds: still missing after that counts as lost. Late duplicates would also show up here.
  const frozen = pairs.map((p) => new Set(p.acked));
  const lostNow = () => {
    const out = [];
    pairs.forEach((p, i) => {
      for (const k of frozen[i]) if (!p.seen.has(k)) out.push([i, k]);
    });
    return out;
  };
  const settleDeadline = now() + (config.settle || 2) * 1000;
  while (now() < settleDeadline && lostNow().length) await sleep(50);
  await sleep(300);
  const lostList = lostNow();
  const lost = lostList.length;
  const unacked = pairs.reduce((n, p) => n + p.inflight, 0);
  const cpuAll = process.cpuUsage(cpu0);
  const wall = (windowEnd - windowStart) / 1000;

  phase = "closing";
  for (const pair of pairs) {
    pair.sender.close();
    pair.receiver.close();
  }
  emitLine({
    event: "result",
    mode: "direct",
    protocol: config.protocol,
    label: config.label,
    pairs: pairs.length,
    window: config.rate ? null : config.window,
    offered_rate: config.rate || null,
    measure_seconds: +wall.toFixed(3),
    delivered_per_s: +(windowReceived / wall).toFixed(1),
    acked_per_s: +(windowAcked / wall).toFixed(1),
    latency_ms: percentiles(latency),
    ack_latency_ms: percentiles(ackLatency),
    totals: { ...stats, lost, unacked },
    lost_examples: lostList.slice(0, 10).map(([i, k]) => ({ chat: pairs[i].chat, k })),
    generator_cpu_share: +((cpuW.user + cpuW.system) / 1e6 / wall).toFixed(3),
    generator_cpu_seconds_total: +((cpuAll.user + cpuAll.system) / 1e6).toFixed(2),
  });
}

// ------------------------------------------------------------------------------------------
// idle

async function runIdle() {
  const specs = config.auths.map((auth, i) => ({ url: config.urls[i % config.urls.length], auth }));
  const warm = Math.min(config.warm || 10, specs.length);
  const sockets = [];
  let failed = 0;
  const whys = {};
  const record = (_i, r) => {
    if (r.ok) sockets.push(r.socket);
    else {
      failed++;
      whys[r.why] = (whys[r.why] || 0) + 1;
      r.socket.close();
    }
  };
  await connectAll(specs.slice(0, warm), 10, 30000, record);
  emitLine({ event: "warm", connected: sockets.length });
  await nextStdinLine();

  let disconnects = 0;
  let holding = false;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  let lastLog = t0;
  await connectAll(specs.slice(warm), config.concurrency, 60000, (i, r) => {
    record(i, r);
    if (r.ok) r.socket.on("disconnect", () => holding && disconnects++);
    const at = now();
    if (at - lastLog > 5000) {
      lastLog = at;
      log(`${config.label}: ${sockets.length} connected, ${((sockets.length - warm) / ((at - t0) / 1000)).toFixed(0)}/s`);
    }
  });
  const seconds = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  holding = true;
  emitLine({ event: "held", connected: sockets.length, failed });
  await nextStdinLine();
  const held = sockets.filter((s) => s.connected).length;
  holding = false;
  for (const s of sockets) s.close();
  emitLine({
    event: "result",
    mode: "idle",
    protocol: config.protocol,
    label: config.label,
    requested: specs.length,
    connected: sockets.length,
    held_at_end: held,
    disconnects_while_held: disconnects,
    failed,
    failures: whys,
    connect_seconds: +seconds.toFixed(3),
    connects_per_s: +((sockets.length - warm) / seconds).toFixed(1),
    concurrency: config.concurrency,
    generator_cpu_share: +((cpu.user + cpu.system) / 1e6 / seconds).toFixed(3),
    generator_rss_mib: +(process.memoryUsage().rss / 1048576).toFixed(1),
  });
}

(config.mode === "direct" ? runDirect() : runIdle())
  .then(() => setTimeout(() => process.exit(0), 200))
  .catch((e) => {
    emitLine({ event: "result", error: String(e && e.stack ? e.stack : e) });
    process.exit(1);
  });
