// The device list: every registration, kept current by the live event stream.

import { explainError, getRegistration, listEndDevices, listRegistrations } from "../api.js";
import { coalesce, fill, h, timeAgo } from "../dom.js";
import { subscribe } from "../events.js";

const PAGE = 1000; // the API's largest page; beyond it the filter asks the server

/** The badge for a registration: online, or awake / sleeping for queue-mode devices. */
export function statusBadge(reg) {
  if (!reg) return h("span", { class: "badge badge-gone", "data-testid": "status" }, "not registered");
  if (!reg.queue_mode) {
    return h("span", { class: "badge badge-online", "data-testid": "status",
      title: "Registered; requests are sent right away" }, "online");
  }
  return reg.awake
    ? h("span", { class: "badge badge-awake", "data-testid": "status",
      title: "Queue mode, reachable now" }, "awake")
    : h("span", { class: "badge badge-sleeping", "data-testid": "status",
      title: "Queue mode, sleeping: requests wait until it wakes" }, "sleeping");
}

export function mountDevices(root, app) {
  const devices = new Map(); // endpoint -> registration (+ lastSeen, rev)
  const rows = new Map(); // endpoint -> {rev, tr}: rows are rebuilt only when data changed
  const highlight = new Set(); // endpoints that just registered
  const dirty = new Set(); // endpoints to re-fetch after events
  // Gateways: which are unfolded, and the end devices shown under them (gateway -> list).
  const unfolded = new Set();
  const endDevices = new Map();
  const staleGateways = new Set(); // unfolded gateways whose end devices changed
  let rev = 0;
  let total = 0;
  let filter = "";
  let loaded = false;

  const count = h("span", { class: "count", "data-testid": "device-count" });
  const search = h("input", {
    type: "search", class: "input", id: "device-filter", "data-testid": "device-filter",
    placeholder: "Filter by endpoint, address, binding…", autocomplete: "off",
    oninput: () => { filter = search.value.trim(); onFilter(); },
  });
  const note = h("p", { class: "muted", hidden: true, "data-testid": "device-note" });
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true });
  const body = h("tbody", {});
  const table = h("table", { class: "table devices", "data-testid": "device-table" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Endpoint"), h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col", class: "hide-narrow" }, "LwM2M"),
      h("th", { scope: "col", class: "hide-narrow" }, "Binding"),
      h("th", { scope: "col", class: "hide-narrow" }, "Address"),
      h("th", { scope: "col" }, "Last seen"),
      h("th", { scope: "col", class: "hide-narrow" }, "Registered"))),
    body);
  const empty = h("div", { class: "empty", "data-testid": "devices-empty", hidden: true });

  fill(root, h("section", { class: "page", "aria-labelledby": "devices-title" },
    h("div", { class: "page-head" },
      h("h1", { id: "devices-title" }, "Devices ", count),
      h("label", { class: "visually-hidden", for: "device-filter" }, "Filter devices"),
      search),
    error, note, h("div", { class: "table-wrap" }, table), empty));

  const render = coalesce(() => {
    const needle = filter.toLowerCase();
    const shown = [...devices.values()]
      .filter((r) => !needle || [r.endpoint, r.address, r.binding, r.lwm2m_version]
        .some((f) => String(f).toLowerCase().includes(needle)))
      .sort((a, b) => a.endpoint.localeCompare(b.endpoint));
    reconcile(shown.flatMap((reg) => [rowFor(reg), ...childRows(reg)]));
    count.textContent = String(devices.size);
    table.hidden = shown.length === 0;
    empty.hidden = !loaded || shown.length > 0;
    fill(empty, devices.size === 0 ? emptyHelp(app.info) : h("p", {}, `No device matches “${filter}”.`));
    note.hidden = total <= devices.size;
    note.textContent = `Showing ${devices.size} of ${total} registrations. `
      + "Type the start of an endpoint name to search them all.";
  });

  function rowFor(reg) {
    const cached = rows.get(reg.endpoint);
    if (cached && cached.rev === reg.rev) return cached.tr;
    const tr = row(reg);
    rows.set(reg.endpoint, { rev: reg.rev, tr });
    if (highlight.delete(reg.endpoint)) {
      const color = getComputedStyle(document.documentElement).getPropertyValue("--highlight");
      tr.animate([{ backgroundColor: color }, { backgroundColor: "transparent" }],
        { duration: 2500, easing: "ease-out" });
    }
    return tr;
  }

  /** Put `trs` in the table in order, moving only what moved (keeps keyboard focus). */
  function reconcile(trs) {
    let cursor = body.firstChild;
    for (const tr of trs) {
      if (tr === cursor) cursor = cursor.nextSibling;
      else body.insertBefore(tr, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    for (const ep of rows.keys()) {
      if (!devices.has(ep) && !isShownEndDevice(ep)) rows.delete(ep);
    }
  }

  function isShownEndDevice(ep) {
    const cut = ep.lastIndexOf("/");
    const gw = cut < 0 ? null : ep.slice(0, cut);
    return gw !== null && unfolded.has(gw)
      && (endDevices.get(gw) ?? []).some((d) => d.endpoint === ep);
  }

  /** The rows of a gateway's end devices, when it is unfolded. */
  function childRows(reg) {
    if (!unfolded.has(reg.endpoint)) return [];
    return (endDevices.get(reg.endpoint) ?? []).map((child) => {
      const cached = rows.get(child.endpoint);
      if (cached && cached.rev === child.rev) return cached.tr;
      const tr = endDeviceRow(child);
      rows.set(child.endpoint, { rev: child.rev, tr });
      return tr;
    });
  }

  function endDeviceRow(reg) {
    const href = `#/devices/${encodeURIComponent(reg.gateway)}/${encodeURIComponent(reg.prefix)}`;
    return h("tr", { class: "end-device", "data-testid": "end-device-row",
      "data-endpoint": reg.endpoint, "data-gateway": reg.gateway },
    h("th", { scope: "row" }, h("span", { class: "end-device-branch", "aria-hidden": "true" }, "└ "),
      h("a", { href, "data-testid": "end-device-link" }, reg.prefix),
      h("span", { class: "muted end-device-id" }, ` ${reg.device_id ?? ""}`)),
    h("td", {}, statusBadge(reg)),
    h("td", { class: "hide-narrow" }, reg.lwm2m_version),
    h("td", { class: "hide-narrow" }, h("code", {}, reg.binding + (reg.queue_mode ? " Q" : ""))),
    h("td", { class: "hide-narrow mono" }, `via ${reg.gateway}`),
    h("td", {}, timeAgo(reg.updated_at)),
    h("td", { class: "hide-narrow" }, timeAgo(reg.registered_at)));
  }

  async function loadEndDevices(gateway) {
    try {
      const { data } = await listEndDevices(gateway, { limit: PAGE });
      endDevices.set(gateway, data.items.map((d) => ({ ...d, rev: ++rev })));
    } catch (e) {
      endDevices.set(gateway, []);
      if (e.status !== 404) {
        error.textContent = `Could not load the end devices of ${gateway}. ${explainError(e)}`;
        error.hidden = false;
      }
    }
    const reg = devices.get(gateway);
    if (reg) reg.rev = ++rev; // its toggle shows the new count
    render();
  }

  function toggle(gateway) {
    if (unfolded.has(gateway)) unfolded.delete(gateway);
    else {
      unfolded.add(gateway);
      loadEndDevices(gateway);
    }
    const reg = devices.get(gateway);
    if (reg) reg.rev = ++rev;
    render();
  }

  function row(reg) {
    const link = h("a", { href: `#/devices/${encodeURIComponent(reg.endpoint)}`,
      "data-testid": "device-link" }, reg.endpoint);
    const open = unfolded.has(reg.endpoint);
    const fold = reg.end_devices === null || reg.end_devices === undefined ? null
      : h("button", { type: "button", class: "btn btn-quiet end-devices-toggle",
        "data-testid": "end-devices-toggle", "aria-expanded": String(open),
        title: "End devices behind this gateway (Object 25)",
        onclick: () => toggle(reg.endpoint) },
      `${open ? "▾" : "▸"} ${reg.end_devices} end device${reg.end_devices === 1 ? "" : "s"}`);
    return h("tr", { "data-testid": "device-row", "data-endpoint": reg.endpoint },
    h("th", { scope: "row" }, link, fold ? " " : null, fold),
    h("td", {}, statusBadge(reg)),
    h("td", { class: "hide-narrow" }, reg.lwm2m_version),
    h("td", { class: "hide-narrow" }, h("code", {}, reg.binding + (reg.queue_mode ? " Q" : ""))),
    h("td", { class: "hide-narrow mono" }, reg.address),
    h("td", {}, timeAgo(reg.lastSeen)),
    h("td", { class: "hide-narrow" }, timeAgo(reg.registered_at)));
  }

  function remember(reg) {
    const before = devices.get(reg.endpoint);
    const lastSeen = Math.max(reg.updated_at, before?.lastSeen ?? 0);
    devices.set(reg.endpoint, { ...reg, lastSeen, rev: ++rev });
  }

  async function load() {
    try {
      const query = { limit: PAGE };
      // Past one page, filtering happens on the server (endpoint prefix match).
      if (filter && total > PAGE) query.endpoint = `${filter}*`;
      const { data } = await listRegistrations(query);
      devices.clear();
      for (const reg of data.items) remember(reg);
      total = query.endpoint ? Math.max(total, data.total) : data.total;
      loaded = true;
      error.hidden = true;
    } catch (e) {
      error.textContent = `Could not load the devices. ${explainError(e)}`;
      error.hidden = false;
    }
    render();
  }

  let filterTimer = null;
  function onFilter() {
    render();
    if (total > PAGE) {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(load, 300);
    }
  }

  // Registration events carry only the endpoint: fetch the full record, in batches so a
  // burst of updates from many devices costs one pass.
  let flushTimer = null;
  function refetch(endpoint) {
    dirty.add(endpoint);
    flushTimer ??= setTimeout(flush, 250);
  }

  async function flush() {
    flushTimer = null;
    const endpoints = [...dirty];
    dirty.clear();
    const gateways = [...staleGateways];
    staleGateways.clear();
    for (const gw of gateways) loadEndDevices(gw);
    await Promise.all(endpoints.map(async (ep) => {
      try {
        const { data } = await getRegistration(ep);
        if (!devices.has(ep)) {
          highlight.add(ep);
          total += 1;
        }
        remember(data);
      } catch (e) {
        if (e.status === 404) devices.delete(ep);
      }
    }));
    render();
  }

  function touch(endpoint, time) {
    const reg = devices.get(endpoint);
    if (reg && time && time > reg.lastSeen) {
      reg.lastSeen = time;
      reg.rev = ++rev;
    }
  }

  const unsubscribe = subscribe((name, ev) => {
    const ep = ev.endpoint;
    if (name === "resync") {
      load();
      return;
    }
    if (!ep) return;
    if (name.startsWith("end-device-")) {
      // Behind a gateway: its count changes, and its list if it is unfolded.
      refetch(ev.gateway);
      if (unfolded.has(ev.gateway)) staleGateways.add(ev.gateway);
      return;
    }
    switch (name) {
      case "registered":
      case "updated":
        refetch(ep);
        break;
      case "deregistered":
      case "expired": {
        const reg = devices.get(ep);
        // A late event about an older registration must not remove a newer one.
        if (reg && (!ev.registration_id || reg.id === ev.registration_id)) {
          devices.delete(ep);
          total = Math.max(0, total - 1);
        }
        break;
      }
      case "awake":
      case "sleeping": {
        const reg = devices.get(ep);
        if (reg) {
          reg.awake = name === "awake";
          reg.rev = ++rev;
        }
        if (name === "awake") touch(ep, ev.time);
        break;
      }
      default:
        touch(ep, ev.time); // notifications, sends: the device spoke
    }
    render();
  });

  load();
  return () => {
    unsubscribe();
    clearTimeout(flushTimer);
    clearTimeout(filterTimer);
  };
}

const WILDCARDS = new Set(["", "::", "0.0.0.0", "[::]"]);

/** Where a device should send CoAP: the server's bound address, else this page's host. */
function coapUri(info) {
  if (!info) return "coap://<this host>:5683";
  const name = WILDCARDS.has(info.coap_host) ? location.hostname : info.coap_host;
  const host = name.includes(":") && !name.startsWith("[") ? `[${name}]` : name;
  return `coap://${host}:${info.coap_port}`;
}

function emptyHelp(info) {
  const uri = coapUri(info);
  return [
    h("h2", {}, "No devices registered yet"),
    h("p", {}, "Point an LwM2M ", info ? info.lwm2m_versions.join(" or ") : "1.0 or 1.1",
      " client at ", h("code", { "data-testid": "coap-uri" }, uri),
      " with any endpoint name. It appears here the moment it registers; no reload needed."),
    h("p", { class: "muted" }, "Devices with credentials must be added on the ",
      h("a", { href: "#/security" }, "Security"), " page first."),
  ];
}
