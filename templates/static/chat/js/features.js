// Extension points for what this client does not do yet: typing indicators, presence,
// delivered receipts, media messages, and editing or deleting one's own messages. Each hook is
// a no-op today; app.js and the views already call them where the feature belongs, so adding
// one means filling in its hooks here and listening to its events in `attach(conn, store, ui)`,
// not rewiring the client. docs/protocol.md §11 describes the server side as it lands:
//
// - typing:    onInput -> emit `typing` {ChatId} at most every couple of seconds, onIdle (sent,
//              box cleared, chat left) -> `stop-typing`; render incoming `typing` {ChatId,
//              UserId, UserName, ExpiresIn} / `stop-typing` into ui.typing (the #typing live
//              region under the messages), dropping an indicator after ExpiresIn seconds.
// - presence:  on connect `fetch-presence` {UserIds} for the direct chats' partners, then
//              `presence` {UserId, Online, State, LastSeen}; avatarDecoration() returns the dot,
//              subtitle() "online" / "last seen ..."; `presence-state` {State: "background"}
//              on visibilitychange.
// - receipts:  `message-delivered` for "delivered" ticks between "Sent" and "Read"; `fetch-seen-by`
//              for a group message's reader list. (Read receipts and the `unread` event that
//              syncs badges across tabs are handled in app.js already.)
// - media:     composerButton() returns an attach button; render(msg) draws a message whose kind
//              is not "text" (image preview, file link) from the server's own media URLs, never
//              from HTML in the message.
// - edits:     actions(msg) returns edit/delete buttons for one's own messages; their events
//              replace a message by Seq in the store (store.blank() already does the deleted
//              case for moderator deletions: `message-deleted`).
// - resync:    after a reconnect app.js takes the greeting's lists and refetches the open chat's
//              newest page; a "what changed since Seq N" event would replace that in ready().

export const features = {
  /** Called once the connection and the store exist. */
  attach(/* conn, store, ui */) {},

  typing: {
    onInput(/* conv */) {},
    onIdle(/* conv */) {},
    onOpen(/* conv */) {},
  },

  presence: {
    /** An element to put on a conversation's avatar (null: nothing). */
    avatarDecoration(/* conv */) {
      return null;
    },
    /** The header's subtitle for a direct chat (null: the default). */
    subtitle(/* conv */) {
      return null;
    },
  },

  media: {
    /** A button for the composer (null: none). */
    composerButton(/* conv */) {
      return null;
    },
    /** The body of a message of a kind the client does not know (null: shown as text). */
    render(/* msg, conv */) {
      return null;
    },
  },

  edits: {
    /** Buttons for a message (edit, delete...); [] today. */
    actions(/* msg, conv */) {
      return [];
    },
  },
};
