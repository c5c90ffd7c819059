// The open conversation: header, message history with scroll-back, read receipts, message
// actions (react, reply, edit, delete) and the composer.
//
// The composer takes one file per message (ui/attachments.js: the attach button, a file dropped
// onto the conversation, a pasted picture); the box is then the caption, which may be empty.
//
// The composer has three modes: a new message, a reply (a quote bar above the box says to
// what; the message is sent with ReplyTo), and an edit (the box holds the message's text;
// Enter saves; a media message's caption may be emptied). Escape or the bar's × button cancels
// a reply or an edit. In an empty box, ArrowUp edits our newest message.

import { $, announce, h, reconcile } from "../dom.js";
import { features } from "../features.js";
import { DIRECT, GROUP, SELF, excerpt, isMedia, kindWord, quoteText } from "../protocol.js";
import { dayKey, dayLabel } from "../time.js";
import { Attachments } from "./attachments.js";
import { avatar, conversationTitle } from "./chatlist.js";
import { messageSig, permissions, renderMessage } from "./message.js";
import { MessageMenu } from "./messagemenu.js";

const NEAR_BOTTOM_PX = 120;
const FLASH_MS = 1600;

export class ConversationView {
  constructor(store, handlers) {
    this.store = store;
    // onSend(conv, text, replyTo, upload), onEdit(conv, msg, text), onDelete(conv, msg),
    // onReact(conv, msg, emoji, add), onRetry(conv, msg), onLoadOlder(conv), onBack(),
    // onGroupInfo(), renewed(ms) (resolves when the login cookie was renewed)
    this.handlers = handlers;
    this.mode = null; // {type: "reply" | "edit", convId, msg} while replying or editing
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
      send: $("#send-btn"),
      back: $("#back-btn"),
      context: $("#composer-context"),
      contextTitle: $("#composer-context-title"),
      contextText: $("#composer-context-text"),
      contextCancel: $("#composer-context-cancel"),
    };
    this.files = new Attachments({
      button: $("#attach-btn"),
      input: $("#attach-input"),
      tray: $("#composer-attachment"),
      error: $("#composer-error"),
      dropZone: this.el.view,
      box: this.el.input,
    }, {
      onChange: () => this.updateRequired(),
      renewed: (ms) => this.handlers.renewed(ms),
    });
    this.menu = new MessageMenu($("#message-menu"), {
      onReact: (msg, emoji, add) => this.withOpen((conv) => this.handlers.onReact(conv, msg, emoji, add)),
      onReply: (msg) => this.startReply(msg),
      onEdit: (msg) => this.startEdit(msg),
      onDelete: (msg) => this.withOpen((conv) => this.handlers.onDelete(conv, msg)),
    });
    this.bind();
  }

  withOpen(fn) {
    const conv = this.store.open;
    if (conv) fn(conv);
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
      } else if (event.key === "Escape" && this.mode) {
        event.preventDefault();
        this.cancelMode();
      } else if (event.key === "ArrowUp" && !input.value && !this.mode) {
        const last = this.lastEditable();
        if (last) {
          event.preventDefault();
          this.startEdit(last);
        }
      }
    });
    this.el.contextCancel.addEventListener("click", () => this.cancelMode());
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
    if (!conv) return;
    const text = this.el.input.value;
    const blank = !text.trim();
    const mode = this.mode && this.mode.convId === conv.id ? this.mode : null;
    const editing = mode && mode.type === "edit";
    if (editing && blank && !isMedia(mode.msg.kind)) return;
    if (!editing && this.files.busy) {
      this.files.say("The file is still uploading: send when it is attached.");
      return;
    }
    const upload = editing ? null : this.files.ready;
    if (!editing && blank && !upload) return;
    this.el.input.value = "";
    this.setMode(null);
    this.autosize();
    features.typing.onIdle(conv);
    // A blank caption is no caption (the server refuses one of only spaces).
    const body = blank ? "" : text;
    if (editing) {
      if (body !== quoteText(mode.msg)) this.handlers.onEdit(conv, mode.msg, body);
      return;
    }
    this.files.take();
    this.files.say("");
    this.handlers.onSend(conv, body, mode ? mode.msg : null, upload);
  }

  // --- composer modes: reply and edit ---------------------------------------------------

  startReply(msg) {
    const conv = this.store.open;
    if (!conv) return;
    if (this.mode && this.mode.type === "edit") this.el.input.value = "";
    this.setMode({ type: "reply", convId: conv.id, msg });
    this.el.input.focus();
  }

  startEdit(msg) {
    const conv = this.store.open;
    if (!conv) return;
    this.setMode({ type: "edit", convId: conv.id, msg });
    const { input } = this.el;
    input.value = quoteText(msg); // a media message's caption
    this.autosize();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  cancelMode() {
    const mode = this.mode;
    if (!mode) return;
    if (mode.type === "edit") {
      this.el.input.value = "";
      this.autosize();
    }
    this.setMode(null);
    announce(mode.type === "edit" ? "Editing cancelled." : "Reply cancelled.");
    this.el.input.focus();
  }

  /** The box may be left empty with a file attached, or when editing a caption (the browser's
   * form check would refuse to submit an empty required box). */
  updateRequired() {
    const mode = this.mode;
    const caption = this.files.any || Boolean(mode && mode.type === "edit" && isMedia(mode.msg.kind));
    this.el.input.required = !caption;
  }

  /** Show the mode in the bar above the box, and on the send button. */
  setMode(mode) {
    this.mode = mode;
    this.updateRequired();
    const { context, contextTitle, contextText, contextCancel, send, input } = this.el;
    context.hidden = !mode;
    context.dataset.mode = mode ? mode.type : "";
    input.setAttribute("aria-describedby", mode ? "composer-context composer-hint" : "composer-hint");
    send.textContent = mode && mode.type === "edit" ? "Save" : "Send";
    if (!mode) return;
    const msg = mode.msg;
    contextText.textContent = excerpt(quoteText(msg)) || kindWord(msg.kind);
    if (mode.type === "edit") {
      contextTitle.textContent = "Editing your message";
      contextCancel.setAttribute("aria-label", "Cancel editing");
    } else {
      const who = msg.senderId === this.store.me.id ? "yourself" : msg.senderName;
      contextTitle.textContent = `Replying to ${who}`;
      contextCancel.setAttribute("aria-label", "Cancel reply");
    }
  }

  /** The message a mode is about was deleted (or the chat changed): leave that mode. */
  checkMode(conv) {
    const mode = this.mode;
    if (!mode) return;
    const current = conv && mode.convId === conv.id ? conv.messages.get(mode.msg.seq) : null;
    if (!current || current.id !== mode.msg.id || current.kind === "removed") {
      if (mode.type === "edit") this.el.input.value = "";
      this.setMode(null);
      if (current && current.kind === "removed") announce("The message you were answering or editing was deleted.");
      return;
    }
    mode.msg = current;
  }

  /** Our newest message that can still be edited (ArrowUp in an empty box). */
  lastEditable() {
    const conv = this.store.open;
    if (!conv) return null;
    const mine = conv.timeline().filter((m) => permissions(m, conv, this.store).edit);
    return mine.length ? mine[mine.length - 1] : null;
  }

  /** Focus a message (after a quote is followed, or after a delete took its buttons). */
  focusMessage(key, { flash = false } = {}) {
    const el = this.el.list.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (!el) return false;
    el.scrollIntoView({ block: "center" });
    el.focus({ preventScroll: true });
    if (flash) {
      el.classList.add("flash");
      setTimeout(() => el.classList.remove("flash"), FLASH_MS);
    }
    return true;
  }

  /** A reply's quote was pressed: show the original, if it is loaded. */
  showQuoted(quote) {
    const conv = this.store.open;
    const target = conv && conv.messages.get(quote.seq);
    if (target && target.id === quote.id && this.focusMessage(target.key, { flash: true })) return;
    announce("That message is further back: load earlier messages to see it.");
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
      this.menu.close({ focus: false });
      this.setMode(null);
      this.files.discard(); // the file was for the chat that was open, like the text
      this.files.say("");
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
      const can = permissions(msg, conv, this.store);
      items.push({ key: msg.key, sig: messageSig(msg, status, can), create: () => this.message(conv, msg, status, can) });
    }
    const focus = this.focusState();
    reconcile(this.el.list, items, this.cache);
    this.renderHistoryTop(conv);
    this.checkMode(conv);
    this.menu.refresh((key) => this.actionsButton(key));
    this.restoreFocus(focus);

    if (older) scroller.scrollTop = scroller.scrollHeight - fromBottom;
    else if (toBottom || nearBottom) this.scrollToBottom();
  }

  status(conv, msg) {
    const mine = msg.senderId === this.store.me.id;
    if (!mine || msg.kind === "system" || msg.kind === "removed" || conv.kind === SELF) {
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

  /** Where the keyboard focus is in the list: a message, its actions button or a reaction. */
  focusState() {
    const active = document.activeElement;
    if (!active || !this.el.list.contains(active)) return null;
    const item = active.closest("li.msg");
    if (!item) return null;
    if (active.classList.contains("msg-actions-btn")) return { key: item.dataset.key, part: ".msg-actions-btn" };
    if (active.dataset.emoji) return { key: item.dataset.key, part: `.reaction[data-emoji="${CSS.escape(active.dataset.emoji)}"]` };
    return { key: item.dataset.key, part: null };
  }

  /** A message redrawn under the keyboard focus gets it back (the same control if it is still
   * there, else the message itself). */
  restoreFocus(focus) {
    if (!focus || this.el.list.contains(document.activeElement)) return;
    if (document.activeElement && document.activeElement !== document.body) return; // moved on
    const item = this.el.list.querySelector(`[data-key="${CSS.escape(focus.key)}"]`);
    if (!item) return;
    const part = focus.part && item.querySelector(focus.part);
    (part || item).focus({ preventScroll: true });
  }

  actionsButton(key) {
    const el = this.el.list.querySelector(`[data-key="${CSS.escape(key)}"]`);
    return el ? el.querySelector(".msg-actions-btn") : null;
  }

  message(conv, msg, status, can) {
    return renderMessage(msg, conv, {
      me: this.store.me,
      status,
      can,
      onRetry: (m) => this.handlers.onRetry(conv, m),
      onActions: (button, m) => this.menu.toggle(button, m, permissions(m, conv, this.store)),
      onToggleReaction: (m, emoji) => this.handlers.onReact(conv, m, emoji, !m.myReactions.includes(emoji)),
      onQuote: (quote) => this.showQuoted(quote),
    });
  }
}
