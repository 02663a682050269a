// Bootstrap configurations: what the bootstrap server writes into each device.
//
// The bootstrap API (GET /api/bootstrap) is newer than this page may be deployed with, so a
// 404 is an expected answer ("this server has no bootstrap API"), not an error. Items are
// read defensively: {endpoint, config: {security: [...], servers: [...]}, updated_at}, and
// a bare config or an {items: [...]} page are accepted too.

import { explainError, listBootstrap } from "../api.js";
import { fill, h, timeAgo } from "../dom.js";

export function mountBootstrap(root) {
  const content = h("div", { "data-testid": "bootstrap-content" },
    h("p", { class: "muted" }, "Loading…"));
  fill(root, h("section", { class: "page", "aria-labelledby": "bootstrap-title" },
    h("div", { class: "page-head" }, h("h1", { id: "bootstrap-title" }, "Bootstrap configurations")),
    h("p", { class: "muted" }, "A device that starts without server accounts asks the "
      + "bootstrap server for them; these are the accounts and settings it receives."),
    content));

  (async () => {
    try {
      const { data } = await listBootstrap();
      const items = Array.isArray(data) ? data : (data?.items ?? []);
      fill(content, items.length ? table(items) : h("p", { class: "empty",
        "data-testid": "bootstrap-empty" }, "No bootstrap configurations yet."));
    } catch (e) {
      if (e.status === 404) {
        fill(content, h("div", { class: "notice notice-info", "data-testid": "bootstrap-unavailable",
          role: "status" },
        h("strong", {}, "Bootstrap configurations are not available on this server. "),
        "Its REST API has no ", h("code", {}, "/api/bootstrap"), " endpoint (it answered 404): "
        + "the bootstrap server is not enabled, or this server version predates it. Devices "
        + "can still register directly with this LwM2M server."));
      } else {
        fill(content, h("p", { class: "notice notice-error", role: "alert" },
          `Could not load the bootstrap configurations. ${explainError(e)}`));
      }
    }
  })();
  return () => {};
}

function table(items) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table", "data-testid": "bootstrap-table" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Endpoint"), h("th", { scope: "col" }, "Servers"),
      h("th", { scope: "col" }, "Updated"), h("th", { scope: "col" }, "Configuration"))),
    h("tbody", {}, items.map(row))));
}

function row(item) {
  const endpoint = item.endpoint ?? item.ep ?? "—";
  const config = item.config ?? item;
  const updated = item.updated_at ?? item.at;
  const servers = (config.security ?? [])
    .map((s) => `${s.bootstrap_server ? "bootstrap " : ""}${s.server_uri}`
      + (s.short_server_id ? ` (#${s.short_server_id})` : ""));
  return h("tr", { "data-testid": "bootstrap-row", "data-endpoint": endpoint },
    h("th", { scope: "row" }, endpoint),
    h("td", {}, servers.length ? h("ul", { class: "plain" }, servers.map((s) => h("li", {}, s))) : "—"),
    h("td", {}, typeof updated === "number" && updated > 0 ? timeAgo(updated) : "—"),
    h("td", {}, h("details", {}, h("summary", {}, "JSON"),
      h("pre", { class: "json" }, JSON.stringify(config, redact, 2)))));
}

// Secret keys stay off the screen even if the API hands them out.
function redact(key, value) {
  return key === "secret_key" && value ? "(hidden)" : value;
}
