// LwM2M knowledge the views share: response codes, value display, typed value input,
// and the SenML records that queued-request results carry.

import { h } from "./dom.js";

// CoAP response codes a device answers with, and what they mean for the user.
const CODES = {
  "2.01": ["Created", ""],
  "2.02": ["Deleted", ""],
  "2.04": ["Changed", ""],
  "2.05": ["Content", ""],
  "2.31": ["Continue", ""],
  "4.00": ["Bad Request", "the device could not accept the request or its value"],
  "4.01": ["Unauthorized", "the device's access control denies this server"],
  "4.02": ["Bad Option", "the device does not understand an option of the request"],
  "4.03": ["Forbidden", "the device refuses this operation"],
  "4.04": ["Not Found", "the device has no such object, instance or resource"],
  "4.05": ["Method Not Allowed", "this operation is not allowed on this target"],
  "4.06": ["Not Acceptable", "the device cannot answer in the requested content format"],
  "4.08": ["Request Entity Incomplete", "a block-wise transfer was interrupted"],
  "4.09": ["Conflict", "the request conflicts with the device's state"],
  "4.13": ["Request Entity Too Large", "the value is too large for the device"],
  "4.15": ["Unsupported Content-Format", "the device does not support the format used"],
  "5.00": ["Internal Server Error", "the device failed while handling the request"],
  "5.01": ["Not Implemented", "the device does not implement this operation"],
  "5.03": ["Service Unavailable", "the device is busy; try again later"],
};

/** "4.04 Not Found: the device has no such object, instance or resource". */
export function describeCode(code, diagnostic) {
  const [name, meaning] = CODES[code] ?? ["", ""];
  let text = name ? `${code} ${name}` : code;
  if (meaning) text += `: ${meaning}`;
  if (diagnostic) text += ` (device says: ${diagnostic})`;
  return text;
}

export const CONTENT_FORMATS = {
  0: "text", 40: "link", 42: "opaque", 60: "cbor", 110: "senml-json", 112: "senml-cbor",
  11542: "tlv", 11543: "lwm2m-json", 11544: "lwm2m-cbor",
};

const NUMERIC = new Set(["Integer", "Unsigned Integer", "Float"]);

export function isNumericType(type) {
  return NUMERIC.has(type);
}

export const canRead = (r) => r.operations.includes("R");
export const canWrite = (r) => r.operations.includes("W");
export const canExecute = (r) => r.operations.includes("E");

// --- display --------------------------------------------------------------------------------

// --- Opaque values --------------------------------------------------------------------------
// The API's one JSON form for bytes: {"base64": "..."} in reads, events and writes.

export function isOpaque(value) {
  return value !== null && typeof value === "object" && typeof value.base64 === "string";
}

/** The bytes of a {"base64": ...} value (either alphabet, padding optional). */
export function opaqueBytes(value) {
  const standard = value.base64.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(standard + "=".repeat((4 - (standard.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** {"base64": ...} from hex text ("41 4e", "0x414e"); throws with what to fix. */
export function opaqueFromHex(text) {
  const hex = text.replace(/^0x/i, "").replace(/[\s:]/g, "");
  if (hex.length % 2 || /[^0-9a-f]/i.test(hex)) {
    throw new Error("Enter the bytes in hex, two digits each (e.g. 41 4e), or choose a file.");
  }
  const binary = hex.match(/../g)?.map((b) => String.fromCharCode(parseInt(b, 16))).join("") ?? "";
  return { base64: btoa(binary) };
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** One scalar as text, by LwM2M type (the API sends times as epoch seconds, opaque as
 * {"base64": ...}, shown here as hex). */
export function formatScalar(value, type) {
  if (value === null || value === undefined) return "—";
  if (type === "Time" && typeof value === "number") {
    return new Date(value * 1000).toISOString().replace(".000Z", "Z");
  }
  if (isOpaque(value)) {
    const bytes = opaqueBytes(value);
    if (!bytes.length) return "(empty)";
    const hex = bytesToHex(bytes.subarray(0, 32));
    return `0x${hex}${bytes.length > 32 ? "…" : ""} (${plural(bytes.length, "byte")})`;
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/**
 * The display of one resource from API `values` ({path, type, units, value}): a single value
 * with its units, or "#0: 1, #1: 5" for the instances of a multiple resource.
 */
export function formatResource(resourcePath, values) {
  const own = values.filter((v) => v.path === resourcePath || v.path.startsWith(`${resourcePath}/`));
  if (own.length === 0) return null;
  const units = own[0].units ? ` ${own[0].units}` : "";
  if (own.length === 1 && own[0].path === resourcePath) {
    return `${formatScalar(own[0].value, own[0].type)}${units}`;
  }
  return own.map((v) => `#${v.path.slice(resourcePath.length + 1)}: ${formatScalar(v.value, v.type)}`)
    .join(", ") + units;
}

/** The resource path ("/3/0/6") a value path ("/3/0/6/1") belongs to. */
export function resourcePathOf(valuePath) {
  return valuePath.split("/").slice(0, 4).join("/");
}

// --- typed input --------------------------------------------------------------------------

/**
 * An input for writing `resource` (from /objects), pre-filled with `current` (a plain value
 * or, for multiple resources, {instance: value}). Returns {element, read} where read()
 * returns the value as JSON text (or, for a file chosen for an Opaque resource, the File,
 * which is uploaded as it is) or throws an Error whose message tells the user what to fix.
 * Returns null for Objlnk, whose "3:0" form the API does not take in writes.
 */
export function valueEditor(resource, current, id) {
  if (resource.multiple) return jsonEditor(current, id);
  switch (resource.type) {
    case "Opaque": return opaqueEditor(current, id);
    case "Boolean": return booleanEditor(current, id);
    case "Integer": return integerEditor(current, id, false);
    case "Unsigned Integer": return integerEditor(current, id, true);
    case "Float": return floatEditor(current, id);
    case "Time": return timeEditor(current, id);
    case "String": case "Corelnk": return stringEditor(current, id);
    default: return null;
  }
}

function input(attrs) {
  return h("input", { class: "input", "data-testid": "write-input", ...attrs });
}

function stringEditor(current, id) {
  const el = input({ id, type: "text", value: current ?? "" });
  return { element: el, read: () => JSON.stringify(el.value) };
}

function integerEditor(current, id, unsigned) {
  const el = input({ id, type: "number", step: 1, min: unsigned ? 0 : null, value: current ?? "" });
  return {
    element: el,
    read() {
      const text = el.value.trim();
      if (!text) throw new Error("Enter a whole number.");
      // Sent as typed: JSON numbers beyond 2^53 would lose digits through JS numbers.
      if (!/^-?\d+$/.test(text)) return JSON.stringify(Number(text));
      return text.replace(/^(-?)0+(?=\d)/, "$1");
    },
  };
}

function floatEditor(current, id) {
  const el = input({ id, type: "number", step: "any", value: current ?? "" });
  return {
    element: el,
    read() {
      const number = Number(el.value.trim());
      if (el.value.trim() === "" || !Number.isFinite(number)) throw new Error("Enter a number.");
      return JSON.stringify(number);
    },
  };
}

function booleanEditor(current, id) {
  const el = h("select", { id, class: "input", "data-testid": "write-input" },
    h("option", { value: "true", selected: current === true }, "true"),
    h("option", { value: "false", selected: current === false }, "false"));
  return { element: el, read: () => el.value };
}

function timeEditor(current, id) {
  const el = input({
    id, type: "text", value: current ?? "", placeholder: "epoch seconds or 2026-05-01T12:00:00Z",
  });
  const now = h("button", {
    type: "button", class: "btn btn-small",
    onclick: () => { el.value = String(Math.floor(Date.now() / 1000)); },
  }, "Now");
  return {
    element: h("span", { class: "inline" }, el, now),
    read() {
      const text = el.value.trim();
      if (/^-?\d+$/.test(text)) return text;
      const ms = Date.parse(text);
      if (Number.isNaN(ms)) {
        throw new Error("Enter epoch seconds or a date and time like 2026-05-01T12:00:00Z.");
      }
      return String(Math.floor(ms / 1000));
    },
  };
}

function opaqueEditor(current, id) {
  const known = isOpaque(current) ? opaqueBytes(current) : null;
  const text = input({
    id, type: "text", class: "input input-wide", placeholder: "hex bytes, e.g. 41 4e",
    value: known && known.length <= 256 ? bytesToHex(known) : "",
  });
  const file = h("input", { type: "file", class: "input", "data-testid": "write-file",
    "aria-label": "or the bytes of a file" });
  return {
    element: h("span", { class: "inline" }, text, " or ", file),
    read() {
      if (file.files?.length) return file.files[0];
      return JSON.stringify(opaqueFromHex(text.value));
    },
  };
}

function jsonEditor(current, id) {
  const el = input({
    id, type: "text", class: "input input-wide",
    value: current && typeof current === "object" ? JSON.stringify(current) : "",
    placeholder: '{"0": value, "1": value}',
  });
  return {
    element: el,
    read() {
      let parsed;
      try {
        parsed = JSON.parse(el.value);
      } catch {
        throw new Error('A multiple resource takes JSON like {"0": 1, "1": 5}.');
      }
      if (parsed === null || typeof parsed !== "object") {
        throw new Error('A multiple resource takes JSON like {"0": 1, "1": 5}.');
      }
      return el.value.trim();
    },
  };
}

// --- SenML (queued-request results) ---------------------------------------------------------

/**
 * Resolve SenML JSON records into [{path, value}] (base names applied, opaque as
 * {"base64": ...}), the shape the rest of the UI uses for values.
 */
export function senmlValues(records) {
  const out = [];
  let base = "";
  for (const r of records ?? []) {
    if (typeof r.bn === "string") base = r.bn;
    const path = base + (r.n ?? "");
    let value;
    if ("v" in r) value = r.v;
    else if ("vs" in r) value = r.vs;
    else if ("vb" in r) value = r.vb;
    else if ("vlo" in r) value = r.vlo;
    else if ("vd" in r) value = { base64: r.vd };
    else continue;
    out.push({ path, value });
  }
  return out;
}
