// Modal dialogs (native <dialog>: focus is trapped, Escape closes, focus returns on close).

import { $, h, setAlert } from "../dom.js";
import { PeopleSearch } from "./search.js";

/** Ask for confirmation; resolves true when confirmed. */
export function confirmDialog({ title, text, confirmLabel = "OK", danger = false }) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  const ok = $("#confirm-ok");
  ok.textContent = confirmLabel;
  ok.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}

/** The "New group" dialog: name, description, members picked with a people search. */
export class NewGroupDialog {
  constructor({ searchUsers, me, onCreate }) {
    this.dialog = $("#new-group-dialog");
    this.form = $("#new-group-form");
    this.error = $("#new-group-error");
    this.chips = $("#group-member-chips");
    this.selected = new Map();
    this.onCreate = onCreate;
    this.search = new PeopleSearch({
      input: $("#group-member-search"),
      results: $("#group-member-results"),
      search: searchUsers,
      exclude: () => new Set([me().id, ...this.selected.keys()]),
      actionLabel: "Add to the group:",
      onPick: (user) => {
        this.selected.set(user._id, user.Name);
        this.search.reset();
        this.renderChips();
        $("#group-member-search").focus();
      },
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("#new-group-cancel").addEventListener("click", () => this.dialog.close());
  }

  open() {
    this.form.reset();
    this.selected.clear();
    this.search.reset();
    this.renderChips();
    setAlert(this.error, "");
    $("#group-name").removeAttribute("aria-invalid");
    this.dialog.showModal();
    $("#group-name").focus();
  }

  renderChips() {
    this.chips.replaceChildren(...[...this.selected].map(([id, name]) => h("li", { class: "chip" },
      h("span", { text: name }),
      h("button", {
        type: "button",
        "aria-label": `Remove ${name}`,
        text: "×",
        on: { click: () => { this.selected.delete(id); this.renderChips(); $("#group-member-search").focus(); } },
      }))));
  }

  async submit() {
    const name = $("#group-name").value.trim();
    if (!name) {
      $("#group-name").setAttribute("aria-invalid", "true");
      setAlert(this.error, "Give the group a name.");
      $("#group-name").focus();
      return;
    }
    const submit = $("#new-group-submit");
    submit.disabled = true;
    try {
      await this.onCreate({ name, description: $("#group-description").value.trim(), members: [...this.selected.keys()] });
      this.dialog.close();
    } catch (error) {
      setAlert(this.error, error.code === "offline" ? "You are offline. Try again when connected." : error.message);
    } finally {
      submit.disabled = false;
    }
  }
}
