// The sidebar's conversation list: notes to self, direct chats and groups, newest activity
// first, with unread badges and the time of the last message.

import { h, initial, reconcile } from "../dom.js";
import { features } from "../features.js";
import { DIRECT, GROUP, SELF } from "../protocol.js";
import { listLabel, full } from "../time.js";

const KIND_LABEL = { [SELF]: "Private", [DIRECT]: "Direct chat", [GROUP]: "Group" };

export function conversationTitle(conv) {
  return conv.kind === SELF ? "Notes to self" : conv.title || "(unnamed)";
}

export function avatar(conv) {
  const el = h("span", { class: `avatar ${conv.kind === GROUP ? "group" : conv.kind === SELF ? "self" : ""}`, "aria-hidden": "true" },
    conv.kind === SELF ? "✎" : initial(conv.title));
  const decoration = features.presence.avatarDecoration(conv);
  if (decoration) el.append(decoration);
  return el;
}

export class ChatList {
  constructor(listEl, store, { onOpen }) {
    this.listEl = listEl;
    this.store = store;
    this.onOpen = onOpen;
    this.cache = new Map();
  }

  render() {
    const now = new Date();
    const items = this.store.sorted().map((conv) => {
      const current = conv.id === this.store.openId;
      const time = listLabel(conv.lastChat, now);
      const live = { presence: features.presence.label(conv), typing: features.typing.hint(conv) };
      const sig = [conv.kind, conv.title, conv.unread, time, current, live.presence, live.typing].join("\u0000");
      return { key: conv.id, sig, create: () => this.item(conv, current, time, live) };
    });
    reconcile(this.listEl, items, this.cache);
  }

  item(conv, current, time, live) {
    const title = conversationTitle(conv);
    const label = [title, KIND_LABEL[conv.kind], live.presence, live.typing, conv.unread ? `${conv.unread} unread` : "", time ? `last message ${time}` : ""]
      .filter(Boolean)
      .join(", ");
    const button = h(
      "button",
      {
        type: "button",
        class: `chat-item${conv.unread ? " has-unread" : ""}`,
        "aria-current": current ? "true" : false,
        "aria-label": label,
        dataset: { convId: conv.id, kind: conv.kind },
        on: { click: () => this.onOpen(conv.id) },
      },
      avatar(conv),
      h("span", { class: "chat-main" },
        h("span", { class: "name", text: title }),
        live.typing
          ? h("span", { class: "sub typing-hint", text: live.typing })
          : h("span", { class: "sub", text: KIND_LABEL[conv.kind] })),
      h("span", { class: "chat-side" },
        time ? h("time", { class: "chat-time", datetime: conv.lastChat, title: full(conv.lastChat), text: time }) : null,
        conv.unread ? h("span", { class: "badge", dataset: { unread: String(conv.unread) }, text: conv.unread > 99 ? "99+" : String(conv.unread) }) : null),
    );
    return h("li", {}, button);
  }
}
