// sessionStorage keys shared by the pages.

/** A one-line message for the /auth page, set by the chat before it sends the user there. */
export const FLASH_KEY = "chat.flash";

/** The conversation open in this tab, reopened after a reload. */
export const OPEN_CHAT_KEY = "chat.open";

/** "polling" once a WebSocket failed in this tab: later page loads start with long-polling. */
export const TRANSPORT_KEY = "chat.transport";

/** The largest upload (bytes) a 413 of the server named in this tab: later files over it are
 * refused before they are sent. */
export const UPLOAD_LIMIT_KEY = "chat.uploadLimit";
