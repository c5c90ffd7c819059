// The Socket.IO connection (namespace "/", the ExpressChat protocol; docs/protocol.md).
//
// The browser sends the httpOnly login cookies with the handshake (same origin), which is how
// the server knows who we are; no token is handled here. Every client event is sent with an
// ack callback: the server answers {ok: true, data} or {ok: false, error: {code, message}}.
// The fetch events answer with a separate reply event (personal-chat, group-chat, self-chat),
// sent before the ack on the same connection, so `request` pairs a reply with its request.

import { TRANSPORT_KEY } from "./keys.js";

const DEFAULT_TIMEOUT_MS = 10000;
const WEBSOCKET_PATIENCE_MS = 4000; // then try long-polling instead

export class RequestError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.code = code;
    this.extra = extra || {};
  }
}

export class Connection {
  constructor() {
    if (typeof window.io !== "function") throw new Error("socket.io client missing");
    // WebSocket first: one long-lived connection, no long-polling session to keep sticky when
    // the server runs several processes (docs/operations.md §7.2), no upgrade step. Where a
    // WebSocket never gets through (an old proxy), fall back to polling with upgrade.
    // Once a WebSocket failed in this tab, later page loads start with polling at once.
    const pollingFirst = sessionStorage.getItem(TRANSPORT_KEY) === "polling";
    this.socket = window.io({
      autoConnect: false,
      // Group system messages come only to clients that say they show them (protocol §16).
      auth: { extensions: true },
      transports: pollingFirst ? ["polling", "websocket"] : ["websocket"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      timeout: 10000,
    });
    this.websocketWorked = false;
    this.socket.on("connect", () => {
      if (this.transport === "websocket") {
        this.websocketWorked = true;
        sessionStorage.removeItem(TRANSPORT_KEY);
      }
    });
    // A refused WebSocket handshake shows as connect_error. One that hangs, or opens and is
    // closed before the Engine.IO handshake (some proxies), shows nothing until the manager's
    // timeout; the watchdog in connect() does not wait that long.
    this.socket.on("connect_error", () => this.fallBack());
    this.replies = new Map(); // reply event name -> [{match, payload, got}] in request order
    this.socket.on("disconnect", () => {
      // Replies to requests in flight will never come; their acks time out.
      for (const queue of this.replies.values()) queue.length = 0;
    });
  }

  get connected() {
    return this.socket.connected;
  }

  /** The Engine.IO transport in use ("polling" or "websocket"), for the curious and the tests. */
  get transport() {
    const engine = this.socket.io.engine;
    return engine && engine.transport ? engine.transport.name : "";
  }

  on(event, handler) {
    this.socket.on(event, handler);
  }

  onManager(event, handler) {
    this.socket.io.on(event, handler);
  }

  /** Call `handler(name)` whenever the transport changes (polling first, then the upgrade). */
  onTransport(handler) {
    this.socket.io.on("open", () => {
      const engine = this.socket.io.engine;
      handler(this.transport);
      engine.on("upgrade", () => handler(this.transport));
    });
  }

  /** Use long-polling (upgrading when it can) from now on, unless a WebSocket worked before. */
  fallBack() {
    const opts = this.socket.io.opts;
    if (this.websocketWorked || opts.transports[0] !== "websocket") return false;
    opts.transports = ["polling", "websocket"];
    sessionStorage.setItem(TRANSPORT_KEY, "polling");
    return true;
  }

  connect() {
    this.socket.connect();
    clearTimeout(this.watchdog);
    if (this.websocketWorked) return;
    this.watchdog = setTimeout(() => {
      if (!this.socket.connected && this.fallBack()) this.reconnectNow();
    }, WEBSOCKET_PATIENCE_MS);
  }

  /** Reconnect at once (after the browser came back online) instead of waiting for the backoff. */
  reconnectNow() {
    if (this.socket.connected) return;
    this.socket.disconnect();
    this.connect();
  }

  /** Drop the connection (the browser went offline); reconnection starts when asked. */
  drop() {
    this.socket.disconnect();
  }

  close() {
    this.socket.disconnect();
  }

  _queue(name) {
    if (!this.replies.has(name)) {
      this.replies.set(name, []);
      this.socket.on(name, (payload) => {
        const slot = this.replies.get(name).find((s) => !s.got && s.match(payload));
        if (slot) {
          slot.payload = payload;
          slot.got = true;
        }
      });
    }
    return this.replies.get(name);
  }

  /**
   * Send `event` and resolve with the ack's data, or with the reply event's payload when
   * `reply` names one (`match(payload)` picks ours among several in flight). Rejects with a
   * RequestError: the server's error code, "offline" when not connected (nothing is queued:
   * the caller decides what to retry), or "timeout".
   */
  request(event, payload = {}, { reply = null, match = () => true, timeout = DEFAULT_TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new RequestError("offline", "Not connected."));
        return;
      }
      let slot = null;
      let queue = null;
      if (reply) {
        queue = this._queue(reply);
        slot = { match, payload: undefined, got: false };
        queue.push(slot);
      }
      const release = () => {
        if (queue) {
          const index = queue.indexOf(slot);
          if (index >= 0) queue.splice(index, 1);
        }
      };
      const timer = setTimeout(() => {
        release();
        reject(new RequestError("timeout", "The server did not answer in time."));
      }, timeout);
      this.socket.emit(event, payload, (ack) => {
        clearTimeout(timer);
        release();
        if (!ack || ack.ok !== true) {
          const error = (ack && ack.error) || {};
          reject(new RequestError(error.code || "error", error.message || "The request failed.", error.extra));
          return;
        }
        if (reply && !slot.got) {
          reject(new RequestError("no_reply", `No ${reply} event before the ack.`));
          return;
        }
        resolve(reply ? slot.payload : ack.data);
      });
    });
  }
}
