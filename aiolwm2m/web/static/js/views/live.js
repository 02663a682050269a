// The device page's side panels: live values (observations and their charts) and the
// activity log of everything done and received.

import { getValueHistory } from "../api.js";
import { LineChart } from "../chart.js";
import { clockTime, h, serverNow, timeAgo } from "../dom.js";
import { isNumericType } from "../lwm2m.js";

// Points a new chart starts with from the server's history of its path.
const HISTORY_POINTS = 300;
// A value reported while a chart's history was on its way is the same point as one in it
// when both hold the same value this close in time (the notification's event time and the
// time the server recorded it differ by the event's way through the server).
const SAME_POINT_SECONDS = 2;

const LOG_LIMIT = 200;

// Plotted points per "endpoint path", kept for the browser session so leaving a device's page
// and coming back does not throw its charts away.
const histories = new Map();

/** A titled box on the page. */
export function panel(title, testid, ...children) {
  const id = `panel-${testid}`;
  return h("section", { class: "panel", "data-testid": testid, "aria-labelledby": id },
    h("h2", { id }, title), ...children);
}

/** A newest-first list of what happened, capped so a chatty device cannot grow it forever. */
export class ActivityLog {
  constructor() {
    // Not a live region: a chatty device would flood screen readers. Outcomes of the user's
    // own actions are announced by the feedback line next to the button instead.
    this.list = h("ol", { class: "log", "data-testid": "activity-log" });
    this.element = panel("Activity", "activity", this.list);
  }

  /** kind: "ok", "error", "queued" or "event". */
  add(kind, text) {
    const item = h("li", { "data-kind": kind },
      h("span", { class: "log-time" }, clockTime(serverNow())), " ",
      h("span", { class: "log-text" }, text));
    this.list.prepend(item);
    while (this.list.childElementCount > LOG_LIMIT) this.list.lastElementChild.remove();
  }
}

/**
 * The server's observations of this device, each with a Cancel button, and one chart per
 * numeric value path that notifications (or Send) have reported.
 */
export class LivePanel {
  constructor({ endpoint, onCancel, describe }) {
    this.endpoint = endpoint;
    this.onCancel = onCancel; // (observation) => Promise
    this.describe = describe; // (valuePath) => {name, units} from the object model
    this.observations = [];
    this.charts = new Map();
    this.loading = new Map(); // path -> points reported while its history loads
    this.list = h("ul", { class: "obs-list", "data-testid": "observation-list" });
    this.chartBox = h("div", { class: "charts", "data-testid": "charts" });
    this.hint = h("p", { class: "muted", "data-testid": "observations-empty" },
      "Nothing observed. Press ", h("strong", {}, "Observe"),
      " on a resource to follow its value here; numbers are plotted as they arrive.");
    this.element = panel("Live values", "observations", this.hint, this.list, this.chartBox);
    for (const [key, history] of histories) {
      if (history.endpoint === endpoint) this.chart(key.slice(endpoint.length + 1), history);
    }
    this.render();
  }

  set(observations) {
    this.observations = observations;
    // An observed number gets its chart at once, drawn from what the server kept.
    for (const o of observations) {
      if (o.composite || o.paths.length !== 1) continue;
      const { type } = this.describe(o.paths[0]);
      if (type && isNumericType(type)) this.chart(o.paths[0]);
    }
    this.render();
  }

  /** Whether the single path `path` is observed on its own (what a resource's toggle shows). */
  isObserved(path) {
    return this.observations.some((o) => !o.composite && o.paths.length === 1 && o.paths[0] === path);
  }

  added(path, token) {
    if (this.isObserved(path)) return;
    this.observations.push({ token, paths: [path], composite: false, created_at: serverNow() });
    this.render();
  }

  removed(paths) {
    const key = paths.join(",");
    this.observations = this.observations.filter((o) => o.paths.join(",") !== key);
    this.render();
  }

  render() {
    this.hint.hidden = this.observations.length > 0 || this.charts.size > 0;
    this.list.replaceChildren(...this.observations.map((o) => this.item(o)));
  }

  item(observation) {
    const cancel = h("button", {
      type: "button", class: "btn btn-small", "data-testid": "cancel-observation",
      "aria-label": `Stop observing ${observation.paths.join(", ")}`,
      onclick: async () => {
        cancel.disabled = true;
        await this.onCancel(observation);
        cancel.disabled = false;
      },
    }, "Stop");
    return h("li", { "data-testid": "observation", "data-path": observation.paths.join(",") },
      h("code", {}, observation.paths.join(", ")),
      observation.composite ? h("span", { class: "badge" }, "composite") : null,
      h("span", { class: "muted" }, " since ", timeAgo(observation.created_at)), cancel);
  }

  /** Plot the numeric ones of `values` ([{path, type, value}]) at `time` (epoch seconds). */
  feed(values, time) {
    for (const v of values) {
      if (typeof v.value !== "number" || (v.type && !isNumericType(v.type))) continue;
      const chart = this.chart(v.path);
      const waiting = this.loading.get(v.path);
      if (waiting) waiting.push([time, v.value]);
      else chart.add(time, v.value);
    }
    this.render();
  }

  /** Start a new chart from the server's history of `path`, then what arrived meanwhile. */
  async loadHistory(path, chart) {
    const waiting = [];
    this.loading.set(path, waiting);
    let kept = [];
    try {
      const { data } = await getValueHistory(this.endpoint, path, HISTORY_POINTS);
      kept = data.samples.filter((s) => s.path === path && typeof s.value === "number")
        .map((s) => [s.time, s.value]);
    } catch {
      // No history (values_store off, or the server went away): live points only.
    }
    this.loading.delete(path);
    const fresh = waiting.filter(([t, v]) => !kept.some(
      ([kt, kv]) => kv === v && Math.abs(kt - t) <= SAME_POINT_SECONDS));
    chart.points.splice(0, chart.points.length, ...kept, ...fresh);
    chart.points.sort((a, b) => a[0] - b[0]);
    if (chart.points.length > chart.maxPoints) {
      chart.points.splice(0, chart.points.length - chart.maxPoints);
    }
    chart.render();
    this.render();
  }

  chart(path, saved = null) {
    let chart = this.charts.get(path);
    if (!chart) {
      const key = `${this.endpoint} ${path}`;
      let history = saved;
      if (!history) {
        const { name, units } = this.describe(path);
        history = { endpoint: this.endpoint, title: `${name ?? "Value"} ${path}`,
          units: units ?? "", points: [] };
        histories.set(key, history);
      }
      chart = new LineChart({ path, ...history });
      if (!saved) this.loadHistory(path, chart);
      const clear = h("button", {
        type: "button", class: "btn btn-small btn-quiet", "aria-label": `Remove chart ${path}`,
        onclick: () => {
          chart.element.remove();
          this.charts.delete(path);
          histories.delete(key);
          this.render();
        },
      }, "×");
      chart.element.querySelector("figcaption").append(clear);
      this.charts.set(path, chart);
      this.chartBox.append(chart.element);
    }
    return chart;
  }
}
