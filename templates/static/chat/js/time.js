// Timestamps arrive as UTC ISO-8601 strings; they are shown in the browser's own time zone.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const longDay = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

export function parse(iso) {
  const date = iso ? new Date(iso) : null;
  return date && !Number.isNaN(date.getTime()) ? date : null;
}

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/** Short "last activity" label for the chat list: a time today, a weekday this week, else a date. */
export function listLabel(iso, now = new Date()) {
  const date = parse(iso);
  if (!date) return "";
  const days = Math.round((startOfDay(now) - startOfDay(date)) / 86400000);
  if (days <= 0) return timeFormat.format(date);
  if (days < 7) return dayFormat.format(date);
  return dateFormat.format(date);
}

export function clock(iso) {
  const date = parse(iso);
  return date ? timeFormat.format(date) : "";
}

export function full(iso) {
  const date = parse(iso);
  return date ? fullFormat.format(date) : "";
}

export function dayKey(iso) {
  const date = parse(iso);
  return date ? startOfDay(date) : 0;
}

export function dayLabel(iso, now = new Date()) {
  const date = parse(iso);
  if (!date) return "";
  const days = Math.round((startOfDay(now) - startOfDay(date)) / 86400000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return longDay.format(date);
}
