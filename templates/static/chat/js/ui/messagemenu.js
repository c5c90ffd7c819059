// The actions menu of one message (WAI-ARIA menu pattern): quick reactions, Reply, Edit,
// Delete. One menu element (#message-menu) serves every message; it opens under (or above)
// the message's "Message actions" button, and as a sheet at the bottom on narrow screens.
//
// Keyboard: the button opens it with Enter or Space and focus moves to the first item; arrow
// keys, Home and End move between items; Enter or Space picks one; Escape and Tab close it and
// return focus to the button. A click outside closes it.

import { h } from "../dom.js";

export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
const NARROW = "(max-width: 719px)";
const GAP_PX = 4;
const EDGE_PX = 8;

export class MessageMenu {
  /** handlers: onReact(msg, emoji, add), onReply(msg), onEdit(msg), onDelete(msg). */
  constructor(el, handlers) {
    this.el = el;
    this.handlers = handlers;
    this.msg = null;
    this.trigger = null;
    el.addEventListener("keydown", (event) => this.onKey(event));
    document.addEventListener("pointerdown", (event) => {
      if (this.msg && !this.el.contains(event.target) && !(this.trigger && this.trigger.contains(event.target))) {
        this.close({ focus: false });
      }
    });
    this.reposition = () => {
      if (this.msg) this.place();
    };
    window.addEventListener("resize", this.reposition);
    document.addEventListener("scroll", this.reposition, true);
  }

  get isOpen() {
    return this.msg !== null;
  }

  /** Open for `msg` under `trigger`, with the actions `can` allows; a second press closes. */
  toggle(trigger, msg, can) {
    if (this.msg && this.msg.key === msg.key) {
      this.close();
      return;
    }
    this.open(trigger, msg, can);
  }

  open(trigger, msg, can) {
    this.close({ focus: false });
    this.msg = msg;
    this.trigger = trigger;
    const items = [];
    if (can.react) {
      items.push(h("div", { class: "menu-reactions", role: "group", "aria-label": "React" },
        QUICK_REACTIONS.map((emoji) => {
          const mine = msg.myReactions.includes(emoji);
          return h("button", {
            type: "button",
            role: "menuitemcheckbox",
            "aria-checked": mine ? "true" : "false",
            "aria-label": mine ? `Take back ${emoji}` : `React with ${emoji}`,
            class: `menu-emoji${mine ? " mine" : ""}`,
            tabindex: "-1",
            dataset: { emoji },
            text: emoji,
            on: { click: () => this.pick(() => this.handlers.onReact(msg, emoji, !mine), { focus: true }) },
          });
        })));
    }
    // Reply and Edit move focus to the composer; Delete's dialog returns it to the button.
    const item = (label, action, { focus = false, cls = "" } = {}) => h("button", {
      type: "button", role: "menuitem", class: `menu-item ${cls}`, tabindex: "-1", text: label,
      on: { click: () => this.pick(action, { focus }) },
    });
    if (can.reply) items.push(item("Reply", () => this.handlers.onReply(msg)));
    if (can.edit) items.push(item("Edit", () => this.handlers.onEdit(msg)));
    if (can.remove) items.push(item("Delete", () => this.handlers.onDelete(msg), { focus: true, cls: "danger" }));
    this.el.replaceChildren(...items);
    this.el.hidden = false;
    trigger.setAttribute("aria-expanded", "true");
    this.place();
    const first = this.items()[0];
    if (first) first.focus();
  }

  /** Close; focus goes back to the message's button unless the next step takes it. */
  close({ focus = true } = {}) {
    if (!this.msg) return;
    const trigger = this.currentTrigger();
    this.msg = null;
    this.trigger = null;
    this.el.hidden = true;
    this.el.replaceChildren();
    if (trigger) {
      trigger.setAttribute("aria-expanded", "false");
      if (focus) trigger.focus();
    }
  }

  /** Run a picked action after closing, so it can move focus itself (composer, dialog). */
  pick(action, { focus }) {
    this.close({ focus });
    action();
  }

  /**
   * The list was redrawn: the message's button may be a new element. The menu stays open on
   * the new one, or closes when the message cannot be acted on any more (deleted meanwhile).
   */
  refresh(findTrigger) {
    if (!this.msg) return;
    const trigger = findTrigger(this.msg.key);
    if (!trigger) {
      this.close({ focus: false });
      return;
    }
    if (trigger !== this.trigger) {
      this.trigger = trigger;
      trigger.setAttribute("aria-expanded", "true");
      this.place();
    }
  }

  currentTrigger() {
    return this.trigger && this.trigger.isConnected ? this.trigger : null;
  }

  items() {
    return [...this.el.querySelectorAll('[role^="menuitem"]')];
  }

  onKey(event) {
    const items = this.items();
    const index = items.indexOf(document.activeElement);
    const go = (i) => {
      event.preventDefault();
      items[(i + items.length) % items.length].focus();
    };
    if (event.key === "ArrowDown" || event.key === "ArrowRight") go(index + 1);
    else if (event.key === "ArrowUp" || event.key === "ArrowLeft") go(index - 1);
    else if (event.key === "Home") go(0);
    else if (event.key === "End") go(items.length - 1);
    else if (event.key === "Escape" || event.key === "Tab") {
      event.preventDefault();
      this.close();
    }
  }

  /** Under the button (above it when there is no room), inside the window; a sheet when narrow. */
  place() {
    const trigger = this.currentTrigger();
    if (!trigger) {
      this.close({ focus: false });
      return;
    }
    const style = this.el.style;
    if (window.matchMedia(NARROW).matches) {
      style.top = style.left = "";
      return;
    }
    const rect = trigger.getBoundingClientRect();
    const { offsetWidth: width, offsetHeight: height } = this.el;
    let top = rect.bottom + GAP_PX;
    if (top + height > window.innerHeight - EDGE_PX) top = Math.max(EDGE_PX, rect.top - height - GAP_PX);
    const left = Math.min(Math.max(EDGE_PX, rect.right - width), window.innerWidth - width - EDGE_PX);
    style.top = `${Math.round(top)}px`;
    style.left = `${Math.round(left)}px`;
  }
}
