// The open conversation: header, message history with scroll-back, read receipts, composer.

import { $, h, reconcile } from "../dom.js";
import { features } from "../features.js";
import { DIRECT, GROUP, SELF } from "../protocol.js";
import { clock, dayKey, dayLabel, full } from "../time.js";
import { avatar, conversationTitle } from "./chatlist.js";

const NEAR_BOTTOM_PX = 120;

export class ConversationView {
  constructor(store, handlers) {
    this.store = store;
    this.handlers = handlers; // onSend(conv, text), onRetry(conv, msg), onLoadOlder(conv), onBack(), onGroupInfo()
    this.cache = new Map();
    this.convId = null;
    this.loadingOlder = false;
    this.el = {
      empty: $("#empty-state"),
      view: $("#conv-view"),
      avatar: $("#conv-avatar"),
      title: $("#conv-title"),
      subtitle: $("#conv-subtitle"),
      info: $("#group-info-btn"),
      scroller: $("#messages"),
      list: $("#message-list"),
      older: $("#older-btn"),
      start: $("#history-start"),
      form: $("#composer"),
      input: $("#composer-input"),
      label: $("#composer-label"),
      back: $("#back-btn"),
    };
    this.bind();
  }

  bind() {
    const { form, input, older, back, info, scroller } = this.el;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    input.addEventListener("input", () => {
      this.autosize();
      const conv = this.store.open;
      if (conv) features.typing.onInput(conv, input.value);
    });
    // Leaving the composer (another control, another window) ends "is typing".
    input.addEventListener("blur", () => features.typing.onIdle(this.store.open));
    older.addEventListener("click", () => this.loadOlder());
    back.addEventListener("click", () => this.handlers.onBack());
    info.addEventListener("click", () => this.handlers.onGroupInfo());
    // Scrolling to the top loads the previous page by itself.
    this.observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadOlder();
      },
      { root: scroller, rootMargin: "200px 0px 0px 0px" },
    );
    this.observer.observe(older);
  }

  autosize() {
    const { input } = this.el;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
  }

  submit() {
    const conv = this.store.open;
    const text = this.el.input.value;
    if (!conv || !text.trim()) return;
    this.el.input.value = "";
    this.autosize();
    features.typing.onIdle(conv);
    this.handlers.onSend(conv, text);
  }

  async loadOlder() {
    const conv = this.store.open;
    if (!conv || !conv.loaded || !conv.hasMore || this.loadingOlder || this.el.older.hidden) return;
    this.loadingOlder = true;
    this.el.older.disabled = true;
    this.el.older.textContent = "Loading…";
    try {
      await this.handlers.onLoadOlder(conv);
    } finally {
      this.loadingOlder = false;
      this.el.older.disabled = false;
      this.el.older.textContent = "Load earlier messages";
      this.renderHistoryTop(this.store.open);
    }
  }

  /** Called when another conversation was opened (or none). */
  show(conv, { focus = false } = {}) {
    const changed = (conv ? conv.id : null) !== this.convId;
    this.convId = conv ? conv.id : null;
    this.el.empty.hidden = Boolean(conv);
    this.el.view.hidden = !conv;
    if (changed) features.typing.onOpen(conv);
    if (!conv) return;
    if (changed) {
      this.cache.clear();
      this.el.list.replaceChildren();
      this.el.input.value = "";
      this.autosize();
    }
    this.renderHeader(conv);
    this.renderMessages({ toBottom: true });
    if (focus) this.el.input.focus();
  }

  renderHeader(conv) {
    if (!conv) return;
    const title = conversationTitle(conv);
    this.el.avatar.replaceWith((this.el.avatar = Object.assign(avatar(conv), { id: "conv-avatar" })));
    this.el.title.textContent = title;
    this.el.label.textContent = conv.kind === SELF ? "Note to self" : `Message ${title}`;
    this.el.input.placeholder = conv.kind === SELF ? "Write a note" : "Write a message";
    let subtitle = "";
    if (conv.kind === SELF) subtitle = "Only you can see these notes";
    else if (conv.kind === DIRECT) subtitle = features.presence.subtitle(conv) || "Direct chat";
    else if (conv.detailsLoaded) {
      const count = conv.members.size;
      subtitle = `${count} member${count === 1 ? "" : "s"}${this.store.isAdmin(conv) ? " · you are an admin" : ""}`;
    } else subtitle = "Group";
    this.el.subtitle.textContent = subtitle;
    this.el.info.hidden = conv.kind !== GROUP;
  }

  renderHistoryTop(conv) {
    if (!conv) return;
    const more = conv.loaded && conv.hasMore;
    this.el.older.hidden = !more;
    this.el.start.hidden = !conv.loaded || more;
  }

  isNearBottom() {
    const s = this.el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.el.scroller.scrollTop = this.el.scroller.scrollHeight;
  }

  /** Re-render the open conversation's messages, keeping the reader's place. */
  renderMessages({ older = false, toBottom = false } = {}) {
    const conv = this.store.open;
    if (!conv || conv.id !== this.convId) return;
    const scroller = this.el.scroller;
    const nearBottom = this.isNearBottom();
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;

    const items = [];
    let lastDay = null;
    for (const msg of conv.timeline()) {
      const day = msg.ts ? dayKey(msg.ts) : lastDay;
      if (day !== null && day !== lastDay) {
        const label = dayLabel(msg.ts);
        items.push({ key: `d:${day}`, sig: label, create: () => h("li", { class: "day-divider", text: label }) });
        lastDay = day;
      }
      const status = this.status(conv, msg);
      const sig = [msg.kind, msg.state, msg.content, msg.ts, status.text, msg.senderName].join("\u0000");
      items.push({ key: msg.key, sig, create: () => this.message(conv, msg, status) });
    }
    reconcile(this.el.list, items, this.cache);
    this.renderHistoryTop(conv);

    if (older) scroller.scrollTop = scroller.scrollHeight - fromBottom;
    else if (toBottom || nearBottom) this.scrollToBottom();
  }

  status(conv, msg) {
    const mine = msg.senderId === this.store.me.id;
    if (!mine || msg.kind !== "text" || conv.kind === SELF) {
      if (msg.state === "pending") return { text: "Sending…", cls: "" };
      if (msg.state === "failed") return { text: "Not sent", cls: "failed" };
      return { text: "", cls: "" };
    }
    if (msg.state === "pending") return { text: "Sending…", cls: "" };
    if (msg.state === "failed") return { text: "Not sent", cls: "failed" };
    const receipt = this.store.receipt(conv, msg);
    if (!receipt) return { text: "", cls: "" };
    if (conv.kind === DIRECT) {
      if (receipt.read) return { text: "Read", cls: "read" };
      return receipt.delivered ? { text: "Delivered", cls: "delivered" } : { text: "Sent", cls: "" };
    }
    if (receipt.of > 0 && receipt.read === receipt.of) return { text: "Read by everyone", cls: "read", title: receipt.names.join(", ") };
    if (receipt.read > 0) return { text: `Read by ${receipt.read} of ${receipt.of}`, cls: "read", title: receipt.names.join(", ") };
    return { text: "Sent", cls: "" };
  }

  message(conv, msg, status) {
    if (msg.kind === "removed") {
      return h("li", { class: `msg removed ${msg.senderId === this.store.me.id ? "mine" : "theirs"}`, dataset: { seq: String(msg.seq) } },
        h("div", { class: "bubble" }, h("p", { class: "text", text: msg.content })));
    }
    if (msg.kind === "system") {
      return h("li", { class: "msg system", dataset: { seq: String(msg.seq) } },
        h("div", { class: "bubble" }, h("p", { class: "text", text: msg.content }),
          h("time", { class: "visually-hidden", datetime: msg.ts, text: clock(msg.ts) })));
    }
    const mine = msg.senderId === this.store.me.id;
    const showSender = conv.kind === GROUP && !mine;
    const body = msg.kind === "text" ? null : features.media.render(msg, conv);
    const retry = msg.state === "failed"
      ? h("button", { type: "button", class: "btn-link", text: "Retry", on: { click: () => this.handlers.onRetry(conv, msg) } })
      : null;
    const actions = features.edits.actions(msg, conv);
    return h(
      "li",
      {
        class: `msg ${mine ? "mine" : "theirs"}${msg.state !== "sent" ? ` ${msg.state}` : ""}`,
        dataset: { seq: msg.seq ? String(msg.seq) : "", key: msg.key, state: msg.state },
      },
      h("div", { class: "bubble" },
        showSender ? h("span", { class: "sender", text: msg.senderName }) : h("span", { class: "visually-hidden", text: mine ? "You:" : `${msg.senderName}:` }),
        body || h("p", { class: "text", text: msg.content }),
        h("div", { class: "foot" },
          msg.ts ? h("time", { datetime: msg.ts, title: full(msg.ts), text: clock(msg.ts) }) : null,
          status.text ? h("span", { class: `status ${status.cls}`, title: status.title || null, text: status.text }) : null,
          retry,
          ...actions)),
    );
  }
}
