// Small DOM and time helpers, so views can build markup without a framework or innerHTML
// (values from devices are untrusted text and must never be parsed as HTML).

/**
 * Create an element: h("a", {href: "#/x", class: "link"}, "text", child, [more]).
 * Attributes set to null, undefined or false are left out; `on<event>` functions become
 * listeners; `true` makes an empty (boolean) attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Append children (nested arrays, strings, nodes; null and false are skipped). */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replace all children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// --- time ---------------------------------------------------------------------------------

// Registration times come from the server's clock; relative times ("12 s ago") are computed
// against it, so a browser with a wrong clock still shows sensible ages.
let clockOffset = 0;

export function setServerTime(serverSeconds) {
  clockOffset = serverSeconds - Date.now() / 1000;
}

export function serverNow() {
  return Date.now() / 1000 + clockOffset;
}

/** "just now", "12 s ago", "in 4 min", "3 h ago"... */
export function relative(epochSeconds) {
  const delta = serverNow() - epochSeconds;
  const abs = Math.abs(delta);
  if (abs < 2) return "just now";
  const units = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
  const [size, name] = units.find(([s]) => abs >= s);
  const text = `${Math.floor(abs / size)} ${name}`;
  return delta >= 0 ? `${text} ago` : `in ${text}`;
}

export function absolute(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleString();
}

/** A <time> element whose text is kept relative by `refreshRelativeTimes`. */
export function timeAgo(epochSeconds) {
  const el = h("time", {
    datetime: new Date(epochSeconds * 1000).toISOString(),
    title: absolute(epochSeconds),
    "data-epoch": epochSeconds,
  }, relative(epochSeconds));
  return el;
}

/** Called on a timer: re-render every relative time on the page. */
export function refreshRelativeTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-epoch]")) {
    el.textContent = relative(Number(el.dataset.epoch));
  }
}

export function clockTime(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString();
}

/** Human duration for lifetimes: 86400 -> "1 d", 300 -> "5 min". */
export function duration(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0 && seconds >= 60) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** Run `fn` at most once per animation frame (cheap re-rendering for bursts of events). */
export function coalesce(fn) {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      fn();
    });
  };
}
