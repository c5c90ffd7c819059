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
//   group   config.members sockets in one group (ramped); config.senders of them send open loop
//           at a fixed rate, then at rising rates (saturation steps); every member's receipt is
//           timestamped and checked: lost, duplicated, out of order, Seq gaps (see runGroup).
//
// stdout carries one JSON object per line: {"event": ...} markers run.py waits for (it samples
// server CPU and RSS at them), and last {"event": "result", ...}. Progress goes to stderr.

"use strict";

const fs = require("fs");
const readline = require("readline");
const { performance } = require("perf_hooks");
const { io } = require("socket.io-client");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
// config.client "v2": socket.io-client 2.3.1 (Engine.IO 3), which sends no auth payload: the
// product token goes in the Authorization header.
const io2 = config.client === "v2" ? require("socket.io-client-v2") : null;
// config.wire "czmessenger" (with client "v2"): the CZ Messenger protocol on a first-party mount
// (namespace `config.czNamespace`, Engine.IO path `config.czPath`); the handshake query carries
// token, user_id, user_role; a pair's room is opened with create_room; a send is `new_message`
// and its ack is the echo to the sending socket; the receiver gets `new_message` too.
const CZ = config.wire === "czmessenger";
const now = () => performance.now();
const emitLine = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const T0 = performance.now();
const log = (msg) => process.stderr.write(`[loadgen +${((performance.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The event after which a connection is fully set up (subscribed to its bus groups): the
// product's greeting ends with group-chat-list; the floor is ready at connect.
const READY_EVENT = CZ ? "active_user_list" : config.protocol === "product" ? "group-chat-list" : "connect";

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

function connect(url, auth, timeoutMs, setup) {
  return new Promise((resolve) => {
    const socket = CZ
      ? io2(url + config.czNamespace, {
          path: config.czPath,
          transports: ["websocket"],
          forceNew: true,
          reconnection: false,
          timeout: timeoutMs,
          query: { token: auth.token, user_id: auth.userId, user_role: auth.role },
        })
      : io2
      ? io2(url, {
          transports: ["websocket"],
          forceNew: true,
          reconnection: false,
          timeout: timeoutMs,
          extraHeaders: auth && auth.token ? { Authorization: `Bearer ${auth.token}` } : {},
        })
      : io(url, {
          transports: ["websocket"],
          forceNew: true,
          reconnection: false,
          timeout: timeoutMs,
          auth,
        });
    if (setup) setup(socket); // listeners in place before the first event can arrive
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
      results[i] = await connect(specs[i].url, specs[i].auth, timeoutMs, specs[i].setup);
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
  // Where the tail sits in time: deliveries slower than TAIL_MS, by the 100 ms of the window in
  // which they were sent. A few bursts point at stalls (a collection, a slow commit); a spread
  // points at a cost every message pays.
  const TAIL_MS = 10;
  const tail = new Map();
  let windowEpochMs = 0; // Date.now() at windowStart, to line bursts up with server logs

  for (const pair of pairs) {
    pair.receiver = receivers[pair.index].socket;
    pair.sender = senders[pair.index].socket;
    const onDelivery = (m) => {
      const at = now();
      const content = CZ ? m.content : m.Content;
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
      if (config.protocol === "product" && !CZ) {  // the CZ wire carries no seq
        if (pair.lastSeq !== null && m.Seq !== pair.lastSeq + 1) stats.seqGaps++;
        pair.lastSeq = m.Seq;
      }
      if (at >= windowStart && at < windowEnd && phase !== "warmup") {
        windowReceived++;
        latency.push(at - sentAt);
        if (at - sentAt > TAIL_MS) {
          const slot = Math.floor((sentAt - windowStart) / 100);
          const t = tail.get(slot) || { count: 0, max: 0 };
          t.count++;
          t.max = Math.max(t.max, at - sentAt);
          tail.set(slot, t);
        }
      }
    };
    if (CZ) {
      pair.room = `${config.pairs[pair.index].sender}.${config.pairs[pair.index].receiver}`;
      pair.receiver.on("new_message", onDelivery);
      // The echo to the sending socket is the ack: matched by client_message_id.
      pair.pendingAcks = new Map();
      pair.sender.on("new_message", (m) => {
        const done = pair.pendingAcks.get(m.client_message_id);
        if (done) {
          pair.pendingAcks.delete(m.client_message_id);
          done({ ok: true });
        }
      });
    } else {
      pair.receiver.on("receive-personal-message", onDelivery);
    }
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

  if (CZ) {
    // Open each pair's room (the seeded direct conversation) before anything is timed.
    await Promise.all(
      pairs.map(
        (pair) =>
          new Promise((resolve, reject) => {
            const { sender, receiver } = config.pairs[pair.index];
            const timer = setTimeout(() => reject(new Error(`no create_room echo for ${pair.room}`)), 30000);
            pair.sender.once("create_room", () => {
              clearTimeout(timer);
              resolve();
            });
            pair.sender.emit("create_room", { type: "BS", buyer: sender, seller: receiver, creator: sender });
          }),
      ),
    );
    log(`opened ${pairs.length} rooms`);
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
    const onAck = (ack) => {
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
    };
    if (CZ) {
      const { sender, receiver } = config.pairs[pair.index];
      pair.pendingAcks.set(payload.ClientMessageId, onAck);
      pair.sender.emit("new_message", {
        room_id: pair.room,
        from: sender,
        to: receiver,
        type: "TEXT",
        content: payload.Content,
        client_message_id: payload.ClientMessageId,
      });
    } else {
      pair.sender.emit("send-personal-message", payload, onAck);
    }
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
      // message n is due at t0 + n/rate: n = 0 at once (+ 1: without it every message went
      // out 1/rate late, and that wait counted as latency)
      const target = Math.floor(((now() - t0) / 1000) * config.rate) + 1;
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
  windowEpochMs = Date.now();
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
    tail: tailEpisodes(tail, TAIL_MS, windowEpochMs),
    totals: { ...stats, lost, unacked },
    lost_examples: lostList.slice(0, 10).map(([i, k]) => ({ chat: pairs[i].chat, k })),
    generator_cpu_share: +((cpuW.user + cpuW.system) / 1e6 / wall).toFixed(3),
    generator_cpu_seconds_total: +((cpuAll.user + cpuAll.system) / 1e6).toFixed(2),
  });
}

// Deliveries slower than `overMs`, by the 100 ms of their send time: how many such slots, and the
// ten with the most, each with its offset in the window (s), its wall-clock time (epoch ms), its
// count and its slowest (ms).
function tailEpisodes(tail, overMs, epochMs) {
  const slots = [...tail.entries()].map(([slot, t]) => ({
    at_s: +(slot / 10).toFixed(1),
    epoch_ms: Math.round(epochMs + slot * 100),
    count: t.count,
    max_ms: +t.max.toFixed(1),
  }));
  slots.sort((a, b) => b.count - a.count);
  return {
    over_ms: overMs,
    messages: slots.reduce((n, s) => n + s.count, 0),
    slots: slots.length,
    worst: slots.slice(0, 10),
  };
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

// ------------------------------------------------------------------------------------------
// group
//
// One group of config.members sockets (all members connected, config.connectConcurrency
// handshakes at a time). config.senders (member indices) send `send-group-message` round robin,
// open loop: message n of a phase is due at phase start + n/rate and its Content carries that
// intended time, so server or generator stalls show up as latency. Phases: the fixed rate
// (warm-up, then the measured window), then saturation steps at rising rates (each step measured
// whole) until deliveries fall below 90% of what was offered, p99 passes stopP99Ms, or the steps
// run out; then the drain. Every member checks every delivery it gets: duplicates (per message),
// order (per sender), and for the product the group's Seq: strictly previous + 1, where the only
// seqs a member may skip are its own messages (the sender gets no copy). Everything acked must
// reach every other member (N - 1 deliveries per message) or counts as lost.

function growable(Type, size) {
  return { a: new Type(size), n: 0 };
}
function push(g, value) {
  if (g.n === g.a.length) {
    const bigger = new g.a.constructor(g.a.length * 2);
    bigger.set(g.a);
    g.a = bigger;
  }
  g.a[g.n++] = value;
}
const filled = (g) => g.a.subarray(0, g.n);

async function runGroup() {
  const product = config.protocol === "product";
  const N = config.members.length;
  const S = config.senders.length;
  const recipients = N - 1;
  const cap = config.maxMessages; // upper bound of messages sent in the whole run
  const pad = "x".repeat(config.pad || 40);
  const startSeq = config.startSeq || 0; // the group's last_seq before the run (product)

  const msgSender = new Int32Array(cap); // member index of each message's sender
  const msgAcked = new Uint8Array(cap);
  const msgDelivered = new Int32Array(cap); // members that got it (first copy only)
  // seq -> member index of its sender, from acks and deliveries (-1: never seen)
  const seqOwner = new Int32Array(cap + 16).fill(-1);
  const setOwner = (seq, member) => {
    const i = seq - startSeq - 1;
    if (i >= 0 && i < seqOwner.length) seqOwner[i] = member;
  };
  const ownerOf = (seq) => {
    const i = seq - startSeq - 1;
    return i >= 0 && i < seqOwner.length ? seqOwner[i] : -1;
  };
  const stats = {
    sent: 0,
    acked: 0,
    ackErrors: 0,
    ackErrorCodes: {},
    received: 0,
    duplicates: 0,
    outOfOrder: 0,
    selfDeliveries: 0,
    malformed: 0,
    skipped: 0,
    capped: 0,
    unexpectedErrors: 0,
    disconnects: 0,
  };
  const otherConnecting = {}; // events other than receive-group-message, by name
  const otherRunning = {};
  let running = false;
  let closing = false;
  let lastOtherAt = now();
  let lastDeliveryAt = 0;
  let win = null; // the phase whose window is open: deliveries and latencies count for it

  const members = config.members.map((spec, index) => ({
    index,
    socket: null,
    seen: new Uint8Array(cap),
    lastK: new Int32Array(S).fill(-1),
    seqs: product ? growable(Int32Array, 256) : null,
    greetSeq: null,
  }));
  const senderMember = config.senders;

  function setup(member) {
    return (socket) => {
      socket.onAny((name, payload) => {
        if (name === "receive-group-message") return;
        lastOtherAt = now();
        const bucket = running ? otherRunning : otherConnecting;
        bucket[name] = (bucket[name] || 0) + 1;
        if (name === "group-chat-list" && payload && Array.isArray(payload.GroupChatList)) {
          const g = payload.GroupChatList.find((x) => x._id === config.groupId);
          member.greetSeq = g ? g.Seq : -1;
        }
      });
      socket.on("receive-group-message", (m) => {
        const at = now();
        stats.received++;
        const parts = typeof m.Content === "string" ? m.Content.split(" ", 4) : [];
        const g = parseInt(parts[0], 10);
        const j = parseInt(parts[1], 10);
        const k = parseInt(parts[2], 10);
        const sentAt = parseFloat(parts[3]);
        if (!(g >= 0 && g < cap && j >= 0 && j < S) || Number.isNaN(k) || Number.isNaN(sentAt)) {
          stats.malformed++;
          return;
        }
        if (senderMember[j] === member.index) stats.selfDeliveries++;
        if (member.seen[g]) {
          stats.duplicates++;
          return;
        }
        member.seen[g] = 1;
        msgDelivered[g]++;
        lastDeliveryAt = at;
        if (k < member.lastK[j]) stats.outOfOrder++;
        else member.lastK[j] = k;
        if (product) {
          push(member.seqs, m.Seq);
          setOwner(m.Seq, senderMember[j]);
        }
        if (win !== null && at >= win.measureStart) {
          win.received++;
          push(win.latency, at - sentAt);
        }
      });
      socket.on("error", () => stats.unexpectedErrors++);
      socket.on("disconnect", (reason) => {
        if (!closing && member.socket) {
          stats.disconnects++;
          log(`unexpected disconnect of member ${member.index}: ${reason}`);
        }
      });
    };
  }

  // --- connect everyone, then wait for the server to go quiet -----------------------------
  const t = { connect0: now() };
  let lastLog = t.connect0;
  let connected = 0;
  const specs = config.members.map((m, i) => ({ url: m.url, auth: m.auth, setup: setup(members[i]) }));
  const cpuConnect0 = process.cpuUsage();
  const results = await connectAll(specs, config.connectConcurrency || 50, 60000, (i, r) => {
    if (r.ok) connected++;
    const at = now();
    if (at - lastLog > 5000) {
      lastLog = at;
      log(`${config.label}: ${connected} connected, ${(connected / ((at - t.connect0) / 1000)).toFixed(0)}/s`);
    }
  });
  const connectSeconds = (now() - t.connect0) / 1000;
  const cpuConnect = process.cpuUsage(cpuConnect0);
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    emitLine({ event: "result", error: `connect failed: ${failed.length} of ${N}, e.g. ${failed[0].why}` });
    process.exit(2);
  }
  results.forEach((r, i) => (members[i].socket = r.socket));
  log(`${config.label}: ${N} connected in ${connectSeconds.toFixed(1)}s`);
  emitLine({ event: "connected", seconds: +connectSeconds.toFixed(3) });

  // The product publishes each member's presence to its co-members after a debounce: wait until
  // no event but deliveries has arrived for quiet.idle seconds (at least quiet.min after the last
  // connection, at most quiet.max), so the measurement does not start inside that traffic.
  const quiet0 = now();
  const q = config.quiet || { min: 0, idle: 0, max: 0 };
  while (now() - quiet0 < q.max * 1000) {
    if (now() - quiet0 >= q.min * 1000 && now() - lastOtherAt >= q.idle * 1000) break;
    await sleep(100);
  }
  const quietWaited = (now() - quiet0) / 1000;
  const quietReached = now() - lastOtherAt >= q.idle * 1000;
  log(`${config.label}: waited ${quietWaited.toFixed(1)}s for quiet (${quietReached ? "quiet" : "NOT quiet"}): ${JSON.stringify(otherConnecting)}`);
  emitLine({ event: "quiet", waited: +quietWaited.toFixed(3), reached: quietReached });
  running = true;

  // --- sending --------------------------------------------------------------------------
  const inflight = new Int32Array(S);
  const nextK = new Int32Array(S);
  let rr = 0; // round robin over senders, per scheduled message
  let ackWindow = null;

  function sendOne(intended) {
    const j = rr++ % S;
    if (inflight[j] >= (config.maxInflight || 50)) {
      stats.skipped++;
      if (win) win.skipped++;
      return;
    }
    const g = stats.sent;
    if (g >= cap) {
      stats.capped++;
      return;
    }
    stats.sent++;
    const k = nextK[j]++;
    const memberIndex = senderMember[j];
    msgSender[g] = memberIndex;
    inflight[j]++;
    const payload = {
      GroupId: config.groupId,
      Content: `${g} ${j} ${k} ${intended.toFixed(3)} ${pad}`,
      ClientMessageId: `${config.runId}-${g}`,
    };
    members[memberIndex].socket.emit("send-group-message", payload, (ack) => {
      const at = now();
      inflight[j]--;
      if (ack && ack.ok) {
        stats.acked++;
        msgAcked[g] = 1;
        if (product && ack.data && typeof ack.data.Seq === "number") setOwner(ack.data.Seq, memberIndex);
        if (ackWindow && at >= ackWindow.measureStart) {
          ackWindow.acked++;
          push(ackWindow.ackLatency, at - intended);
        }
      } else {
        stats.ackErrors++;
        const code = (ack && ack.error && ack.error.code) || "no-ack";
        stats.ackErrorCodes[code] = (stats.ackErrorCodes[code] || 0) + 1;
      }
    });
  }

  let schedule = null; // {rate, start, due}
  const ticker = setInterval(() => {
    if (!schedule) return;
    const target = Math.floor(((now() - schedule.start) / 1000) * schedule.rate) + 1; // n due at start + n/rate
    while (schedule.due < target) {
      sendOne(schedule.start + (schedule.due * 1000) / schedule.rate);
      schedule.due++;
    }
  }, 1);
  const newWindow = (rate) => ({
    rate,
    measureStart: Infinity,
    received: 0,
    acked: 0,
    skipped: 0,
    latency: growable(Float64Array, Math.max(1024, Math.ceil(rate * recipients))),
    ackLatency: growable(Float64Array, 1024),
  });
  const cpu0 = process.cpuUsage();

  // fixed rate: warm-up, then the measured window
  const fixed = newWindow(config.fixed.rate);
  schedule = { rate: fixed.rate, start: now(), due: 0 };
  win = fixed;
  ackWindow = fixed;
  await sleep(config.fixed.warmup * 1000);
  fixed.measureStart = now();
  let cpuW0 = process.cpuUsage();
  emitLine({ event: "measure-start" });
  const progress = setInterval(() => {
    const w = win;
    if (w && now() > w.measureStart) {
      log(`${config.label}: ${w.rate} msg/s offered, ${(w.received / ((now() - w.measureStart) / 1000)).toFixed(0)} deliveries/s`);
    }
  }, 5000);
  await sleep(config.fixed.duration * 1000);
  fixed.measureEnd = now();
  win = null;
  ackWindow = null;
  const fixedCpu = process.cpuUsage(cpuW0);
  emitLine({ event: "measure-end" });

  const summary = (w, cpu) => {
    const seconds = (w.measureEnd - w.measureStart) / 1000;
    return {
      offered_rate: w.rate,
      offered_deliveries_per_s: w.rate * recipients,
      measure_seconds: +seconds.toFixed(3),
      delivered_per_s: +(w.received / seconds).toFixed(1),
      delivered_share: +(w.received / seconds / (w.rate * recipients)).toFixed(3),
      acked_per_s: +(w.acked / seconds).toFixed(1),
      skipped: w.skipped,
      latency_ms: percentiles(filled(w.latency)),
      ack_latency_ms: w.ackLatency.n ? percentiles(filled(w.ackLatency)) : null,
      generator_cpu_share: +((cpu.user + cpu.system) / 1e6 / seconds).toFixed(3),
    };
  };
  const fixedResult = summary(fixed, fixedCpu);
  log(`${config.label}: fixed ${fixed.rate} msg/s: ${fixedResult.delivered_per_s} deliveries/s, p99 ${fixedResult.latency_ms && fixedResult.latency_ms.p99} ms`);

  // saturation steps
  const sat = config.saturation;
  const steps = [];
  let stopReason = "rates exhausted";
  const sat0 = now();
  emitLine({ event: "saturation-start" });
  for (const rate of sat.rates) {
    if ((now() - sat0) / 1000 + sat.step > sat.maxSeconds + 0.5) {
      stopReason = "time bound";
      break;
    }
    const w = newWindow(rate);
    w.measureStart = now();
    schedule = { rate, start: w.measureStart, due: 0 };
    win = w;
    ackWindow = w;
    cpuW0 = process.cpuUsage();
    emitLine({ event: "step-start", rate });
    await sleep(sat.step * 1000);
    w.measureEnd = now();
    const r = summary(w, process.cpuUsage(cpuW0));
    emitLine({ event: "step-end", rate });
    steps.push(r);
    log(`${config.label}: step ${rate} msg/s: ${r.delivered_per_s} deliveries/s of ${r.offered_deliveries_per_s}, p99 ${r.latency_ms && r.latency_ms.p99} ms, skipped ${r.skipped}`);
    if (r.delivered_share < sat.minDeliveredShare) {
      stopReason = `deliveries below ${sat.minDeliveredShare * 100}% of offered`;
      break;
    }
    if (r.latency_ms && r.latency_ms.p99 > sat.stopP99Ms) {
      stopReason = `p99 over ${sat.stopP99Ms} ms`;
      break;
    }
  }
  schedule = null;
  win = null;
  ackWindow = null;
  clearInterval(ticker);
  clearInterval(progress);
  emitLine({ event: "saturation-end" });
  const peak = steps.reduce((best, r) => (best && best.delivered_per_s >= r.delivered_per_s ? best : r), null);

  // --- drain: everything sent acked, everything acked delivered to every other member -----
  const sentCount = () => stats.sent;
  const undelivered = (acked) => {
    let n = 0;
    for (let g = 0; g < sentCount(); g++) if (acked[g]) n += recipients - msgDelivered[g];
    return n;
  };
  const inflightTotal = () => inflight.reduce((a, b) => a + b, 0);
  const drainDeadline = now() + config.drain * 1000;
  while (now() < drainDeadline) {
    if (inflightTotal() === 0 && undelivered(msgAcked) === 0) break;
    await sleep(100);
  }
  // Freeze what counts as acked now, then let deliveries settle: while copies still arrive the
  // server is working off a backlog (counted as pending, not lost); once nothing has arrived
  // for `settle` seconds, what is missing is lost.
  const frozen = Uint8Array.from(msgAcked);
  const settleMs = (config.settle || 2) * 1000;
  const settleDeadline = now() + (config.settleMax || 10) * 1000;
  await sleep(300);
  while (now() < settleDeadline && undelivered(frozen) > 0 && now() - lastDeliveryAt < settleMs) await sleep(100);
  const missing = undelivered(frozen);
  const stillArriving = missing > 0 && now() - lastDeliveryAt < settleMs;
  const lostExamples = [];
  for (let g = 0; g < stats.sent && lostExamples.length < 10; g++) {
    if (frozen[g] && msgDelivered[g] < recipients) lostExamples.push({ g, sender: msgSender[g], delivered: msgDelivered[g] });
  }
  const drainSeconds = (now() - (drainDeadline - config.drain * 1000)) / 1000;
  log(`${config.label}: drained in ${drainSeconds.toFixed(1)}s, ${missing} copies missing${stillArriving ? " (still arriving)" : ""}`);

  // --- Seq check (product): each member's seqs strictly +1, skipping only its own messages ---
  let seqGaps = 0;
  let seqGapsUnknown = 0;
  let seqDisorder = 0;
  let greetMismatch = 0;
  if (product) {
    for (const member of members) {
      if (member.greetSeq !== startSeq) greetMismatch++;
      let last = startSeq;
      for (const v of filled(member.seqs)) {
        if (v <= last) {
          seqDisorder++;
          continue;
        }
        for (let x = last + 1; x < v; x++) {
          const owner = ownerOf(x);
          if (owner === member.index) continue;
          seqGaps++;
          if (owner === -1) seqGapsUnknown++;
        }
        last = v;
      }
    }
  }
  const cpuAll = process.cpuUsage(cpu0);

  closing = true;
  for (const member of members) member.socket.close();
  emitLine({
    event: "result",
    mode: "group",
    protocol: config.protocol,
    label: config.label,
    members: N,
    senders: S,
    recipients_per_message: recipients,
    connect_seconds: +connectSeconds.toFixed(3),
    connects_per_s: +(N / connectSeconds).toFixed(1),
    connect_generator_cpu_share: +((cpuConnect.user + cpuConnect.system) / 1e6 / connectSeconds).toFixed(3),
    quiet_waited_seconds: +quietWaited.toFixed(3),
    quiet_reached: quietReached,
    other_events_connecting: otherConnecting,
    other_events_running: otherRunning,
    greeting_seq_mismatch: product ? greetMismatch : null,
    fixed: fixedResult,
    saturation: {
      steps,
      step_seconds: sat.step,
      stop_reason: stopReason,
      peak_rate: peak ? peak.offered_rate : null,
      peak_delivered_per_s: peak ? peak.delivered_per_s : null,
      peak_latency_ms: peak ? peak.latency_ms : null,
    },
    drain_seconds: +drainSeconds.toFixed(3),
    totals: {
      ...stats,
      seqGaps,
      seqGapsUnknown,
      seqDisorder,
      lost: stillArriving ? 0 : missing,
      pendingAtEnd: stillArriving ? missing : 0,
      unacked: inflightTotal(),
    },
    lost_examples: lostExamples,
    generator_cpu_seconds_total: +((cpuAll.user + cpuAll.system) / 1e6).toFixed(2),
    generator_rss_mib: +(process.memoryUsage().rss / 1048576).toFixed(1),
  });
}

// ------------------------------------------------------------------------------------------
// storm: every connection dropped at once (run.py kills the server and starts a new one on the
// same port); the clients reconnect with socket.io-client's default backoff (reconnectionDelay
// 1 s doubling to 5 s, randomizationFactor 0.5). Measures, from the first disconnect, the time
// until every client is greeted again and the receivers have synced what they missed, while
// config.pairs keep sending (open loop, config.rate msgs/s): every acked message must reach its
// receiver, live or through the sync.

async function runStorm() {
  const url = config.urls[0];
  const pad = "x".repeat(20);
  const clients = []; // every socket: { socket, down, downAt, recoveredAt, role, pair }
  const stats = { sent: 0, sentInStorm: 0, acked: 0, ackErrors: 0, ackErrorCodes: {}, live: 0, fetched: 0, fetchPages: 0, syncErrors: 0, connectErrors: 0 };
  // What the connect errors were (socket.io-client's message: "websocket error" for a refused
  // or reset connection, "timeout" for an Engine.IO open past the 20 s connect timeout, or a
  // namespace CONNECT_ERROR's message) and when, in whole seconds after the drop ("ramp" before).
  const connectErrorKinds = {};
  const connectErrorSeconds = {};
  const attemptsBack = {}; // reconnect attempts a client needed to come back -> clients
  let dropAt = null;
  let downNow = 0;
  let phase = "ramp"; // ramp -> steady -> storm -> after -> drain
  let onRecovered = null;
  const recoveredTimes = [];

  const pairs = config.pairs.map((p, i) => ({
    index: i,
    chat: p.chat,
    nextK: 0,
    inflight: 0,
    acked: new Set(),
    seen: new Set(),
    maxSeq: 0, // the highest Seq this receiver has seen
    floorSeq: 0, // the highest Seq seen before the last disconnect: the sync fetches back to it
    listedSeq: null, // the chat's Seq in the receiver's latest personal-chat-list
  }));

  function recovered(client) {
    if (client.recoveredAt === null) {
      // The first time back after the drop counts; a client dropped again later (its handshake
      // timed out, the server sent it away) is down again until it is back.
      client.recoveredAt = now();
      recoveredTimes.push(client.recoveredAt - dropAt);
    }
    if (onRecovered && downNow === 0) onRecovered();
  }

  function fetchPage(client, pair, before) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        client.socket.off("personal-chat", listener);
        resolve(null);
      }, 10000);
      const listener = (page) => {
        if (!page || page.ChatId !== pair.chat) return;
        clearTimeout(timer);
        client.socket.off("personal-chat", listener);
        resolve(page.Messages || []);
      };
      client.socket.on("personal-chat", listener);
      client.socket.emit("fetch-personal-chat", before ? { ChatId: pair.chat, Before: before, Limit: 50 } : { ChatId: pair.chat, Limit: 50 });
    });
  }

  function see(pair, m, live) {
    const content = m.Content || "";
    const k = parseInt(content.slice(0, content.indexOf(" ")), 10);
    if (!Number.isNaN(k)) pair.seen.add(k);
    if (typeof m.Seq === "number" && m.Seq > pair.maxSeq) pair.maxSeq = m.Seq;
    if (live) stats.live++;
    else stats.fetched++;
  }

  async function sync(client, pair) {
    // Newest page first, back to the highest Seq seen before the drop (at most 200 pages).
    let before = null;
    for (let page = 0; page < 200; page++) {
      const messages = await fetchPage(client, pair, before);
      if (messages === null) {
        stats.syncErrors++;
        return false;
      }
      stats.fetchPages++;
      for (const m of messages) see(pair, m, false);
      const oldest = messages.length ? Math.min(...messages.map((m) => m.Seq)) : 0;
      if (messages.length < 50 || oldest <= pair.floorSeq + 1) return true;
      before = oldest;
    }
    return true;
  }

  function open(auth, role, pair) {
    const socket = io(url, { transports: ["websocket"], forceNew: true, auth, timeout: 20000 });
    const client = { socket, role, pair, down: false, downAt: null, recoveredAt: null, greetings: 0 };
    socket.on("connect_error", (e) => {
      stats.connectErrors++;
      const kind = String((e && e.message) || e).slice(0, 60);
      connectErrorKinds[kind] = (connectErrorKinds[kind] || 0) + 1;
      const second = dropAt === null ? "ramp" : String(Math.floor((now() - dropAt) / 1000));
      connectErrorSeconds[second] = (connectErrorSeconds[second] || 0) + 1;
    });
    socket.io.on("reconnect", (attempt) => {
      attemptsBack[attempt] = (attemptsBack[attempt] || 0) + 1;
    });
    if (role === "receiver") {
      socket.on("receive-personal-message", (m) => see(pair, m, true));
      socket.on("personal-chat-list", (list) => {
        const entry = ((list && list.PersonalChatList) || []).find((c) => c._id === pair.chat);
        pair.listedSeq = entry ? entry.Seq : null;
      });
    }
    socket.on("disconnect", () => {
      if (client.down) return;
      client.down = true;
      client.downAt = now();
      downNow++;
      if (dropAt === null) {
        dropAt = client.downAt;
        phase = "storm";
        log(`storm: first disconnect`);
      }
      if (role === "receiver") pair.floorSeq = pair.maxSeq;
    });
    socket.on(READY_EVENT, async () => {
      client.greetings++;
      if (!client.down) return; // the first greeting (ramp)
      if (role === "receiver" && !(await sync(client, pair))) return;
      client.down = false;
      downNow--;
      recovered(client);
    });
    clients.push(client);
    return client;
  }

  // Ramp: config.concurrency handshakes in flight; a client counts once greeted.
  const specs = [
    ...config.auths.map((auth) => ({ auth, role: "idle" })),
    ...pairs.flatMap((pair) => [
      { auth: config.pairs[pair.index].receiverAuth, role: "receiver", pair },
      { auth: config.pairs[pair.index].senderAuth, role: "sender", pair },
    ]),
  ];
  const t0 = now();
  let next = 0;
  let lastLog = t0;
  async function worker() {
    while (next < specs.length) {
      const spec = specs[next++];
      const client = open(spec.auth, spec.role, spec.pair);
      await new Promise((resolve) => client.socket.once(READY_EVENT, resolve));
      if (spec.role === "sender") spec.pair.sender = client.socket;
      if (now() - lastLog > 5000) {
        lastLog = now();
        log(`storm ramp: ${next} of ${specs.length}`);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(config.concurrency, specs.length) }, worker));
  const rampSeconds = (now() - t0) / 1000;
  phase = "steady";

  // Senders: open loop, round robin; a sender with 200 unacked messages skips its turn.
  let skipped = 0;
  function send(pair) {
    const k = pair.nextK++;
    pair.inflight++;
    stats.sent++;
    if (phase === "storm") stats.sentInStorm++;
    pair.sender.emit(
      "send-personal-message",
      { ChatId: pair.chat, Content: `${k} ${pad}`, ClientMessageId: `${config.runId}-${pair.index}-${k}` },
      (ack) => {
        pair.inflight--;
        if (ack && ack.ok) {
          stats.acked++;
          pair.acked.add(k);
        } else {
          stats.ackErrors++;
          const code = (ack && ack.error && ack.error.code) || "no-ack";
          stats.ackErrorCodes[code] = (stats.ackErrorCodes[code] || 0) + 1;
        }
      },
    );
  }
  let due = 0;
  const s0 = now();
  const ticker = setInterval(() => {
    const target = Math.floor(((now() - s0) / 1000) * config.rate) + 1;
    while (due < target) {
      const pair = pairs[due % pairs.length];
      due++;
      if (pair.inflight >= 200) skipped++;
      else send(pair);
    }
  }, 5);
  emitLine({ event: "ready", connected: clients.length, ramp_seconds: +rampSeconds.toFixed(2) });

  // Wait for the drop (run.py kills the server), then for every client to come back.
  const allBack = new Promise((resolve) => {
    onRecovered = resolve;
  });
  const deadline = sleep(config.stormTimeout * 1000).then(() => "timeout");
  const outcome = await Promise.race([allBack.then(() => "recovered"), deadline]);
  const stormSeconds = dropAt === null ? null : (now() - dropAt) / 1000;
  const stillDown = downNow;
  const neverBack = clients.filter((c) => c.recoveredAt === null).length;
  emitLine({ event: "recovered", outcome, storm_seconds: stormSeconds, still_down: stillDown });
  phase = "after";
  await sleep(config.after * 1000);
  clearInterval(ticker);
  phase = "drain";
  // Every acked message must have reached its receiver: wait (bounded) for the last acks and
  // deliveries.
  // Only receivers that are back and synced can be held to it; the others' missing messages are
  // reported apart (undelivered: the receiver never came back within the bound).
  const receiverBack = (p) => clients.some((c) => c.role === "receiver" && c.pair === p && !c.down);
  const missingOf = (p) => [...p.acked].filter((k) => !p.seen.has(k)).length;
  const missing = () => pairs.reduce((n, p) => n + (receiverBack(p) ? missingOf(p) : 0), 0);
  const drainEnd = now() + config.drain * 1000;
  while (now() < drainEnd && (missing() > 0 || pairs.some((p) => p.inflight > 0))) await sleep(100);
  const missingAtDrain = missing();
  // Late or lost: a server still working through the storm may deliver after the drain. While
  // anything is missing, wait on as long as the server still owes answers (a connected sender
  // has unacked messages: it is working through a backlog) or deliveries and acks keep arriving
  // (each restarts a quiet timer of `settle` s); at most `lateMax` s more. What arrives meanwhile
  // was late; what is still missing then is lost.
  const progress = () => stats.live + stats.fetched + stats.acked;
  const owing = () => pairs.some((p) => p.inflight > 0 && p.sender && p.sender.connected);
  const lateStart = now();
  const lateEnd = lateStart + (config.lateMax || 0) * 1000;
  let seenProgress = progress();
  let lastProgressAt = now();
  while (missing() > 0 && now() < lateEnd && (owing() || now() - lastProgressAt < (config.settle || 5) * 1000)) {
    await sleep(100);
    if (progress() !== seenProgress) {
      seenProgress = progress();
      lastProgressAt = now();
    }
  }
  const lostKs = missing();
  const lateWaitSeconds = (now() - lateStart) / 1000;
  // What the lost ones are: each receiver with a message still missing fetches its chat's newest
  // pages once more (at most 20 pages of 50): a lost message found there was stored and acked but
  // never delivered live nor found by the client's sync; one not found was never stored.
  let lostFoundStored = 0;
  for (const pair of pairs) {
    if (!receiverBack(pair) || !missingOf(pair)) continue;
    const client = clients.find((c) => c.role === "receiver" && c.pair === pair && !c.down);
    const want = new Set([...pair.acked].filter((k) => !pair.seen.has(k)));
    const found = new Set();
    let before = null;
    for (let page = 0; page < 20 && found.size < want.size; page++) {
      const messages = await fetchPage(client, pair, before);
      if (!messages || !messages.length) break;
      for (const m of messages) {
        const content = m.Content || "";
        const k = parseInt(content.slice(0, content.indexOf(" ")), 10);
        if (want.has(k)) found.add(k);
      }
      if (messages.length < 50) break;
      before = Math.min(...messages.map((m) => m.Seq));
    }
    lostFoundStored += found.size;
  }
  const undelivered = pairs.reduce((n, p) => n + (receiverBack(p) ? 0 : missingOf(p)), 0);
  const unacked = pairs.reduce((n, p) => n + p.inflight, 0);
  for (const c of clients) c.socket.close();
  emitLine({
    event: "result",
    mode: "storm",
    connected: clients.length,
    ramp_seconds: +rampSeconds.toFixed(2),
    ramp_connects_per_s: +(clients.length / rampSeconds).toFixed(1),
    outcome,
    storm_seconds: stormSeconds === null ? null : +stormSeconds.toFixed(3),
    still_down: stillDown,
    never_back: neverBack,
    recovered: recoveredTimes.length,
    recovered_ms: percentiles(recoveredTimes),
    messages: {
      sent: stats.sent,
      sent_during_storm: stats.sentInStorm,
      acked: stats.acked,
      ack_errors: stats.ackErrors,
      ack_error_codes: stats.ackErrorCodes,
      unacked,
      skipped,
      lost: lostKs,
      // Missing when the drain ended, delivered later (the late wait: `late_wait_seconds`).
      late: missingAtDrain - lostKs,
      late_wait_seconds: +lateWaitSeconds.toFixed(1),
      // Of the lost: found stored by a last fetch (acked, stored, never delivered nor synced).
      lost_found_stored: lostFoundStored,
      undelivered_receiver_not_back: undelivered,
      received_live: stats.live,
      received_by_sync: stats.fetched,
      sync_pages: stats.fetchPages,
      sync_errors: stats.syncErrors,
    },
    connect_errors: stats.connectErrors,
    connect_error_kinds: connectErrorKinds,
    connect_error_seconds: connectErrorSeconds,
    reconnect_attempts: attemptsBack,
  });
}

({ direct: runDirect, idle: runIdle, group: runGroup, storm: runStorm })[config.mode]()
  .then(() => setTimeout(() => process.exit(0), 200))
  .catch((e) => {
    emitLine({ event: "result", error: String(e && e.stack ? e.stack : e) });
    process.exit(1);
  });
