// DOM helpers. Text is only ever set with textContent or text nodes: names and messages are
// never parsed as HTML, so a message like "<img onerror=...>" shows as those characters.

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/**
 * Create an element. `props`: `class`, `text` (textContent), `on` ({event: handler}), `dataset`,
 * and anything else as an attribute (`aria-*`, `type`, `hidden: true`...). A false or null
 * attribute is left out. Children: nodes, strings (as text), or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "on") for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  el.replaceChildren();
}

export function show(el, visible) {
  el.hidden = !visible;
}

/** The first letter of a name, for avatars (a grapheme would be nicer; this is enough). */
export function initial(name) {
  const trimmed = (name || "").trim();
  return trimmed ? Array.from(trimmed)[0].toUpperCase() : "?";
}

/** Show `message` in an alert element, or hide it when empty. */
export function setAlert(el, message) {
  el.textContent = message || "";
  el.hidden = !message;
}

/** Announce to screen readers through the page's polite live region. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  const line = document.createElement("p");
  line.textContent = message;
  region.append(line);
  while (region.childElementCount > 5) region.firstElementChild.remove();
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/**
 * Make `parent`'s children match `items` ([{key, sig, create}]) in order, reusing the element
 * of each key while its `sig` (a string of everything it shows) is unchanged. Elements are
 * moved only when out of place, so focus and scroll position survive most updates.
 */
export function reconcile(parent, items, cache) {
  const wanted = new Set(items.map((item) => item.key));
  for (const [key, entry] of cache) {
    if (!wanted.has(key)) {
      entry.el.remove();
      cache.delete(key);
    }
  }
  let cursor = parent.firstElementChild;
  for (const item of items) {
    let entry = cache.get(item.key);
    if (!entry || entry.sig !== item.sig) {
      const el = item.create();
      if (entry) entry.el.replaceWith(el);
      if (entry && cursor === entry.el) cursor = el;
      entry = { el, sig: item.sig };
      cache.set(item.key, entry);
    }
    if (entry.el === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      parent.insertBefore(entry.el, cursor);
    }
  }
}
