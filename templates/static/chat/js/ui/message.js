// One message of the open conversation: the only place a message is drawn. conversation.js
// reconciles the list with `messageSig` (everything a message shows, so an element is rebuilt
// exactly when what it shows changed) and `renderMessage`.
//
// A message shows: the sender (groups), the quote it replies to, its body, a foot (time,
// "edited", receipt status, retry), its reactions as toggle buttons, and a "Message actions"
// button that opens messagemenu.js (react, reply, edit, delete). The button is a real button
// in the tab order, visible on hover and on focus, so everything works from the keyboard.
//
// Bodies: `messageBody` draws text; kinds other than "text" go to features.media.render()
// (ui/media.js: pictures, video, audio, file cards, large emoji). A deleted or hidden message
// is a tombstone whatever its kind ("Photo deleted").

import { h } from "../dom.js";
import { features } from "../features.js";
import { GROUP, isMedia, kindWord, removedText } from "../protocol.js";
import { clock, full } from "../time.js";

/** What a message may be asked to do (its actions menu). */
export function permissions(msg, conv, store) {
  const mine = msg.senderId === store.me.id;
  const live = Boolean(msg.id) && msg.state === "sent" && msg.kind !== "removed" && msg.kind !== "system";
  return {
    any: live,
    react: live,
    reply: live,
    // Text, or a media message's caption (§15.3); an emoji message stays as it is.
    edit: live && mine && (msg.kind === "text" || isMedia(msg.kind)),
    // The sender, and in groups the owner and the admins (§13).
    remove: live && (mine || (conv.kind === GROUP && store.isAdmin(conv))),
  };
}

export function messageSig(msg, status, can) {
  const quote = msg.replyTo ? [msg.replyTo.id, msg.replyTo.sender, msg.replyTo.excerpt, msg.replyTo.deleted].join("\u0001") : "";
  const reactions = msg.reactions.map((r) => `${r.emoji}:${r.count}`).join(",");
  const file = msg.attachment ? [msg.attachment.id, msg.attachment.url].join("\u0001") : "";
  return [
    msg.kind, msg.state, msg.content, msg.ts, status.text, msg.senderName, msg.editedAt || "", quote,
    reactions, msg.myReactions.join(","), can.any, can.edit, can.remove, msg.caption ?? "", file, msg.was || "",
  ].join("\u0000");
}

/**
 * ctx: {me, status, can, onRetry(msg), onActions(button, msg), onToggleReaction(msg, emoji),
 * onQuote(quote)}.
 */
export function renderMessage(msg, conv, ctx) {
  if (msg.kind === "removed") {
    return h("li", { class: `msg removed ${msg.senderId === ctx.me.id ? "mine" : "theirs"}`, tabindex: "-1", dataset: dataset(msg) },
      h("div", { class: "bubble" }, h("p", { class: "text", text: msg.content })));
  }
  if (msg.kind === "system") {
    return h("li", { class: "msg system", tabindex: "-1", dataset: dataset(msg) },
      h("div", { class: "bubble" }, h("p", { class: "text", text: msg.content }),
        h("time", { class: "visually-hidden", datetime: msg.ts, text: clock(msg.ts) })));
  }
  const mine = msg.senderId === ctx.me.id;
  const showSender = conv.kind === GROUP && !mine;
  const { status } = ctx;
  const retry = msg.state === "failed"
    ? h("button", { type: "button", class: "btn-link", text: "Retry", on: { click: () => ctx.onRetry(msg) } })
    : null;
  const edited = msg.editedAt
    ? h("span", { class: "edited", title: `Edited ${full(msg.editedAt)}`, text: "edited" })
    : null;
  const actions = ctx.can.any
    ? h("button", {
      type: "button",
      class: "msg-actions-btn",
      "aria-label": `Message actions: ${mine ? "your message" : `message from ${msg.senderName}`}`,
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      title: "Message actions",
      text: "⋯",
      on: { click: (event) => ctx.onActions(event.currentTarget, msg) },
    })
    : null;
  return h(
    "li",
    {
      class: `msg ${mine ? "mine" : "theirs"}${msg.state !== "sent" ? ` ${msg.state}` : ""}`,
      tabindex: "-1",
      dataset: dataset(msg),
    },
    h("div", { class: "msg-row" },
      h("div", { class: "bubble" },
        showSender ? h("span", { class: "sender", text: msg.senderName }) : h("span", { class: "visually-hidden", text: mine ? "You:" : `${msg.senderName}:` }),
        msg.replyTo ? quote(msg.replyTo, ctx) : null,
        messageBody(msg, conv),
        h("div", { class: "foot" },
          msg.ts ? h("time", { datetime: msg.ts, title: full(msg.ts), text: clock(msg.ts) }) : null,
          edited,
          status.text ? h("span", { class: `status ${status.cls}`, title: status.title || null, text: status.text }) : null,
          retry)),
      actions),
    reactions(msg, ctx),
  );
}

function dataset(msg) {
  return { seq: msg.seq ? String(msg.seq) : "", key: msg.key, id: msg.id || "", state: msg.state, kind: msg.kind };
}

/** A message's body: its text, or what features.media draws for other kinds. */
export function messageBody(msg, conv) {
  const media = msg.kind === "text" ? null : features.media.render(msg, conv);
  return media || h("p", { class: "text", text: msg.content });
}

/** The quoted message above a reply; a button that shows the original. */
function quote(q, ctx) {
  const who = q.sender || "Someone";
  const text = q.deleted ? removedText(q.kind) : q.excerpt || kindWord(q.kind);
  return h("button", {
    type: "button",
    class: `quote${q.deleted ? " deleted" : ""}`,
    "aria-label": `In reply to ${who}: ${text}. Show that message.`,
    dataset: { replyTo: q.id },
    on: { click: () => ctx.onQuote(q) },
  },
  h("span", { class: "quote-sender", text: who }),
  h("span", { class: "quote-excerpt", text }));
}

/** Reaction counts as toggle buttons: pressing one adds or takes back our own. */
function reactions(msg, ctx) {
  if (!msg.reactions.length) return null;
  return h("ul", { class: "reactions", "aria-label": "Reactions" },
    msg.reactions.map((r) => {
      const mine = msg.myReactions.includes(r.emoji);
      const label = `${r.emoji} ${r.count} ${r.count === 1 ? "reaction" : "reactions"}${mine ? ", including yours" : ""}`;
      return h("li", {},
        h("button", {
          type: "button",
          class: `reaction${mine ? " mine" : ""}`,
          "aria-pressed": mine ? "true" : "false",
          "aria-label": label,
          title: mine ? `Take back your ${r.emoji}` : `React with ${r.emoji}`,
          disabled: ctx.can.react ? null : true,
          dataset: { emoji: r.emoji },
          on: { click: () => ctx.onToggleReaction(msg, r.emoji) },
        },
        h("span", { class: "emoji", "aria-hidden": "true", text: r.emoji }),
        h("span", { class: "count", "aria-hidden": "true", text: String(r.count) })));
    }));
}
