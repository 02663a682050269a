// Security credentials: the PSK, RPK or X.509 identity each DTLS device must present.

import { deleteSecurity, explainError, listSecurity, putSecurity } from "../api.js";
import { fill, h } from "../dom.js";

const MODES = {
  psk: "Pre-shared key (PSK)",
  rpk: "Raw public key (RPK)",
  x509: "X.509 certificate",
};

const HEX = /^(?:[0-9a-fA-F]{2})+$/;

export function mountSecurity(root) {
  const body = h("tbody", {});
  const table = h("table", { class: "table", "data-testid": "security-table" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Endpoint"), h("th", { scope: "col" }, "Mode"),
      h("th", { scope: "col" }, "Identity"), h("th", { scope: "col" }, h("span",
        { class: "visually-hidden" }, "Actions")))),
    body);
  const empty = h("p", { class: "empty", hidden: true, "data-testid": "security-empty" },
    "No credentials yet. Devices without credentials can only use plain CoAP (NoSec).");
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true });
  let known = new Set();

  const form = credentialForm(async (endpoint, payload) => {
    await putSecurity(endpoint, payload);
    await load();
  }, (endpoint) => known.has(endpoint));

  fill(root, h("section", { class: "page", "aria-labelledby": "security-title" },
    h("div", { class: "page-head" }, h("h1", { id: "security-title" }, "Security credentials")),
    h("p", { class: "muted" }, "A device connecting over DTLS must present the credentials "
      + "stored here for its endpoint name. Keys are write-only: they are never shown again."),
    error,
    h("div", { class: "two-col" },
      h("div", {}, h("div", { class: "table-wrap" }, table), empty),
      form)));

  async function load() {
    try {
      const { data } = await listSecurity();
      known = new Set(data.map((c) => c.endpoint));
      fill(body, data.map(row));
      table.hidden = data.length === 0;
      empty.hidden = data.length > 0;
      error.hidden = true;
    } catch (e) {
      error.textContent = `Could not load the credentials. ${explainError(e)}`;
      error.hidden = false;
    }
  }

  function row(c) {
    const identity = c.psk_identity ?? c.x509_identity
      ?? (c.rpk_public_key ? `${c.rpk_public_key.slice(0, 24)}…` : "—");
    const remove = h("button", { type: "button", class: "btn btn-small btn-danger",
      "data-testid": "delete-credentials", "aria-label": `Delete credentials of ${c.endpoint}` },
    "Delete");
    // Two clicks to delete: the first arms the button for a few seconds.
    let armed = null;
    remove.addEventListener("click", async () => {
      if (!armed) {
        remove.textContent = "Confirm delete";
        remove.dataset.armed = "true";
        armed = setTimeout(() => {
          armed = null;
          remove.textContent = "Delete";
          delete remove.dataset.armed;
        }, 5000);
        return;
      }
      clearTimeout(armed);
      remove.disabled = true;
      try {
        await deleteSecurity(c.endpoint);
      } catch (e) {
        error.textContent = explainError(e);
        error.hidden = false;
      }
      await load();
    });
    return h("tr", { "data-testid": "credential-row", "data-endpoint": c.endpoint },
      h("th", { scope: "row" }, c.endpoint),
      h("td", {}, h("span", { class: "badge" }, c.mode.toUpperCase())),
      h("td", { class: "mono", title: c.rpk_public_key ?? "" }, identity),
      h("td", { class: "actions" }, remove));
  }

  load();
  return () => {};
}

/** The add/replace form; `save(endpoint, payload)` stores, `exists(endpoint)` warns. */
function credentialForm(save, exists) {
  const endpoint = h("input", { id: "sec-endpoint", class: "input", required: true,
    autocomplete: "off", "data-testid": "sec-endpoint" });
  const mode = h("select", { id: "sec-mode", class: "input", "data-testid": "sec-mode" },
    Object.entries(MODES).map(([value, text]) => h("option", { value }, text)));
  const identity = h("input", { id: "sec-psk-identity", class: "input", autocomplete: "off",
    "data-testid": "sec-psk-identity" });
  const key = h("input", { id: "sec-psk-key", class: "input mono", autocomplete: "off",
    spellcheck: "false", "data-testid": "sec-psk-key", placeholder: "hex, e.g. 00112233…" });
  const generate = h("button", { type: "button", class: "btn btn-small",
    onclick: () => { key.value = randomHex(16); } }, "Generate");
  const rpk = h("textarea", { id: "sec-rpk", class: "input mono", rows: 3, spellcheck: "false",
    "data-testid": "sec-rpk", placeholder: "hex DER SubjectPublicKeyInfo" });
  const x509 = h("input", { id: "sec-x509", class: "input", autocomplete: "off",
    "data-testid": "sec-x509", placeholder: "the certificate's name, usually its CN" });
  const message = h("p", { role: "status", class: "form-message", "data-testid": "sec-message",
    hidden: true });

  const groups = {
    psk: h("div", { class: "field-group" },
      field("sec-psk-identity", "PSK identity", identity),
      field("sec-psk-key", "PSK key (hex)", h("span", { class: "inline" }, key, generate))),
    rpk: h("div", { class: "field-group" }, field("sec-rpk", "Client public key", rpk)),
    x509: h("div", { class: "field-group" }, field("sec-x509", "Certificate identity", x509)),
  };
  const showGroup = () => {
    for (const [name, el] of Object.entries(groups)) el.hidden = name !== mode.value;
  };
  mode.addEventListener("change", showGroup);
  showGroup();

  const say = (kind, text) => {
    message.dataset.kind = kind;
    message.textContent = text;
    message.hidden = false;
  };

  const form = h("form", { class: "panel form", novalidate: true, "data-testid": "security-form",
    "aria-labelledby": "sec-form-title",
    onsubmit: async (event) => {
      event.preventDefault();
      const ep = endpoint.value.trim();
      let payload;
      try {
        payload = collect(ep, mode.value, { identity, key, rpk, x509 });
      } catch (e) {
        say("error", e.message);
        return;
      }
      const submit = form.querySelector("[type=submit]");
      submit.disabled = true;
      const replacing = exists(ep);
      try {
        await save(ep, payload);
        say("ok", `${replacing ? "Replaced" : "Saved"} the ${mode.value.toUpperCase()} `
          + `credentials of ${ep}.`);
        form.reset();
        showGroup();
      } catch (e) {
        say("error", explainError(e));
      } finally {
        submit.disabled = false;
      }
    } },
  h("h2", { id: "sec-form-title" }, "Add or replace credentials"),
  field("sec-endpoint", "Endpoint name", endpoint),
  field("sec-mode", "Mode", mode),
  ...Object.values(groups),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary",
    "data-testid": "sec-submit" }, "Save credentials")),
  message);
  return form;
}

function field(id, text, control) {
  return h("div", { class: "field" }, h("label", { for: id }, text), control);
}

/** The request body for the chosen mode; throws with a message the user can act on. */
function collect(endpoint, mode, { identity, key, rpk, x509 }) {
  if (!endpoint) throw new Error("Enter the device's endpoint name.");
  if (mode === "psk") {
    const psk = key.value.trim();
    if (!identity.value.trim()) throw new Error("Enter the PSK identity.");
    if (!HEX.test(psk)) throw new Error("The PSK key must be hex digits in pairs, e.g. 0a1b2c3d.");
    return { psk_identity: identity.value.trim(), psk_key: psk };
  }
  if (mode === "rpk") {
    const hex = rpk.value.replace(/\s+/g, "");
    if (!HEX.test(hex)) throw new Error("The public key must be hex (DER SubjectPublicKeyInfo).");
    return { rpk_public_key: hex };
  }
  if (!x509.value.trim()) throw new Error("Enter the certificate identity.");
  return { x509_identity: x509.value.trim() };
}

function randomHex(bytes) {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buf, (b) => b.toString(16).padStart(2, "0")).join("");
}
