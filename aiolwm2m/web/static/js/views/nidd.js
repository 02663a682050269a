// NIDD (#/nidd): the SCEF this server reaches non-IP devices through, the NIDD devices and
// groups with their endpoint, time to live, quota and the allowance left, their
// configurations at the SCEF, and the downlink queue; add, change or remove a device or a
// group (/api/nidd). A server started without --scef answers 404: that is explained, not
// shown as an error. Identifiers and SCEF texts only ever go in as text nodes.

import { api, explainError } from "../api.js";
import { duration, fill, h, timeAgo } from "../dom.js";

const enc = encodeURIComponent;
const REFRESH_MS = 5000;
const LIMITS = [
  ["uplink_packets", "Uplink packets"], ["uplink_bytes", "Uplink bytes"],
  ["downlink_packets", "Downlink packets"], ["downlink_bytes", "Downlink bytes"],
];
const KINDS = {
  device: { path: "devices", noun: "device", idLabel: "External identifier or MSISDN",
    placeholder: "dev-1@nidd.example" },
  group: { path: "groups", noun: "group", idLabel: "External group identifier",
    placeholder: "fleet@nidd.example" },
};

export function mountNidd(root) {
  const summary = h("div", { "data-testid": "nidd-summary" }, h("p", { class: "muted" },
    "Loading…"));
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true,
    "data-testid": "nidd-error" });
  const devices = h("div", { "data-testid": "nidd-devices" });
  const groups = h("div", { "data-testid": "nidd-groups" });
  const form = entryForm(async () => load());
  const content = h("div", { class: "two-col" },
    h("div", {}, h("h2", {}, "Devices"), devices, h("h2", {}, "Groups"), groups),
    form.element);

  fill(root, h("section", { class: "page", "aria-labelledby": "nidd-title" },
    h("div", { class: "page-head" }, h("h1", { id: "nidd-title" }, "NIDD")),
    h("p", { class: "muted" }, "Devices without IP (NB-IoT, LTE-M) reach this server "
      + "through the operator's SCEF. Each device or group has its own configuration there; "
      + "downlink data waits in this server until the SCEF takes it, within its time to live "
      + "and its quota."),
    error, summary, content));

  let stopped = false;
  let timer = null;
  let shown = "";
  let armed = 0; // delete buttons waiting for their confirming click: do not redraw them
  let latest = 0; // a load started after a save supersedes the periodic one in flight

  async function load() {
    if (timer) clearTimeout(timer);
    timer = null;
    const mine = ++latest;
    try {
      const [{ data: status }, { data: devs }, { data: grps }] = await Promise.all([
        api("GET", "/api/nidd"), api("GET", "/api/nidd/devices"),
        api("GET", "/api/nidd/groups")]);
      if (stopped || mine !== latest) return;
      error.hidden = true;
      const text = JSON.stringify([status, devs, grps]);
      if (text !== shown && !armed) {
        shown = text;
        fill(summary, statusPanel(status));
        fill(devices, devs.length ? deviceTable(devs) : h("p", { class: "empty",
          "data-testid": "nidd-devices-empty" }, "No NIDD devices yet. Add one with its "
          + "External Identifier (local@domain) or MSISDN, and the endpoint name it "
          + "registers with."));
        fill(groups, grps.length ? groupTable(grps) : h("p", { class: "empty",
          "data-testid": "nidd-groups-empty" }, "No NIDD groups. A group is one "
          + "configuration for every device in an External Group Identifier."));
      }
    } catch (e) {
      if (stopped || mine !== latest) return;
      if (e.status === 404) {
        fill(summary, h("div", { class: "notice notice-info", role: "status",
          "data-testid": "nidd-unavailable" },
        h("strong", {}, "NIDD is not configured on this server. "),
        "Start it with ", h("code", {}, "--scef URL"), " (the SCEF's T8 API; ",
        h("code", {}, "aiolwm2m scef-emulator"), " is one to test with) to reach devices "
          + "without IP."));
        content.hidden = true;
        return; // nothing to refresh
      }
      error.textContent = `Could not load the NIDD state. ${explainError(e)}`;
      error.hidden = false;
    }
    if (!stopped) timer = setTimeout(load, REFRESH_MS);
  }

  function deleteButton(kind, id) {
    const remove = h("button", { type: "button", class: "btn btn-small btn-danger",
      "data-testid": "nidd-delete", "aria-label": `Remove NIDD ${kind} ${id}` }, "Remove");
    // Two clicks to remove: the first arms the button for a few seconds.
    let pending = null;
    const disarm = () => {
      clearTimeout(pending);
      pending = null;
      armed -= 1;
    };
    remove.addEventListener("click", async () => {
      if (!pending) {
        remove.textContent = "Confirm remove";
        remove.dataset.armed = "true";
        armed += 1;
        pending = setTimeout(() => {
          disarm();
          remove.textContent = "Remove";
          delete remove.dataset.armed;
        }, 5000);
        return;
      }
      disarm();
      remove.disabled = true;
      try {
        await api("DELETE", `/api/nidd/${KINDS[kind].path}/${enc(id)}`);
        form.say("ok", `Removed NIDD ${kind} ${id}.`);
      } catch (e) {
        error.textContent = explainError(e);
        error.hidden = false;
      }
      await load();
    });
    return remove;
  }

  function editButton(kind, view, id) {
    return h("button", { type: "button", class: "btn btn-small", "data-testid": "nidd-edit",
      "aria-label": `Edit NIDD ${kind} ${id}`, onclick: () => form.edit(kind, view) }, "Edit");
  }

  function deviceTable(list) {
    return h("div", { class: "table-wrap" }, h("table", { class: "table",
      "data-testid": "nidd-device-table" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "External ID / MSISDN"), h("th", { scope: "col" }, "Endpoint"),
      h("th", { scope: "col" }, "TTL"), h("th", { scope: "col" }, "Quota"),
      h("th", { scope: "col" }, "Left"), h("th", { scope: "col" }, "Configuration"),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    h("tbody", {}, list.map((d) => h("tr", { "data-testid": "nidd-device-row",
      "data-ident": d.ident },
    h("th", { scope: "row", class: "mono" }, d.ident),
    h("td", { "data-testid": "nidd-cell-endpoint" }, d.endpoint
      ? h("a", { href: `#/devices/${enc(d.endpoint)}` }, d.endpoint)
      : h("span", { class: "muted" }, "any")),
    h("td", { "data-testid": "nidd-cell-ttl" }, ttlCell(d.ttl, d.ttl_in_force)),
    h("td", { "data-testid": "nidd-cell-quota" }, quotaCell(d.quota, d.quota_in_force)),
    h("td", { "data-testid": "nidd-cell-left" }, leftCell(d.quota_remaining, d.configuration)),
    h("td", {}, configurationCell(d.configuration)),
    h("td", { class: "actions" }, editButton("device", d, d.ident),
      deleteButton("device", d.ident)))))));
  }

  function groupTable(list) {
    return h("div", { class: "table-wrap" }, h("table", { class: "table",
      "data-testid": "nidd-group-table" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "External group ID"), h("th", { scope: "col" }, "TTL"),
      h("th", { scope: "col" }, "Quota (each member)"),
      h("th", { scope: "col" }, "Configuration"),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    h("tbody", {}, list.map((g) => h("tr", { "data-testid": "nidd-group-row",
      "data-ident": g.external_group_id },
    h("th", { scope: "row", class: "mono" }, g.external_group_id),
    h("td", { "data-testid": "nidd-cell-ttl" }, ttlCell(g.ttl, g.ttl_in_force)),
    h("td", { "data-testid": "nidd-cell-quota" }, quotaCell(g.quota, g.quota_in_force)),
    h("td", {}, configurationCell(g.configuration)),
    h("td", { class: "actions" }, editButton("group", g, g.external_group_id),
      deleteButton("group", g.external_group_id)))))));
  }

  load();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

// --- cells --------------------------------------------------------------------------------

function statusPanel(s) {
  const d = s.downlink ?? {};
  const totals = d.totals ?? {};
  const t = s.transport ?? {};
  const counted = Object.entries(totals).filter(([k]) => k !== "queued" && k !== "pending")
    .map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`);
  return h("dl", { class: "panel details", "data-testid": "nidd-status" },
    h("dt", {}, "SCEF"), h("dd", { class: "mono", "data-testid": "nidd-scef" }, s.scef),
    h("dt", {}, "Reachable"), h("dd", {}, h("span", {
      class: `badge ${s.reachable ? "badge-online" : "badge-gone"}`,
      "data-testid": "nidd-reachable", "data-reachable": String(Boolean(s.reachable)) },
    s.reachable ? "yes" : "no")),
    h("dt", {}, "SCS/AS id"), h("dd", { class: "mono" }, s.scs_as_id),
    h("dt", {}, "Configurations"), h("dd", { "data-testid": "nidd-configurations" },
      `${s.active_configurations} active of ${s.configurations} · ${s.devices} devices, `
      + `${s.groups} groups`),
    h("dt", {}, "Downlink queue"), h("dd", { "data-testid": "nidd-queue" },
      `${d.queued ?? 0} waiting here (${d.devices_waiting ?? 0} devices), `
      + `${d.pending ?? 0} held by the SCEF`),
    h("dt", {}, "Since start"), h("dd", { class: "muted", "data-testid": "nidd-totals" },
      [`uplink ${t.uplink_packets ?? 0} packets (${t.uplink_bytes ?? 0} bytes)`,
        `downlink ${t.downlink_packets ?? 0} packets (${t.downlink_bytes ?? 0} bytes)`,
        `queued ${totals.queued ?? 0}`, ...counted].join(" · ")));
}

function ttlCell(own, inForce) {
  if (own !== null && own !== undefined) return duration(own);
  return h("span", { class: "muted", title: "the server's (or the group's) time to live" },
    `default (${duration(inForce)})`);
}

function limitsText(spec) {
  const part = (dir) => {
    const p = spec[`${dir}_packets`];
    const b = spec[`${dir}_bytes`];
    const items = [p !== null && p !== undefined ? `${p} packets` : null,
      b !== null && b !== undefined ? `${b} bytes` : null].filter(Boolean);
    return items.length ? `${dir} ${items.join(", ")}` : null;
  };
  const parts = [part("uplink"), part("downlink")].filter(Boolean);
  return parts.length ? `${parts.join("; ")} per ${duration(spec.window)}` : "unlimited";
}

function quotaCell(own, inForce) {
  if (own) return limitsText(own);
  if (inForce) return h("span", { class: "muted" }, `default: ${limitsText(inForce)}`);
  return h("span", { class: "muted" }, "unlimited");
}

function leftCell(remaining, configuration) {
  const ours = Object.entries(remaining ?? {}).map(
    ([k, v]) => `${v} ${k.replace("_", " ")}`);
  const scef = configuration?.remaining ?? {};
  const theirs = [["remainingUplinkBytes", "uplink bytes"],
    ["remainingDownlinkBytes", "downlink bytes"]]
    .filter(([k]) => scef[k] !== undefined).map(([k, text]) => `${scef[k]} ${text}`);
  if (!ours.length && !theirs.length) return h("span", { class: "muted" }, "—");
  return [ours.join(", "), theirs.length
    ? h("div", { class: "muted", title: "as the SCEF counts them (quota extension)" },
      `SCEF: ${theirs.join(", ")}`) : null];
}

function configurationCell(c) {
  if (!c) return h("span", { class: "muted" }, "none");
  const kind = { active: "badge-online", pending: "badge-sleeping", failed: "badge-gone" }[
    c.state] ?? "";
  const facts = [];
  if (c.maximumPacketSize) facts.push(`packets ≤ ${Math.floor(c.maximumPacketSize / 8)} B`);
  if (c.quota_extension) facts.push("byte quota at the SCEF");
  return [h("span", { class: `badge ${kind}`, "data-testid": "nidd-config-state" }, c.state),
    c.expires_at ? h("div", { class: "muted" }, "until ", timeAgo(c.expires_at)) : null,
    facts.length ? h("div", { class: "muted" }, facts.join(" · ")) : null,
    c.error ? h("div", { class: "form-error", "data-testid": "nidd-config-error" }, c.error)
      : null];
}

// --- the form -----------------------------------------------------------------------------

/** Add or change a device or group; `saved()` reloads the page's tables. */
function entryForm(saved) {
  const kind = h("select", { id: "nidd-kind", class: "input", "data-testid": "nidd-kind" },
    h("option", { value: "device" }, "Device"), h("option", { value: "group" }, "Group"));
  const ident = h("input", { id: "nidd-ident", class: "input mono", required: true,
    autocomplete: "off", spellcheck: "false", "data-testid": "nidd-ident" });
  const endpoint = h("input", { id: "nidd-endpoint", class: "input", autocomplete: "off",
    "data-testid": "nidd-endpoint-input", placeholder: "any endpoint" });
  const number = (id, placeholder) => h("input", { id, class: "input", autocomplete: "off",
    inputmode: "numeric", "data-testid": id, placeholder });
  // Text, not type=number: what was typed goes to the server as it is, so a bad value is
  // refused with the server's own reason instead of silently becoming "no limit".
  const ttl = number("nidd-ttl", "server default");
  const limits = Object.fromEntries(LIMITS.map(([name]) => [name,
    number(`nidd-${name.replace("_", "-")}`, "unlimited")]));
  const windowInput = number("nidd-window", "86400 (1 day)");
  const title = h("h2", { id: "nidd-form-title" }, "Add a NIDD device");
  const submit = h("button", { type: "submit", class: "btn btn-primary",
    "data-testid": "nidd-submit" }, "Save");
  const cancel = h("button", { type: "button", class: "btn btn-quiet",
    "data-testid": "nidd-cancel" }, "Clear");
  const message = h("p", { role: "status", class: "form-message", "data-testid": "nidd-message",
    hidden: true });
  const endpointField = field("nidd-endpoint", "Endpoint name (the only one it may "
    + "register)", endpoint);
  const identLabel = h("label", { for: "nidd-ident" }, KINDS.device.idLabel);
  let editing = false;

  const say = (state, text) => {
    message.dataset.kind = state;
    message.textContent = text;
    message.hidden = false;
  };
  const show = () => {
    const k = KINDS[kind.value];
    endpointField.hidden = kind.value !== "device";
    identLabel.textContent = k.idLabel;
    ident.placeholder = k.placeholder;
    title.textContent = editing ? `Edit NIDD ${k.noun} ${ident.value}` : `Add a NIDD ${k.noun}`;
    ident.readOnly = editing;
    kind.disabled = editing;
    cancel.textContent = editing ? "New entry" : "Clear";
  };
  const clear = () => {
    editing = false;
    element.reset();
    show();
  };
  kind.addEventListener("change", show);
  cancel.addEventListener("click", () => {
    clear();
    message.hidden = true;
  });

  const element = h("form", { class: "panel form", novalidate: true, "data-testid": "nidd-form",
    "aria-labelledby": "nidd-form-title",
    onsubmit: async (event) => {
      event.preventDefault();
      const id = ident.value.trim();
      const k = KINDS[kind.value];
      if (!id) {
        say("error", `Enter the ${k.idLabel.toLowerCase()}.`);
        return;
      }
      const quota = {};
      for (const [name] of LIMITS) quota[name] = numberOrText(limits[name].value);
      quota.window = numberOrText(windowInput.value);
      const body = { ttl: numberOrText(ttl.value),
        quota: Object.values(quota).some((v) => v !== null) ? quota : null };
      if (kind.value === "device") body.endpoint = endpoint.value.trim() || null;
      submit.disabled = true;
      try {
        await api("PUT", `/api/nidd/${k.path}/${enc(id)}`, { body });
        say("ok", `Saved NIDD ${k.noun} ${id}.`);
        clear();
        await saved();
      } catch (e) {
        say("error", explainError(e));
      } finally {
        submit.disabled = false;
      }
    } },
  title,
  field("nidd-kind", "Kind", kind),
  h("div", { class: "field" }, identLabel, ident),
  endpointField,
  field("nidd-ttl", "Time to live of downlink data (seconds)", ttl),
  h("fieldset", { class: "field-group" }, h("legend", {}, "Quota per window"),
    ...LIMITS.map(([name, text]) => field(limits[name].id, text, limits[name])),
    field("nidd-window", "Window (seconds)", windowInput)),
  h("div", { class: "actions" }, cancel, submit),
  message);

  /** Fill the form with a listed entry to change it. */
  const edit = (which, view) => {
    clear();
    editing = true;
    kind.value = which;
    ident.value = which === "device" ? view.ident : view.external_group_id;
    if (which === "device") endpoint.value = view.endpoint ?? "";
    ttl.value = view.ttl ?? "";
    for (const [name] of LIMITS) limits[name].value = view.quota?.[name] ?? "";
    windowInput.value = view.quota?.window ?? "";
    message.hidden = true;
    show();
    ident.scrollIntoView({ block: "nearest" });
    ttl.focus();
  };
  show();
  return { element, edit, say };
}

/** A number when the text is one; other text goes as it is, for the server to explain. */
function numberOrText(text) {
  const t = text.trim();
  if (!t) return null;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

function field(id, text, control) {
  return h("div", { class: "field" }, h("label", { for: id }, text), control);
}
