// Firmware: images (upload, delete), campaigns (start, follow, pause, resume, cancel) and,
// per campaign, every device's progress, kept current by the live event stream.
//
// #/firmware lists images and campaigns; #/firmware/<campaign id> shows one campaign.

import { api, explainError } from "../api.js";
import { coalesce, fill, h, timeAgo } from "../dom.js";
import { subscribe } from "../events.js";

const enc = encodeURIComponent;
const base = "/api/firmware";

// How far along an update is, for its bar: the state sets the span, the download fills it.
const SPAN = {
  pending: [0, 0], retrying: [0, 0], starting: [2, 5], downloading: [5, 75],
  downloaded: [80, 80], updating: [85, 85], verifying: [95, 95], succeeded: [100, 100],
};

export function jobPercent(job) {
  const span = SPAN[job.state];
  if (!span) return Math.round((job.progress ?? 0) * 100); // failed, cancelled: where it stopped
  const [start, width] = span;
  return job.state === "downloading" ? Math.round(start + width * (job.progress ?? 0)) : start;
}

function bytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function stateBadge(state, testid = "state") {
  const kind = { succeeded: "badge-online", finished: "badge-online", running: "badge-awake",
    failed: "badge-gone", stopped: "badge-gone", cancelled: "badge-sleeping",
    paused: "badge-sleeping" }[state] ?? "";
  return h("span", { class: `badge ${kind}`, "data-testid": testid }, state);
}

function bar(percent, label, testid) {
  return h("progress", { max: 100, value: percent, "data-testid": testid,
    "aria-label": label, title: `${percent}%` }, `${percent}%`);
}

export function mountFirmware(root, campaignId) {
  return campaignId ? mountCampaign(root, campaignId) : mountOverview(root);
}

// --- images and campaigns -----------------------------------------------------------------

function mountOverview(root) {
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true });
  const images = h("tbody", {});
  const campaigns = h("tbody", {});
  const imageSelect = h("select", { class: "input", id: "fw-campaign-image",
    "data-testid": "fw-campaign-image", required: true });
  let loaded = [];

  const upload = uploadForm(async () => load());
  const create = campaignForm(imageSelect, (id) => { location.hash = `#/firmware/${enc(id)}`; });

  fill(root, h("section", { class: "page", "aria-labelledby": "firmware-title" },
    h("div", { class: "page-head" }, h("h1", { id: "firmware-title" }, "Firmware")),
    h("p", { class: "muted" }, "Upload an image, then start a campaign: each device "
      + "downloads it from this server (or has it pushed), installs it, and is checked "
      + "for the new version when it comes back."),
    error,
    h("div", { class: "two-col" },
      h("div", {},
        h("h2", {}, "Campaigns"),
        h("div", { class: "table-wrap" }, h("table", { class: "table",
          "data-testid": "fw-campaign-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Campaign"),
          h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Progress"),
          h("th", { scope: "col" }, "Devices"), h("th", { scope: "col" }, "Started"))),
        campaigns)),
        h("h2", {}, "Images"),
        h("div", { class: "table-wrap" }, h("table", { class: "table",
          "data-testid": "fw-image-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"),
          h("th", { scope: "col" }, "Version"), h("th", { scope: "col" }, "Size"),
          h("th", { scope: "col" }, "For"), h("th", { scope: "col" }, "SHA-256"),
          h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
        images))),
      h("div", {}, create, upload))));

  async function load() {
    try {
      const [{ data: imgs }, { data: camps }] = await Promise.all([
        api("GET", `${base}/images`), api("GET", `${base}/campaigns`)]);
      loaded = imgs;
      fill(images, imgs.length ? imgs.map(imageRow) : h("tr", {}, h("td", { colspan: 6,
        class: "empty", "data-testid": "fw-images-empty" }, "No images yet: upload one.")));
      fill(campaigns, camps.length ? camps.map(campaignRow) : h("tr", {}, h("td", {
        colspan: 5, class: "empty" }, "No campaigns yet.")));
      fill(imageSelect, loaded.map((i) => h("option", { value: i.sha256 },
        `${i.name} ${i.version} (${bytes(i.size)})`)));
      error.hidden = true;
    } catch (e) {
      if (e.status === 404) {
        error.textContent = "This server runs without the firmware service (no /api/firmware).";
      } else error.textContent = `Could not load firmware. ${explainError(e)}`;
      error.hidden = false;
    }
  }

  function imageRow(i) {
    const remove = h("button", { type: "button", class: "btn btn-small btn-danger",
      "data-testid": "fw-image-delete" }, "Delete");
    remove.addEventListener("click", async () => {
      try {
        await api("DELETE", `${base}/images/${i.sha256}`);
        await load();
      } catch (e) {
        error.textContent = explainError(e);
        error.hidden = false;
      }
    });
    return h("tr", { "data-testid": "fw-image-row", "data-sha": i.sha256 },
      h("th", { scope: "row" }, i.name), h("td", {}, i.version), h("td", {}, bytes(i.size)),
      h("td", {}, i.device_types.length ? i.device_types.join(", ") : "any"),
      h("td", { class: "mono", title: i.sha256 }, `${i.sha256.slice(0, 12)}…`),
      h("td", { class: "actions" }, remove));
  }

  function campaignRow(c) {
    const percent = Math.round(c.progress * 100);
    return h("tr", { "data-testid": "fw-campaign-row", "data-id": c.id },
      h("th", { scope: "row" }, h("a", { href: `#/firmware/${enc(c.id)}`,
        "data-testid": "fw-campaign-link" }, c.name)),
      h("td", {}, stateBadge(c.state)),
      h("td", {}, bar(percent, `${c.name}: ${percent}%`, "fw-campaign-progress")),
      h("td", {}, String(c.devices)), h("td", {}, timeAgo(c.created_at)));
  }

  const refresh = coalesce(load);
  const unsubscribe = subscribe((name) => {
    if (name === "firmware-campaign" || name === "resync") refresh();
  });
  load();
  return unsubscribe;
}

function uploadForm(done) {
  const file = h("input", { type: "file", id: "fw-upload-file", "data-testid": "fw-upload-file",
    required: true });
  const name = h("input", { class: "input", id: "fw-upload-name", "data-testid": "fw-upload-name",
    required: true, maxlength: 200 });
  const version = h("input", { class: "input", id: "fw-upload-version",
    "data-testid": "fw-upload-version", required: true, maxlength: 100 });
  const types = h("input", { class: "input", id: "fw-upload-types",
    "data-testid": "fw-upload-types", placeholder: "any" });
  const feedback = h("p", { class: "feedback", role: "status", "data-testid": "fw-upload-feedback" });
  const form = h("form", { class: "panel", "data-testid": "fw-upload-form" },
    h("h2", {}, "Upload an image"),
    field("fw-upload-file", "Image file", file),
    field("fw-upload-name", "Name", name),
    field("fw-upload-version", "Version (what /3/0/3 reports once installed)", version),
    field("fw-upload-types", "Device types (/3/0/17), comma-separated", types),
    h("button", { type: "submit", class: "btn btn-primary", "data-testid": "fw-upload-submit" },
      "Upload"), feedback);
  file.addEventListener("change", () => {
    if (file.files[0] && !name.value) name.value = file.files[0].name.replace(/\.[^.]*$/, "");
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) return;
    feedback.textContent = `Uploading ${bytes(chosen.size)}…`;
    try {
      const { status, data } = await api("POST", `${base}/images`, {
        query: { name: name.value, version: version.value, device_types: types.value,
          size: chosen.size }, raw: chosen });
      feedback.textContent = status === 201 ? `Stored: sha256 ${data.sha256}`
        : `Already stored (sha256 ${data.sha256}).`;
      form.reset();
      await done();
    } catch (e) {
      feedback.textContent = explainError(e);
    }
  });
  return form;
}

function campaignForm(imageSelect, created) {
  const name = h("input", { class: "input", id: "fw-campaign-name",
    "data-testid": "fw-campaign-name", required: true, maxlength: 200 });
  const endpoints = h("textarea", { class: "input", id: "fw-campaign-endpoints", rows: 2,
    "data-testid": "fw-campaign-endpoints", placeholder: "dev-1, dev-2 (or a pattern below)" });
  const group = h("input", { class: "input", id: "fw-campaign-group",
    "data-testid": "fw-campaign-group", placeholder: "line-2", maxlength: 200 });
  const pattern = h("input", { class: "input", id: "fw-campaign-pattern",
    "data-testid": "fw-campaign-pattern", placeholder: "sim-*" });
  const concurrency = h("input", { class: "input", id: "fw-campaign-concurrency", type: "number",
    min: 1, value: 10, "data-testid": "fw-campaign-concurrency" });
  const perMinute = h("input", { class: "input", id: "fw-campaign-rate", type: "number", min: 0,
    value: 0, "data-testid": "fw-campaign-rate" });
  const attempts = h("input", { class: "input", id: "fw-campaign-attempts", type: "number",
    min: 1, max: 100, value: 3, "data-testid": "fw-campaign-attempts" });
  const failureRate = h("input", { class: "input", id: "fw-campaign-failure", type: "number",
    min: 0, max: 1, step: 0.05, value: 1, "data-testid": "fw-campaign-failure" });
  const method = h("select", { class: "input", id: "fw-campaign-method",
    "data-testid": "fw-campaign-method" },
  ["auto", "coap", "coaps", "coap+tcp", "coaps+tcp", "http", "push"]
    .map((m) => h("option", { value: m }, m)));
  const feedback = h("p", { class: "feedback form-error", role: "alert",
    "data-testid": "fw-campaign-error" });
  const form = h("form", { class: "panel", "data-testid": "fw-campaign-form" },
    h("h2", {}, "New campaign"),
    field("fw-campaign-name", "Name", name),
    field("fw-campaign-image", "Image", imageSelect),
    field("fw-campaign-endpoints", "Devices (endpoint names)", endpoints),
    field("fw-campaign-group", "… or the members of the device group", group),
    field("fw-campaign-pattern", "… or every registered device matching", pattern),
    field("fw-campaign-concurrency", "Devices at a time", concurrency),
    field("fw-campaign-rate", "Starts per minute (0: no limit)", perMinute),
    field("fw-campaign-attempts", "Attempts per device", attempts),
    field("fw-campaign-failure", "Stop when this share fails (1: never)", failureRate),
    field("fw-campaign-method", "Delivery", method),
    h("button", { type: "submit", class: "btn btn-primary", "data-testid": "fw-campaign-submit" },
      "Start campaign"), feedback);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const list = endpoints.value.split(/[\s,]+/).filter(Boolean);
    const groupName = group.value.trim();
    const targets = list.length ? { endpoints: list }
      : groupName ? { group: groupName }
        : { filter: { endpoint: pattern.value.trim() || "*" } };
    feedback.textContent = "";
    try {
      const { data } = await api("POST", `${base}/campaigns`, { body: {
        name: name.value, image: imageSelect.value, targets,
        limits: { concurrency: Number(concurrency.value), per_minute: Number(perMinute.value),
          max_attempts: Number(attempts.value), max_failure_rate: Number(failureRate.value),
          method: method.value } } });
      created(data.id);
    } catch (e) {
      feedback.textContent = explainError(e);
    }
  });
  return form;
}

function field(id, label, input) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

// --- one campaign ---------------------------------------------------------------------------

function mountCampaign(root, id) {
  const jobs = new Map(); // job id -> job
  const rows = new Map(); // job id -> tr
  let campaign = null;
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true });
  const title = h("h1", { id: "campaign-title" }, "Campaign");
  const state = h("span", {});
  const reason = h("p", { class: "muted", "data-testid": "fw-campaign-reason" });
  const overall = h("div", { class: "inline" });
  const counts = h("p", { class: "muted", "data-testid": "fw-campaign-counts" });
  const controls = h("div", { class: "inline" });
  const body = h("tbody", {});

  fill(root, h("section", { class: "page", "aria-labelledby": "campaign-title",
    "data-testid": "fw-campaign-page" },
  h("p", {}, h("a", { href: "#/firmware" }, "← Firmware")),
  h("div", { class: "page-head" }, title, state, controls),
  reason, overall, counts, error,
  h("div", { class: "table-wrap" }, h("table", { class: "table", "data-testid": "fw-job-table" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Device"),
      h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Progress"),
      h("th", { scope: "col" }, "Attempt"), h("th", { scope: "col" }, "Method"),
      h("th", { scope: "col" }, "Last step"))),
    body))));

  function control(action, label) {
    const button = h("button", { type: "button", class: "btn", "data-testid": `fw-${action}` },
      label);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const { data } = await api("POST", `${base}/campaigns/${enc(id)}/${action}`);
        showCampaign(data);
      } catch (e) {
        error.textContent = explainError(e);
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }
  const pause = control("pause", "Pause");
  const resume = control("resume", "Resume");
  const cancel = control("cancel", "Cancel");
  cancel.classList.add("btn-danger");
  fill(controls, pause, resume, cancel);

  function showCampaign(c) {
    campaign = c;
    title.textContent = c.name;
    document.title = `${c.name} · aiolwm2m`;
    fill(state, stateBadge(c.state, "fw-campaign-state"));
    reason.textContent = c.reason || "";
    reason.hidden = !c.reason;
    const percent = Math.round(c.progress * 100);
    fill(overall, bar(percent, `campaign ${percent}%`, "fw-campaign-progress"),
      h("span", {}, `${percent}%`));
    counts.textContent = Object.entries(c.counts).map(([k, n]) => `${n} ${k}`).join(" · ");
    const final = c.state === "finished" || c.state === "cancelled";
    pause.hidden = final || c.state !== "running";
    resume.hidden = final || c.state === "running";
    cancel.hidden = final;
  }

  function jobRow(job) {
    const percent = jobPercent(job);
    const last = job.step ?? (job.steps?.length ? job.steps[job.steps.length - 1] : null);
    const steps = h("ol", { class: "log" }, (job.steps ?? []).map((s) => h("li", {},
      h("span", { class: "log-time" }, new Date(s.at * 1000).toLocaleTimeString()), " ",
      h("strong", {}, s.step), s.detail ? ` — ${s.detail}` : "")));
    return h("tr", { "data-testid": "fw-job-row", "data-endpoint": job.endpoint,
      "data-state": job.state },
    h("th", { scope: "row" }, h("a", { href: `#/devices/${enc(job.endpoint)}` }, job.endpoint)),
    h("td", {}, stateBadge(job.state, "fw-job-state")),
    h("td", {}, bar(percent, `${job.endpoint}: ${percent}%`, "fw-device-progress")),
    h("td", {}, String(job.attempt)),
    h("td", {}, job.method ?? "—"),
    h("td", {}, job.reason ? h("span", { class: "form-error", "data-testid": "fw-job-reason" },
      job.reason) : (last ? `${last.step}${last.detail ? `: ${last.detail}` : ""}` : "—"),
    job.steps?.length ? h("details", {}, h("summary", {}, "Steps"), steps) : null));
  }

  const render = coalesce(() => {
    for (const [jid, job] of jobs) {
      const old = rows.get(jid);
      const tr = jobRow(job);
      if (old) old.replaceWith(tr);
      else body.append(tr);
      rows.set(jid, tr);
    }
  });

  async function load() {
    try {
      const [{ data: c }, { data: page }] = await Promise.all([
        api("GET", `${base}/campaigns/${enc(id)}`),
        api("GET", `${base}/campaigns/${enc(id)}/jobs`, { query: { steps: true, limit: 10000 } })]);
      showCampaign(c);
      for (const job of page.items) jobs.set(job.id, job);
      render();
    } catch (e) {
      error.textContent = explainError(e);
      error.hidden = false;
    }
  }

  const unsubscribe = subscribe((name, data) => {
    if (name === "firmware-job" && data.campaign_id === id) {
      const before = jobs.get(data.job_id);
      const steps = before?.steps ?? [];
      if (data.step && !steps.some((s) => s.at === data.step.at && s.step === data.step.step)) {
        steps.push(data.step);
      }
      jobs.set(data.job_id, { ...before, ...data, id: data.job_id, steps });
      render();
    } else if (name === "firmware-campaign" && data.campaign_id === id) {
      showCampaign({ ...campaign, ...data, id, devices: campaign?.devices });
    } else if (name === "resync") {
      load();
    }
  });
  load();
  return unsubscribe;
}
