// One device: its registration, object tree, live values and activity, kept current by the
// event stream (notifications, sleep/wake, queued requests finishing, deregistration).

import {
  deviceOp, explainError, getLatestValues, getObjects, getObservations, getQueuedRequest,
  getRegistration,
} from "../api.js";
import { absolute, duration, fill, h, serverNow, timeAgo } from "../dom.js";
import { subscribe } from "../events.js";
import { CONTENT_FORMATS, formatScalar, senmlValues } from "../lwm2m.js";
import { statusBadge } from "./devices.js";
import { ActivityLog, LivePanel, panel } from "./live.js";
import { ObjectTree } from "./tree.js";

export function mountDevice(root, endpoint) {
  const page = new DevicePage(endpoint);
  fill(root, page.element);
  page.load();
  return () => page.close();
}

class DevicePage {
  constructor(endpoint) {
    this.endpoint = endpoint;
    this.reg = null;
    this.pending = new Map(); // queued request id -> {slot, label, finish}
    this.log = new ActivityLog();
    this.live = new LivePanel({
      endpoint,
      onCancel: (o) => this.cancel(o.paths.length === 1 && !o.composite ? o.paths[0] : o.paths),
      describe: (path) => this.tree.model(path) ?? {},
    });
    this.tree = new ObjectTree({
      endpoint,
      log: (kind, text) => this.log.add(kind, text),
      live: this.live,
      queued: (slot, label, data, finish) => this.queued(slot, label, data, finish),
      observe: (path, slot) => this.observe(path, slot),
      cancel: (path, slot) => this.cancel(path, slot),
    });
    this.badge = h("span", {}, statusBadge(null));
    this.banner = h("div", { class: "notice", role: "status", hidden: true,
      "data-testid": "device-banner" });
    this.details = h("dl", { class: "details" });
    this.treeNote = h("p", { class: "muted" }, "Loading the object tree…");
    this.element = h("section", { class: "page device", "aria-labelledby": "device-title",
      "data-testid": "device-page", "data-endpoint": endpoint },
    h("div", { class: "page-head" },
      h("a", { href: "#/devices", class: "back" }, "← Devices"),
      h("h1", { id: "device-title" }, endpoint), this.badge,
      h("button", { type: "button", class: "btn btn-quiet", "data-testid": "refresh",
        onclick: () => this.load() }, "Refresh")),
    this.banner,
    h("div", { class: "device-grid" },
      h("div", { class: "col-main" },
        panel("Objects", "objects", this.treeNote, this.tree.element)),
      h("div", { class: "col-side" },
        this.live.element,
        panel("Registration", "registration", this.details),
        this.log.element)));
    this.unsubscribe = subscribe((name, ev) => this.onEvent(name, ev));
  }

  close() {
    this.unsubscribe();
  }

  async load() {
    try {
      const [reg, objects] = await Promise.all([
        this.fetchRegistration(), getObjects(this.endpoint)]);
      if (reg) this.setRegistration(reg.data);
      this.tree.render(objects.data);
      this.treeNote.hidden = true;
      await Promise.all([this.loadLatest(), this.refreshObservations()]);
    } catch (error) {
      if (error.status === 404) {
        this.setRegistration(null, `${this.endpoint} is not registered. This page updates by `
          + "itself when it registers.");
        this.treeNote.textContent = "No object tree while the device is not registered.";
        this.treeNote.hidden = false;
        this.tree.render([]);
      } else {
        this.showBanner("error", `Could not load the device. ${explainError(error)}`);
      }
    }
  }

  /** The last known values the server kept, instead of "—" until something is read. */
  async loadLatest() {
    try {
      const { data } = await getLatestValues(this.endpoint);
      this.tree.applyValues(data.values, { fresh: false });
    } catch {
      // The server keeps no values (values_store off): the rows wait for a Read.
    }
  }

  async refreshObservations() {
    try {
      const { data } = await getObservations(this.endpoint);
      this.live.set(data);
    } catch {
      this.live.set([]);
    }
    this.tree.syncObserveButtons();
  }

  /**
   * The registration as the server has it now, or null when a request started after this one
   * has been answered already: an answer that left before an event must not undo it (the
   * device went to sleep while the page loaded).
   */
  async fetchRegistration() {
    const asked = this.regAsked = (this.regAsked ?? 0) + 1;
    let reg = null;
    let failure = null;
    try {
      reg = await getRegistration(this.endpoint);
    } catch (error) {
      failure = error;
    }
    if (asked < (this.regAnswered ?? 0)) return null;
    this.regAnswered = asked;
    if (failure) throw failure;
    return reg;
  }

  async refreshRegistration() {
    try {
      const reg = await this.fetchRegistration();
      if (reg) this.setRegistration(reg.data);
    } catch (error) {
      if (error.status === 404) this.setRegistration(null, `${this.endpoint} is no longer registered.`);
    }
  }

  showBanner(kind, text) {
    this.banner.hidden = !text;
    this.banner.className = `notice notice-${kind}`;
    this.banner.textContent = text ?? "";
  }

  setRegistration(reg, goneText) {
    this.reg = reg;
    fill(this.badge, statusBadge(reg));
    if (!reg) {
      this.showBanner("warn", goneText);
      fill(this.details, h("dt", {}, "Status"), h("dd", {}, "not registered"));
      return;
    }
    if (reg.queue_mode && !reg.awake) {
      this.showBanner("info", "This device sleeps (queue mode). Requests are queued and sent "
        + "when it next wakes up; their results appear here.");
    } else {
      this.showBanner("info", null);
    }
    const formats = reg.content_formats.map((f) => CONTENT_FORMATS[f] ?? f).join(", ");
    const rows = [
      ["Endpoint", reg.endpoint],
      ["Registration", h("code", {}, reg.id)],
      ["Address", h("code", {}, `${reg.transport} ${reg.address}`)],
      ["LwM2M version", reg.lwm2m_version],
      ["Binding", `${reg.binding}${reg.queue_mode ? " with queue mode" : ""}`],
      ["Lifetime", duration(reg.lifetime)],
      ["Registered", timeAgo(reg.registered_at)],
      ["Last update", timeAgo(reg.updated_at)],
      ["Expires", h("span", { title: absolute(reg.expires_at) }, timeAgo(reg.expires_at))],
      ["Content formats", formats || "—"],
      ["Objects", h("span", { class: "mono" }, reg.objects.map((o) => o.path
        + (o.version ? ` (v${o.version})` : "")).join(" "))],
      reg.identity ? ["Identity", reg.identity] : null,
      reg.sms ? ["SMS", reg.sms] : null,
      ...Object.entries(reg.extra ?? {}).map(([k, v]) => [k, v]),
    ].filter(Boolean);
    fill(this.details, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  // --- observations -------------------------------------------------------------------------

  observe(path, slot) {
    return this.tree.run(slot, `Observe ${path}`,
      () => deviceOp(this.endpoint, "observe", { path }),
      (data) => {
        this.live.added(path, data.token);
        this.tree.syncObserveButtons();
        this.tree.applyValues(data.values);
        this.live.feed(this.typed(data.values), serverNow());
        return `observing; notifications are plotted under Live values (${data.code})`;
      });
  }

  async cancel(target, slot) {
    const paths = Array.isArray(target) ? target : [target];
    const label = `Stop observing ${paths.join(", ")}`;
    slot?.busy(label);
    try {
      await deviceOp(this.endpoint, "cancel-observation",
        Array.isArray(target) ? { paths: target } : { path: target });
      slot?.show("ok", "observation cancelled");
      this.log.add("ok", `${label}: cancelled`);
    } catch (error) {
      // 404: the server no longer has it (e.g. the device reset it); the toggle is stale.
      const text = error.status === 404 ? "it was no longer observed" : explainError(error);
      slot?.show(error.status === 404 ? "ok" : "error", text);
      this.log.add(error.status === 404 ? "event" : "error", `${label}: ${text}`);
    }
    this.live.removed(paths);
    this.tree.syncObserveButtons();
  }

  /** Values with the model's type and units, for charts (notifications carry them too). */
  typed(values) {
    return values.map((v) => ({ ...(this.tree.model(v.path) ?? {}), ...v }));
  }

  // --- queued requests (sleeping devices) ---------------------------------------------------

  queued(slot, label, data, finish) {
    const text = `queued as ${data.request_id}: will be sent when the device wakes up`;
    slot.show("queued", text);
    this.log.add("queued", `${label}: ${text}`);
    this.pending.set(data.request_id, { slot, label, finish });
  }

  /** A queued request finished (event or poll): show its result where it was started. */
  finishQueued(request) {
    const entry = this.pending.get(request.request_id);
    if (!entry || request.state === "pending") return;
    this.pending.delete(request.request_id);
    const { slot, label, finish } = entry;
    const result = request.result ?? {};
    if (request.state === "done") {
      const code = result.code ?? "";
      finish({
        code, success: code.startsWith("2."), diagnostic: result.diagnostic,
        values: this.typed(senmlValues(result.senml)), token: null, queued: request.request_id,
      });
      return;
    }
    const text = request.state === "expired"
      ? `queued request ${request.request_id} expired before the device woke up`
      : `queued request ${request.request_id} failed: ${result.error ?? "unknown error"}`;
    slot.show("error", text);
    this.log.add("error", `${label}: ${text}`);
  }

  /** After reconnecting, ask about queued requests whose events may have been missed. */
  async pollPending() {
    for (const id of [...this.pending.keys()]) {
      try {
        const { data } = await getQueuedRequest(id);
        this.finishQueued(data);
      } catch {
        // still unknown: keep waiting for its event
      }
    }
  }

  // --- events -------------------------------------------------------------------------------

  onEvent(name, ev) {
    if (name === "resync") {
      this.refreshRegistration();
      this.refreshObservations();
      this.pollPending();
      return;
    }
    if (ev.endpoint !== this.endpoint) return;
    switch (name) {
      case "registered":
      case "end-device-added":
      case "end-device-changed":
        this.log.add("event", name === "end-device-changed"
          ? "Its gateway announced new objects: reloading them"
          : "Registered (again): reloading its objects");
        this.load();
        break;
      case "updated":
        this.log.add("event", `Registration updated from ${ev.address ?? "its address"}`);
        this.refreshRegistration();
        break;
      case "deregistered":
      case "expired":
      case "end-device-removed": // behind a gateway: it dropped it, or it went itself
        if (this.reg && ev.registration_id && ev.registration_id !== this.reg.id) break;
        this.log.add("event", name === "expired"
          ? "Registration expired: the device stopped updating it"
          : name === "deregistered" ? "Deregistered by the device"
            : `Gone from its gateway (${ev.reason})`);
        this.setRegistration(null, `${this.endpoint} ${name === "expired"
          ? "let its registration expire" : "deregistered"}. This page updates by itself when `
          + "it registers again.");
        this.live.set([]);
        this.tree.syncObserveButtons();
        break;
      case "awake":
      case "sleeping":
        // Patched at once, then asked for again: an answer that left before this event
        // (the page loading, or a resync) must not undo it, and before the registration is
        // loaded there is nothing to patch.
        if (this.reg) this.setRegistration({ ...this.reg, awake: name === "awake" });
        this.refreshRegistration();
        this.log.add("event", name === "awake"
          ? "Woke up: queued requests are being sent"
          : "Went to sleep: new requests will be queued");
        break;
      case "notification":
        this.onValues(ev.values ?? [], ev.time, `Notification ${(ev.paths ?? []).join(", ")}`);
        break;
      case "send":
        for (const group of ev.groups ?? []) {
          // SenML times below 2^28 are relative to now (the event's time).
          const t = group.timestamp;
          const at = t == null ? ev.time : Math.abs(t) < 2 ** 28 ? ev.time + t : t;
          this.onValues(group.values, at, "Send");
        }
        break;
      case "queued-request":
        this.finishQueued(ev);
        break;
      case "observation-ended":
        this.log.add("event", `Observation of ${(ev.paths ?? []).join(", ")} ended (${ev.reason})`);
        this.live.removed(ev.paths ?? []);
        this.tree.syncObserveButtons();
        break;
      default:
        break;
    }
  }

  onValues(values, time, label) {
    this.tree.applyValues(values.map((v) => ({ time, ...v })));
    this.live.feed(this.typed(values), time ?? serverNow());
    const shown = values.slice(0, 3).map((v) => `${v.name ?? v.path} = ${formatScalar(v.value, v.type)}${v.units ? ` ${v.units}` : ""}`);
    if (values.length > 3) shown.push(`… ${values.length - 3} more`);
    this.log.add("event", `${label}: ${shown.join(", ") || "no values"}`);
  }
}
