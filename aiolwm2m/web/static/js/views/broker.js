// The pub/sub broker: its topics, their state and last value (GET /api/broker/topics),
// refreshed every few seconds. A server without a broker answers 404, which is explained,
// not shown as an error. Values are untrusted text: they only ever go in as text nodes.

import { api, explainError } from "../api.js";
import { fill, h, timeAgo } from "../dom.js";

const REFRESH_MS = 5000;
const PAGE = 200;

export function mountBroker(root) {
  const summary = h("p", { class: "muted", "data-testid": "broker-summary" }, "Loading…");
  const content = h("div", { "data-testid": "broker-content" });
  fill(root, h("section", { class: "page", "aria-labelledby": "broker-title" },
    h("div", { class: "page-head" }, h("h1", { id: "broker-title" }, "Pub/sub broker")),
    summary, content));

  let stopped = false;
  let timer = null;

  async function load() {
    try {
      const [{ data: info }, { data: page }] = await Promise.all([
        api("GET", "/api/broker"), api("GET", "/api/broker/topics", { query: { limit: PAGE } })]);
      if (stopped) return;
      fill(summary, describe(info, page));
      fill(content, page.items.length ? table(page.items) : h("p", { class: "empty",
        "data-testid": "broker-empty" }, "No topics yet. Create one with a POST to ",
      h("code", {}, "/ps"), " (application/core-pubsub+cbor)."));
    } catch (e) {
      if (stopped) return;
      if (e.status === 404) {
        fill(summary);
        fill(content, h("div", { class: "notice notice-info", role: "status",
          "data-testid": "broker-unavailable" },
        h("strong", {}, "No broker on this server. "),
        "Start it with ", h("code", {}, "--broker-port PORT"), " to run one here, or ",
        h("code", {}, "--broker-uri coap://HOST:PORT"), " to show one elsewhere."));
        return; // nothing to refresh
      }
      fill(content, h("p", { class: "notice notice-error", role: "alert" },
        `Could not load the broker's topics. ${explainError(e)}`));
    }
    if (!stopped) timer = setTimeout(load, REFRESH_MS);
  }

  load();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

function describe(info, page) {
  const parts = [`${info.topics} topic${info.topics === 1 ? "" : "s"}`];
  if (info.subscribers !== null) parts.push(`${info.subscribers} subscriptions`);
  const where = info.source === "embedded" ? `this server, UDP port ${info.port}` : info.source;
  const shown = page.total > page.items.length ? ` (first ${page.items.length} shown)` : "";
  const rd = info.rd_state ? ` · Resource Directory: ${info.rd_state}` : "";
  return `${parts.join(", ")}${shown} · ${where} · ${info.draft}${rd}`;
}

function table(items) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table", "data-testid": "broker-table" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Topic"), h("th", { scope: "col" }, "State"),
      h("th", { scope: "col" }, "Last value"), h("th", { scope: "col" }, "Format"),
      h("th", { scope: "col" }, "Published"), h("th", { scope: "col" }, "Subscribers"),
      h("th", { scope: "col" }, "Data"))),
    h("tbody", {}, items.map(row))));
}

function row(t) {
  return h("tr", { "data-testid": "broker-row", "data-topic": t.name },
    h("th", { scope: "row" }, t.name, t.topic_type ? h("div", { class: "muted" }, t.topic_type) : null),
    h("td", {}, t.state === "fully-created" ? "fully created" : "half created"),
    h("td", { "data-testid": "broker-value" }, valueText(t.value)),
    h("td", {}, t.value_format ?? t.topic_content_format ?? "—"),
    h("td", {}, typeof t.published_at === "number" ? timeAgo(t.published_at) : "—"),
    h("td", {}, t.subscribers ?? "—"),
    h("td", {}, h("code", {}, t.data_path ?? "—")));
}

function valueText(value) {
  if (!value) return "—";
  if (typeof value.text === "string") return value.text;
  if (value.json_value !== null && value.json_value !== undefined) {
    return JSON.stringify(value.json_value);
  }
  return `base64 ${value.base64}`;
}
