// The group panel: description, members with their roles, and what the viewer's role allows:
// admins add, remove and hand over admin rights and may delete the group; everyone may leave.
// The server enforces the rules (docs/protocol.md §5.3); the panel only hides what would fail.

import { $, h, setAlert } from "../dom.js";
import { features } from "../features.js";
import { PeopleSearch } from "./search.js";

export class GroupPanel {
  constructor(store, actions) {
    this.store = store;
    this.actions = actions; // add(conv, user), kick(conv, id, name), handOver(conv, id, name), leave(conv), remove(conv), searchUsers(text)
    this.panel = $("#group-panel");
    this.button = $("#group-info-btn");
    this.error = $("#group-panel-error");
    this.isOpen = false;
    this.search = new PeopleSearch({
      input: $("#add-member-search"),
      results: $("#add-member-results"),
      search: (text) => actions.searchUsers(text),
      exclude: () => new Set(this.conv() ? this.conv().members.keys() : []),
      actionLabel: "Add to the group:",
      onPick: async (user) => {
        this.search.reset();
        await this.run(() => this.actions.add(this.conv(), user));
        $("#add-member-search").focus();
      },
    });
    $("#group-panel-close").addEventListener("click", () => this.close({ returnFocus: true }));
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close({ returnFocus: true });
    });
    $("#leave-group-btn").addEventListener("click", () => this.run(() => this.actions.leave(this.conv())));
    $("#delete-group-btn").addEventListener("click", () => this.run(() => this.actions.remove(this.conv())));
  }

  conv() {
    const conv = this.store.open;
    return conv && conv.kind === "group" ? conv : null;
  }

  async run(action) {
    setAlert(this.error, "");
    try {
      await action();
    } catch (error) {
      setAlert(this.error, error.code === "offline" ? "You are offline. Try again when connected." : error.message);
    }
  }

  toggle() {
    if (this.isOpen) this.close({ returnFocus: true });
    else this.open();
  }

  open() {
    if (!this.conv()) return;
    this.isOpen = true;
    setAlert(this.error, "");
    this.render();
    $("#group-panel-close").focus();
  }

  close({ returnFocus = false } = {}) {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.search.reset();
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    $("#layout").classList.remove("with-panel");
    if (returnFocus && !this.button.hidden) this.button.focus();
  }

  /** Presence changed: update the members' dots in place (a full render would move focus). */
  renderPresence() {
    if (!this.isOpen) return;
    for (const row of $("#member-list").querySelectorAll(".member")) {
      const fresh = features.presence.member(row.dataset.userId);
      const old = row.querySelector(".member-presence");
      if (old && fresh) old.replaceWith(fresh);
      else if (old) old.remove();
      else if (fresh) row.prepend(fresh);
    }
  }

  render() {
    const conv = this.conv();
    if (!conv) {
      this.close();
      return;
    }
    if (!this.isOpen) return;
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    $("#layout").classList.add("with-panel");
    const me = this.store.me.id;
    const admin = this.store.isAdmin(conv);
    const owner = conv.owner === me;
    $("#group-panel-name").textContent = conv.title;
    const description = $("#group-panel-description");
    description.textContent = conv.description;
    description.hidden = !conv.description;
    $("#add-member-section").hidden = !admin;
    $("#delete-group-btn").hidden = !admin;

    const rows = [...conv.members].map(([id, name]) => {
      const role = id === conv.owner ? "owner" : conv.admins.has(id) ? "admin" : null;
      const buttons = [];
      if (admin && id !== me) {
        // change-admin hands the caller's rights over: an owner makes a new owner, an admin
        // makes a member an admin; either way the caller steps down to member.
        if (owner || !role) {
          const label = owner ? "Make owner" : "Make admin";
          buttons.push(h("button", {
            type: "button",
            class: "btn btn-small",
            "aria-label": `${label}: ${name}`,
            text: label,
            on: { click: () => this.run(() => this.actions.handOver(conv, id, name, owner)) },
          }));
        }
        if (id !== conv.owner) {
          buttons.push(h("button", {
            type: "button",
            class: "btn btn-small btn-danger",
            "aria-label": `Remove ${name} from the group`,
            text: "Remove",
            on: { click: () => this.run(() => this.actions.kick(conv, id, name)) },
          }));
        }
      }
      return h("li", { class: "member", dataset: { userId: id } },
        features.presence.member(id),
        h("span", { class: "member-name", text: id === me ? `${name} (you)` : name }),
        role ? h("span", { class: `role ${role}`, text: role === "owner" ? "Owner" : "Admin" }) : null,
        buttons.length ? h("span", { class: "member-actions" }, ...buttons) : null);
    });
    $("#member-list").replaceChildren(...rows);
  }
}
