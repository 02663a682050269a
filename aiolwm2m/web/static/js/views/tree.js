// The device page's object tree: objects, instances and resources from the object model,
// with Read / Write / Execute / Observe on each resource and Read on each instance.

import { deviceOp, explainError, writeOpaqueFile } from "../api.js";
import { clockTime, fill, h, serverNow, timeAgo } from "../dom.js";
import {
  canExecute, canRead, canWrite, describeCode, formatResource, formatScalar, resourcePathOf,
  valueEditor,
} from "../lwm2m.js";

/**
 * Where one operation's outcome is shown: a feedback line next to the buttons that started
 * it (disabled while it runs, with a running clock, since a device may take a minute or
 * more to answer through retransmissions).
 */
class Slot {
  constructor(feedback, buttons) {
    this.feedback = feedback;
    this.buttons = buttons;
    this.timer = null;
  }

  busy(label) {
    const started = Date.now();
    this.buttons.forEach((b) => { b.disabled = true; });
    const tick = () => {
      const s = Math.round((Date.now() - started) / 1000);
      this.show("busy", s >= 2 ? `${label}… ${s} s` : `${label}…`, false);
    };
    tick();
    this.timer = setInterval(tick, 1000);
  }

  show(state, text, done = true) {
    if (done) {
      clearInterval(this.timer);
      this.buttons.forEach((b) => { b.disabled = false; });
    }
    this.feedback.dataset.state = state;
    this.feedback.textContent = text;
  }
}

export class ObjectTree {
  /**
   * ctx: {endpoint, log(kind, text), live (LivePanel), queued(slot, label, data, finish),
   * observe(path, slot), cancel(path, slot)}.
   */
  constructor(ctx) {
    this.ctx = ctx;
    this.cells = new Map(); // resource path -> {resource, value, slot, observe, current, row}
    this.models = new Map(); // "oid/rid" -> resource model
    this.extras = new Map(); // instance path -> list for values without a model
    this.element = h("div", { class: "tree", "data-testid": "object-tree" });
  }

  render(objects) {
    this.cells.clear();
    this.extras.clear();
    this.models.clear();
    for (const obj of objects) {
      for (const r of obj.resources) this.models.set(`${obj.id}/${r.id}`, r);
    }
    this.element.replaceChildren(...objects.map((o) => this.objectBlock(o)));
    if (objects.length === 0) {
      this.element.append(h("p", { class: "muted" }, "The device registered no objects."));
    }
  }

  /** The model of the resource a value path belongs to (name, type, units), if known. */
  model(path) {
    const [, oid, , rid] = path.split("/");
    return this.models.get(`${oid}/${rid}`) ?? null;
  }

  objectBlock(obj) {
    const count = obj.instances.length;
    const summary = h("summary", {},
      h("span", { class: "obj-name" }, obj.name ?? `Object ${obj.id}`), " ",
      h("code", {}, `/${obj.id}`),
      h("span", { class: "muted" },
        `${obj.version ? ` · v${obj.version}` : ""} · ${count} instance${count === 1 ? "" : "s"}`));
    const body = [];
    if (obj.description) body.push(h("p", { class: "muted obj-desc" }, obj.description));
    if (!obj.name) {
      body.push(h("p", { class: "notice" }, "No object model is loaded for this object, so its "
        + "resources are unknown. Read an instance to see its raw values, or start the server "
        + "with --model-dir pointing at its DDF XML file."));
    }
    if (count === 0) body.push(h("p", { class: "muted" }, "No instances."));
    for (const iid of obj.instances) body.push(this.instanceBlock(obj, iid));
    // Security, Server and Access Control (0-2) are account plumbing: start them folded so
    // the device's own objects are what a user sees first.
    return h("details", { class: "object", open: obj.id > 2, "data-testid": "object",
      "data-path": `/${obj.id}` }, summary, ...body);
  }

  instanceBlock(obj, iid) {
    const path = `/${obj.id}/${iid}`;
    const feedback = h("span", { class: "feedback", role: "status", "data-testid": "feedback" });
    const read = h("button", { type: "button", class: "btn btn-small", "data-testid": "read-instance",
      "aria-label": `Read all resources of ${path}` }, "Read all");
    const slot = new Slot(feedback, [read]);
    read.addEventListener("click", () => this.read(path, slot, true));
    const extras = h("dl", { class: "extras", hidden: true });
    this.extras.set(path, extras);
    const rows = obj.resources.flatMap((r) => this.resourceRows(obj, iid, r));
    return h("div", { class: "instance", "data-testid": "instance", "data-path": path },
      h("div", { class: "instance-head" },
        h("h3", {}, `Instance ${iid} `, h("code", {}, path)), read, feedback),
      rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "table resources" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col", class: "rid" }, "ID"), h("th", { scope: "col" }, "Resource"),
          h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "Actions"))),
        h("tbody", {}, rows))) : null,
      extras);
  }

  resourceRows(obj, iid, res) {
    const path = `/${obj.id}/${iid}/${res.id}`;
    const label = `${res.name} (${path})`;
    const value = h("span", { class: "value", "data-testid": "value" }, "—");
    // When the value shown was reported (read, notified or sent), kept relative.
    const seen = h("span", { class: "seen muted", "data-testid": "seen" });
    const feedback = h("div", { class: "feedback", role: "status", "data-testid": "feedback" });
    const buttons = [];
    const button = (text, testid, aria, onclick) => {
      const b = h("button", { type: "button", class: "btn btn-small", "data-testid": testid,
        "aria-label": `${aria} ${label}`, onclick }, text);
      buttons.push(b);
      return b;
    };
    const editorRow = h("tr", { class: "editor-row", hidden: true, "data-testid": "editor",
      "data-path": path });
    const cell = { resource: res, path, label, value, seen, seenAt: null, current: undefined,
      editorRow, observe: null };
    this.cells.set(path, cell);

    const actions = [];
    if (canRead(res)) actions.push(button("Read", "read", "Read", () => this.read(path, cell.slot)));
    if (canWrite(res)) {
      actions.push(button("Write…", "write", "Write", () => this.toggleEditor(cell, "write")));
    }
    if (canExecute(res)) {
      actions.push(button("Execute…", "execute", "Execute", () => this.toggleEditor(cell, "execute")));
    }
    if (canRead(res)) {
      cell.observe = button("Observe", "observe", "Observe", () => this.toggleObserve(cell));
      cell.observe.setAttribute("aria-pressed", "false");
      actions.push(cell.observe);
    }
    cell.slot = new Slot(feedback, buttons);

    const meta = [res.type !== "none" ? res.type : null, res.units, res.multiple ? "multiple" : null,
      res.mandatory ? "mandatory" : null].filter(Boolean).join(" · ");
    cell.row = h("tr", { "data-testid": "resource", "data-path": path },
      h("td", { class: "rid" }, res.id),
      h("th", { scope: "row" },
        h("span", { class: "res-name", title: res.description ?? "" }, res.name),
        h("span", { class: "ops", "aria-label": `operations ${res.operations || "none"}` },
          [...(res.operations || "–")].map((op) => h("span", { class: `op op-${op}` }, op))),
        h("div", { class: "muted meta" }, meta, res.range ? ` · range ${res.range}` : "")),
      h("td", { class: "value-cell" }, value, seen, feedback),
      h("td", { class: "actions" }, actions));
    return [cell.row, editorRow];
  }

  // --- operations ---------------------------------------------------------------------------

  /** Run one device operation and show its outcome in `slot` and the activity log. */
  async run(slot, label, call, finish) {
    slot.busy(label);
    let outcome;
    try {
      outcome = await call();
    } catch (error) {
      this.fail(slot, label, explainError(error));
      return;
    }
    if (outcome.status === 202) {
      this.ctx.queued(slot, label, outcome.data, (data) => this.settle(slot, label, data, finish));
      return;
    }
    this.settle(slot, label, outcome.data, finish);
  }

  /** An OperationResult (or the same shape from a queued request) arrived. */
  settle(slot, label, data, finish) {
    if (!data.success) {
      this.fail(slot, label, describeCode(data.code, data.diagnostic));
      return;
    }
    // `finish` returns the feedback text, or [feedback, log text] when they differ.
    const out = finish(data);
    let [shown, logged] = Array.isArray(out) ? out : [out, out];
    if (data.queued) {
      shown = `delivered when the device woke up: ${shown}`;
      logged = `delivered when the device woke up: ${logged}`;
    }
    slot.show("ok", shown);
    this.ctx.log("ok", `${label}: ${logged}`);
  }

  fail(slot, label, text) {
    slot.show("error", text);
    this.ctx.log("error", `${label}: ${text}`);
  }

  read(path, slot, instance = false) {
    const op = () => deviceOp(this.ctx.endpoint, "read", { path });
    return this.run(slot, `Read ${path}`, op, (data) => {
      this.applyValues(data.values);
      if (instance) this.markPresent(path, data.values);
      const when = `${data.code} at ${clockTime(serverNow())}`;
      if (instance) return `${data.values.length} values · ${when}`;
      return [when, `${formatResource(path, data.values) ?? "no value"} (${data.code})`];
    });
  }

  /** Write `value`: JSON text, or a File whose bytes go as they are (Opaque resources). */
  write(cell, value) {
    const call = value instanceof Blob
      ? () => writeOpaqueFile(this.ctx.endpoint, cell.path, value)
      : () => deviceOp(this.ctx.endpoint, "write",
        `{"path":${JSON.stringify(cell.path)},"mode":"replace","value":${value}}`);
    return this.run(cell.slot, `Write ${cell.path}`, call,
      (data) => {
        cell.editorRow.hidden = true;
        // Read back what the device now holds, rather than assuming the write took as sent.
        if (canRead(cell.resource)) setTimeout(() => this.read(cell.path, cell.slot), 0);
        return `written (${describeCode(data.code)})`;
      });
  }

  execute(cell, args) {
    return this.run(cell.slot, `Execute ${cell.path}`,
      () => deviceOp(this.ctx.endpoint, "execute", { path: cell.path, arguments: args }),
      (data) => {
        cell.editorRow.hidden = true;
        return `executed (${describeCode(data.code)})`;
      });
  }

  toggleObserve(cell) {
    if (this.ctx.live.isObserved(cell.path)) this.ctx.cancel(cell.path, cell.slot);
    else this.ctx.observe(cell.path, cell.slot);
  }

  /** Reflect the server's observations on the Observe toggles. */
  syncObserveButtons() {
    for (const cell of this.cells.values()) {
      if (!cell.observe) continue;
      const on = this.ctx.live.isObserved(cell.path);
      cell.observe.setAttribute("aria-pressed", String(on));
      cell.observe.textContent = on ? "Observing" : "Observe";
      // The accessible name starts with the visible text (speech control users say it).
      cell.observe.setAttribute("aria-label", `${on ? "Observing" : "Observe"} ${cell.label}`);
      cell.observe.title = on ? "Observing: click to cancel the observation" : "";
      cell.row.classList.toggle("observed", on);
    }
  }

  // --- write / execute forms ------------------------------------------------------------------

  toggleEditor(cell, mode) {
    const row = cell.editorRow;
    if (!row.hidden && row.dataset.mode === mode) {
      row.hidden = true;
      return;
    }
    row.dataset.mode = mode;
    const form = mode === "write" ? this.writeForm(cell) : this.executeForm(cell);
    row.replaceChildren(h("td", { colspan: 4 }, form));
    row.hidden = false;
    form.querySelector("input, select")?.focus();
  }

  writeForm(cell) {
    const id = `write-${cell.path.replaceAll("/", "-")}`;
    const editor = valueEditor(cell.resource, cell.current, id);
    const error = h("p", { class: "form-error", role: "alert", hidden: true,
      "data-testid": "write-error" });
    if (!editor) {
      return h("p", { class: "notice" }, `${cell.resource.type} values cannot be written `
        + "through the REST API yet.");
    }
    const form = h("form", { class: "inline-form", novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        let json;
        try {
          json = editor.read();
        } catch (e) {
          error.textContent = e.message;
          error.hidden = false;
          return;
        }
        error.hidden = true;
        this.write(cell, json);
      } },
    h("label", { for: id }, `New value for ${cell.resource.name}`,
      cell.resource.units ? ` (${cell.resource.units})` : ""),
    editor.element,
    h("button", { type: "submit", class: "btn btn-primary btn-small",
      "data-testid": "write-submit" }, "Write"),
    h("button", { type: "button", class: "btn btn-small btn-quiet",
      onclick: () => { cell.editorRow.hidden = true; } }, "Cancel"),
    error,
    cell.resource.range ? h("p", { class: "muted" }, `Allowed: ${cell.resource.range}`) : null);
    return form;
  }

  executeForm(cell) {
    const id = `exec-${cell.path.replaceAll("/", "-")}`;
    const args = h("input", { id, class: "input input-wide", type: "text",
      "data-testid": "execute-arguments", placeholder: "optional, e.g. 0='on',1" });
    return h("form", { class: "inline-form",
      onsubmit: (event) => {
        event.preventDefault();
        this.execute(cell, args.value.trim());
      } },
    h("label", { for: id }, `Arguments for ${cell.resource.name}`),
    args,
    h("button", { type: "submit", class: "btn btn-primary btn-small",
      "data-testid": "execute-submit" }, "Execute"),
    h("button", { type: "button", class: "btn btn-small btn-quiet",
      onclick: () => { cell.editorRow.hidden = true; } }, "Cancel"),
    cell.resource.description ? h("p", { class: "muted" }, cell.resource.description) : null);
  }

  // --- values ---------------------------------------------------------------------------------

  /**
   * Show values ([{path, value, type?, units?, time?}]) in their resource rows (or as
   * extras), with when they were reported (`time`, epoch seconds; default now). Values
   * older than what a row shows are ignored; `fresh` ones are highlighted.
   */
  applyValues(values, { fresh = true } = {}) {
    const byResource = new Map();
    for (const v of values) {
      const rpath = resourcePathOf(v.path);
      if (!byResource.has(rpath)) byResource.set(rpath, []);
      byResource.get(rpath).push(v);
    }
    for (const [rpath, vs] of byResource) {
      const cell = this.cells.get(rpath);
      if (!cell) {
        this.showExtra(rpath, vs);
        continue;
      }
      const time = Math.max(...vs.map((v) => v.time ?? serverNow()));
      if (cell.seenAt !== null && time < cell.seenAt) continue;
      cell.seenAt = time;
      fill(cell.seen, timeAgo(time));
      const typed = vs.map((v) => ({ type: cell.resource.type, units: cell.resource.units, ...v }));
      cell.value.textContent = formatResource(rpath, typed) ?? "—";
      cell.value.classList.remove("flash");
      if (fresh) {
        void cell.value.offsetWidth; // restart the highlight animation
        cell.value.classList.add("flash");
      }
      cell.row.classList.remove("absent");
      // A fresh value makes an earlier error on this row stale.
      if (cell.slot.feedback.dataset.state === "error") cell.slot.show("ok", "");
      cell.current = cell.resource.multiple
        ? Object.fromEntries(vs.map((v) => [v.path.slice(rpath.length + 1), v.value]))
        : vs[0].value;
    }
  }

  /** Values of resources without a model row, listed under their instance. */
  showExtra(rpath, vs) {
    const list = this.extras.get(rpath.split("/").slice(0, 3).join("/"));
    if (!list) return;
    const key = `extra-${rpath}`;
    list.querySelectorAll(`[data-key="${key}"]`).forEach((el) => el.remove());
    list.append(h("dt", { "data-key": key }, h("code", {}, rpath)),
      h("dd", { "data-key": key }, vs.map((v) => formatScalar(v.value, v.type)).join(", ")));
    list.hidden = false;
  }

  /** After reading a whole instance, dim the resources the device does not have. */
  markPresent(instancePath, values) {
    const present = new Set(values.map((v) => resourcePathOf(v.path)));
    for (const [path, cell] of this.cells) {
      if (path.startsWith(`${instancePath}/`) && canRead(cell.resource)) {
        cell.row.classList.toggle("absent", !present.has(path));
      }
    }
  }
}
