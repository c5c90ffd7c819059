// A people search box: type, pick a result (click, or arrow keys and Enter). Used for starting
// a chat, picking group members and adding members. Searching is the server's `search-user`
// (plain text: part of a name, or an exact email).

import { debounce, h, initial } from "../dom.js";

export class PeopleSearch {
  constructor({ input, results, search, exclude = () => new Set(), onPick, actionLabel = "Open chat with" }) {
    this.input = input;
    this.results = results;
    this.search = search;
    this.exclude = exclude;
    this.onPick = onPick;
    this.actionLabel = actionLabel;
    this.generation = 0;
    this.run = debounce(() => this.query(), 200);
    input.addEventListener("input", () => this.run());
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") {
        const first = this.results.querySelector("button");
        if (first) {
          event.preventDefault();
          first.focus();
        }
      } else if (event.key === "Escape") {
        this.reset();
      }
    });
    results.addEventListener("keydown", (event) => this.onResultsKey(event));
  }

  onResultsKey(event) {
    const buttons = [...this.results.querySelectorAll("button")];
    const index = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && index < buttons.length - 1) {
      event.preventDefault();
      buttons[index + 1].focus();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      (index > 0 ? buttons[index - 1] : this.input).focus();
    } else if (event.key === "Escape") {
      this.reset();
      this.input.focus();
    }
  }

  reset() {
    this.generation += 1;
    this.input.value = "";
    this.results.replaceChildren();
    this.results.hidden = true;
  }

  async query() {
    const text = this.input.value.trim();
    const generation = ++this.generation;
    if (!text) {
      this.results.replaceChildren();
      this.results.hidden = true;
      return;
    }
    let users;
    try {
      users = await this.search(text);
    } catch (error) {
      if (generation !== this.generation) return;
      this.show([h("li", { class: "search-empty", text: error.code === "offline" ? "Offline: search needs a connection." : "Search failed. Try again." })]);
      return;
    }
    if (generation !== this.generation) return; // a newer query is on its way
    const skip = this.exclude();
    const found = users.filter((u) => !skip.has(u._id));
    if (!found.length) {
      this.show([h("li", { class: "search-empty", text: "Nobody found." })]);
      return;
    }
    this.show(found.map((user) => h("li", {},
      h("button", {
        type: "button",
        class: "person-btn",
        "aria-label": `${this.actionLabel} ${user.Name}`,
        dataset: { userId: user._id },
        on: { click: () => this.pick(user) },
      }, h("span", { class: "avatar", "aria-hidden": "true" }, initial(user.Name)), h("span", { text: user.Name })))));
  }

  show(items) {
    this.results.replaceChildren(...items);
    this.results.hidden = false;
  }

  pick(user) {
    this.onPick(user);
  }
}
