// Device groups (#/groups, #/groups/<name>): define a group (static members, an RD lookup
// filter, an RD group), see who is in it now, run an operation on every member and watch
// each member's result arrive (GET /api/group-runs/{id}/events, server-sent events).
// Device values and names are untrusted text: they only ever go in as text nodes.

import { api, explainError } from "../api.js";
import { getToken } from "../auth.js";
import { fill, h } from "../dom.js";

const enc = encodeURIComponent;
const STATUSES = ["ok", "error", "failed", "not-registered", "queued", "expired"];
const OPERATIONS = {
  read: "Read", write: "Write", execute: "Execute",
  "write-attributes": "Write attributes", observe: "Observe",
};

export function mountGroups(root, selected) {
  const stops = [];
  if (selected) mountGroup(root, selected, stops);
  else mountList(root);
  return () => { for (const stop of stops) stop(); };
}

// --- the list and the form ----------------------------------------------------------------

function mountList(root) {
  const body = h("tbody", {});
  const table = h("table", { class: "table", "data-testid": "groups-table", hidden: true },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Group"), h("th", { scope: "col" }, "Static members"),
      h("th", { scope: "col" }, "Filter"), h("th", { scope: "col" }, "Description"),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    body);
  const empty = h("p", { class: "empty", hidden: true, "data-testid": "groups-empty" },
    "No groups yet. A group lists endpoints, or finds them with a Resource Directory "
    + "filter such as ep=meter-*&d=plant-1.");
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true });

  fill(root, h("section", { class: "page", "aria-labelledby": "groups-title" },
    h("div", { class: "page-head" }, h("h1", { id: "groups-title" }, "Device groups")),
    h("p", { class: "muted" }, "Run a read, write, execute, write-attributes or observe on "
      + "every member at once; sleeping members get it when they wake."),
    error,
    h("div", { class: "two-col" },
      h("div", {}, h("div", { class: "table-wrap" }, table), empty),
      groupForm(async () => load()))));

  async function load() {
    try {
      const { data } = await api("GET", "/api/groups");
      fill(body, data.map(row));
      table.hidden = data.length === 0;
      empty.hidden = data.length > 0;
      error.hidden = true;
    } catch (e) {
      error.textContent = `Could not load the groups. ${explainError(e)}`;
      error.hidden = false;
    }
  }

  function row(g) {
    const remove = h("button", { type: "button", class: "btn btn-small btn-danger",
      "data-testid": "group-delete", "aria-label": `Delete group ${g.name}` }, "Delete");
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      try {
        await api("DELETE", `/api/groups/${enc(g.name)}`);
      } catch (e) {
        error.textContent = explainError(e);
        error.hidden = false;
      }
      await load();
    });
    return h("tr", { "data-testid": "group-row", "data-group": g.name },
      h("th", { scope: "row" }, h("a", { href: `#/groups/${enc(g.name)}`,
        "data-testid": "group-link" }, g.name)),
      h("td", {}, String(g.members.length)),
      h("td", { class: "mono" }, g.filter ?? (g.rd_group ? `RD group ${g.rd_group.ep}` : "—")),
      h("td", {}, g.description || "—"),
      h("td", { class: "actions" }, remove));
  }

  load();
}

function groupForm(saved) {
  const name = h("input", { id: "grp-name", class: "input", required: true, autocomplete: "off",
    "data-testid": "group-name", placeholder: "meters" });
  const members = h("textarea", { id: "grp-members", class: "input mono", rows: 3,
    spellcheck: "false", "data-testid": "group-members",
    placeholder: "endpoint names, one per line" });
  const filter = h("input", { id: "grp-filter", class: "input mono", autocomplete: "off",
    "data-testid": "group-filter", placeholder: "ep=meter-*&d=plant-1" });
  const description = h("input", { id: "grp-description", class: "input", autocomplete: "off",
    "data-testid": "group-description" });
  const message = h("p", { role: "status", class: "form-message", "data-testid": "group-message",
    hidden: true });
  const say = (kind, text) => {
    message.dataset.kind = kind;
    message.textContent = text;
    message.hidden = false;
  };
  const form = h("form", { class: "panel form", novalidate: true, "data-testid": "group-form",
    "aria-labelledby": "grp-form-title",
    onsubmit: async (event) => {
      event.preventDefault();
      const groupName = name.value.trim();
      if (!groupName) {
        say("error", "Enter the group's name.");
        return;
      }
      const body = {
        members: members.value.split(/[\s,]+/).filter(Boolean),
        filter: filter.value.trim() || null,
        description: description.value.trim(),
      };
      try {
        await api("PUT", `/api/groups/${enc(groupName)}`, { body });
        say("ok", `Saved group ${groupName}.`);
        form.reset();
        await saved();
      } catch (e) {
        say("error", explainError(e));
      }
    } },
  h("h2", { id: "grp-form-title" }, "Create or replace a group"),
  field("grp-name", "Name", name),
  field("grp-members", "Members", members),
  field("grp-filter", "RD lookup filter (members found when an operation runs)", filter),
  field("grp-description", "Description", description),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary",
    "data-testid": "group-submit" }, "Save group")),
  message);
  return form;
}

// --- one group: members, an operation, its results --------------------------------------

function mountGroup(root, name, stops) {
  const info = h("p", { class: "muted", "data-testid": "group-info" }, "Loading…");
  const memberList = h("ul", { class: "chips", "data-testid": "group-member-list" });
  const results = h("div", { "data-testid": "group-results" });
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true });

  fill(root, h("section", { class: "page", "aria-labelledby": "group-title",
    "data-testid": "group-page" },
  h("div", { class: "page-head" }, h("h1", { id: "group-title" }, `Group ${name}`),
    h("a", { href: "#/groups", class: "btn btn-quiet" }, "All groups")),
  info, error,
  h("div", { class: "two-col" },
    h("div", {}, h("h2", {}, "Members now"), memberList),
    operationForm(name, (run) => follow(run))),
  results));

  async function loadMembers() {
    try {
      const [{ data: group }, { data: members }] = await Promise.all([
        api("GET", `/api/groups/${enc(name)}`),
        api("GET", `/api/groups/${enc(name)}/members`)]);
      const how = [group.members.length ? `${group.members.length} listed` : null,
        group.filter ? `filter ${group.filter}` : null,
        group.rd_group ? `RD group ${group.rd_group.ep}` : null].filter(Boolean).join(", ");
      fill(info, `${members.endpoints.length} members (${members.registered} registered)`,
        how ? ` · ${how}` : "", members.truncated ? " · cut at the server's limit" : "",
        group.description ? ` · ${group.description}` : "");
      fill(memberList, members.endpoints.slice(0, 500).map((ep) => h("li", {
        "data-testid": "group-member" }, h("a", { href: `#/devices/${enc(ep)}` }, ep))));
    } catch (e) {
      error.textContent = explainError(e);
      error.hidden = false;
    }
  }

  function follow(run) {
    const body = h("tbody", {});
    const summary = h("p", { class: "muted", "data-testid": "run-summary", "data-state": run.state },
      `${OPERATIONS[run.operation] ?? run.operation} ${run.path} on ${run.members} members…`);
    fill(results, h("h2", {}, "Results"), summary,
      h("div", { class: "table-wrap" }, h("table", { class: "table", "data-testid": "run-table" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Endpoint"), h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Code"), h("th", { scope: "col" }, "Value or reason"))),
        body)));
    const rows = new Map();
    const url = new URL(`/api/group-runs/${enc(run.id)}/events`, location.origin);
    url.searchParams.set("access_token", getToken() ?? "");
    const es = new EventSource(url);
    const close = () => es.close();
    stops.push(close);
    es.addEventListener("result", (event) => {
      const r = JSON.parse(event.data);
      const tr = resultRow(r);
      const old = rows.get(r.endpoint);
      if (old) old.replaceWith(tr);
      else body.append(tr);
      rows.set(r.endpoint, tr);
    });
    es.addEventListener("done", (event) => {
      close(); // the stream ends here: without this, EventSource would start it again
      const done = JSON.parse(event.data);
      summary.dataset.state = done.state;
      const counts = STATUSES.filter((k) => done.summary[k]).map((k) => `${done.summary[k]} ${k}`);
      fill(summary, `${done.state === "done" ? "Done" : "Cancelled"}: `,
        counts.join(", ") || "no members");
    });
    es.onerror = () => {
      if (summary.dataset.state === "running") {
        summary.textContent = "Lost the result stream; reload the page to see the results.";
      }
      close();
    };
  }

  loadMembers();
}

function resultRow(r) {
  let text = r.detail ?? "";
  if (r.result) {
    if (r.result.values?.length === 1) text = String(r.result.values[0].value);
    else if (r.result.content !== null && r.result.content !== undefined) {
      text = JSON.stringify(r.result.content);
    } else text = r.result.diagnostic ?? "";
  }
  if (r.status === "queued") text = `queued as ${r.request_id}: sent when it wakes`;
  return h("tr", { "data-testid": "run-row", "data-endpoint": r.endpoint, "data-status": r.status },
    h("th", { scope: "row" }, r.endpoint),
    h("td", {}, h("span", { class: `badge badge-${badgeOf(r.status)}` }, r.status)),
    h("td", { class: "mono" }, r.code ?? "—"),
    h("td", { class: "mono", "data-testid": "run-value" }, text));
}

function badgeOf(status) {
  if (status === "ok") return "online";
  if (status === "queued") return "sleeping";
  return "gone";
}

function operationForm(name, started) {
  const op = h("select", { id: "run-op", class: "input", "data-testid": "run-operation" },
    Object.entries(OPERATIONS).map(([value, text]) => h("option", { value }, text)));
  const path = h("input", { id: "run-path", class: "input mono", required: true,
    autocomplete: "off", "data-testid": "run-path", placeholder: "/3/0/0" });
  const value = h("input", { id: "run-value", class: "input mono", autocomplete: "off",
    "data-testid": "run-value-input", placeholder: "value (JSON, or text)" });
  const attrs = h("input", { id: "run-attrs", class: "input mono", autocomplete: "off",
    "data-testid": "run-attributes", placeholder: "pmin=10&pmax=60" });
  const concurrency = h("input", { id: "run-concurrency", class: "input", type: "number",
    min: 1, "data-testid": "run-concurrency", placeholder: "server default" });
  const message = h("p", { role: "status", class: "form-message", "data-testid": "run-message",
    hidden: true });
  const valueField = field("run-value", "Value (write) or arguments (execute)", value);
  const attrsField = field("run-attrs", "Attributes", attrs);
  const show = () => {
    valueField.hidden = op.value !== "write" && op.value !== "execute";
    attrsField.hidden = op.value !== "write-attributes";
  };
  op.addEventListener("change", show);
  show();

  const form = h("form", { class: "panel form", novalidate: true, "data-testid": "run-form",
    "aria-labelledby": "run-form-title",
    onsubmit: async (event) => {
      event.preventDefault();
      message.hidden = true;
      const body = { path: path.value.trim() };
      if (concurrency.value) body.concurrency = Number(concurrency.value);
      if (op.value === "write") body.value = parseValue(value.value);
      if (op.value === "execute") body.arguments = value.value;
      if (op.value === "write-attributes") {
        body.set = {};
        body.unset = [];
        for (const item of attrs.value.split("&").filter(Boolean)) {
          const [k, v] = item.split("=");
          if (v === undefined) body.unset.push(k);
          else body.set[k] = Number(v);
        }
      }
      try {
        const { data } = await api("POST", `/api/groups/${enc(name)}/${op.value}`, { body });
        started(data);
      } catch (e) {
        message.dataset.kind = "error";
        message.textContent = explainError(e);
        message.hidden = false;
      }
    } },
  h("h2", { id: "run-form-title" }, "Run on every member"),
  field("run-op", "Operation", op), field("run-path", "Path", path), valueField, attrsField,
  field("run-concurrency", "At most this many at once", concurrency),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary",
    "data-testid": "run-submit" }, "Run")),
  message);
  return form;
}

/** JSON when it parses ("42", "true", "{...}"), else the text itself ("+02:00"). */
function parseValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function field(id, text, control) {
  return h("div", { class: "field" }, h("label", { for: id }, text), control);
}
