// A small live line chart in SVG: one series of (time, value) points, newest on the right.
//
// The SVG uses a fixed coordinate system (viewBox) and scales with its container, so the
// layout is done once here in "chart units" and CSS decides the on-screen size.

import { clockTime, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 380;
const HEIGHT = 150;
const PAD = { left: 52, right: 14, top: 12, bottom: 24 };

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Round-number formatting for axis labels: enough digits to tell ticks apart. */
function label(value, span) {
  const digits = span >= 100 ? 0 : span >= 1 ? 2 : 4;
  return Number(value.toFixed(digits)).toString();
}

export class LineChart {
  /** `title` names the series (e.g. "Sensor Value /3303/0/5700"), `units` may be empty. */
  constructor({ path, title, units = "", maxPoints = 300, points = [] }) {
    this.path = path;
    this.title = title;
    this.units = units;
    this.maxPoints = maxPoints;
    this.points = points; // shared with the caller, who may keep it across page visits
    this.svg = svg("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart-svg",
      preserveAspectRatio: "xMidYMid meet",
    });
    this.latest = h("span", { class: "chart-latest", "data-testid": "chart-latest" }, "—");
    this.element = h("figure", {
      class: "chart", "data-testid": "chart", "data-path": path, "data-count": 0,
    },
    h("figcaption", {},
      h("span", { class: "chart-title" }, title), " ", this.latest),
    this.svg);
    this.render();
  }

  /** Add a point (time in epoch seconds); non-finite values are ignored. */
  add(time, value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return;
    this.points.push([time, value]);
    if (this.points.length > this.maxPoints) this.points.splice(0, this.points.length - this.maxPoints);
    this.render();
  }

  render() {
    const { points } = this;
    this.element.dataset.count = points.length;
    const last = points.at(-1);
    this.latest.textContent = last ? `${last[1]}${this.units ? ` ${this.units}` : ""}` : "—";
    this.svg.setAttribute("aria-label", last
      ? `${this.title}: ${points.length} values, latest ${this.latest.textContent}`
      : `${this.title}: no values yet`);
    this.svg.replaceChildren(...this.frame(), ...this.series());
  }

  /** The value range shown: the data's, padded so a flat line sits mid-height. */
  range() {
    const values = this.points.map((p) => p[1]);
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (lo === hi) {
      const pad = Math.abs(lo) * 0.1 || 1;
      lo -= pad;
      hi += pad;
    }
    return [lo, hi];
  }

  scale() {
    const [lo, hi] = this.range();
    const t0 = this.points[0][0];
    const t1 = Math.max(this.points.at(-1)[0], t0 + 1);
    const plotW = WIDTH - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    return {
      lo, hi, t0, t1,
      x: (t) => PAD.left + ((t - t0) / (t1 - t0)) * plotW,
      y: (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * plotH,
    };
  }

  frame() {
    const bottom = HEIGHT - PAD.bottom;
    const parts = [
      svg("rect", { x: PAD.left, y: PAD.top, width: WIDTH - PAD.left - PAD.right,
        height: bottom - PAD.top, class: "chart-bg" }),
    ];
    if (this.points.length === 0) {
      parts.push(svg("text", { x: WIDTH / 2, y: HEIGHT / 2, class: "chart-empty",
        "text-anchor": "middle" }, "waiting for values…"));
      return parts;
    }
    const s = this.scale();
    const span = s.hi - s.lo;
    for (const fraction of [0, 0.5, 1]) {
      const v = s.lo + span * fraction;
      const y = s.y(v);
      parts.push(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y,
        class: "chart-grid" }));
      parts.push(svg("text", { x: PAD.left - 6, y: y + 4, "text-anchor": "end",
        class: "chart-axis" }, label(v, span)));
    }
    parts.push(svg("text", { x: PAD.left, y: HEIGHT - 6, class: "chart-axis" },
      clockTime(s.t0)));
    if (this.points.length > 1) {
      parts.push(svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, "text-anchor": "end",
        class: "chart-axis" }, clockTime(s.t1)));
    }
    return parts;
  }

  series() {
    if (this.points.length === 0) return [];
    const s = this.scale();
    const coords = this.points.map(([t, v]) => `${s.x(t).toFixed(1)},${s.y(v).toFixed(1)}`);
    const [lastT, lastV] = this.points.at(-1);
    const parts = [];
    if (coords.length > 1) {
      parts.push(svg("polyline", { points: coords.join(" "), class: "chart-line" }));
    }
    parts.push(svg("circle", { cx: s.x(lastT), cy: s.y(lastV), r: 3.5, class: "chart-dot" }));
    return parts;
  }
}
