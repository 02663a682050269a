// Start-up and navigation: get a working token, open the live event stream, and show the
// view named by the URL fragment (#/devices, #/devices/<endpoint>, #/security, #/bootstrap,
// #/groups, #/groups/<name>, #/broker, #/nidd).

import { api, niddStatus, onUnauthorized, serverInfo } from "./api.js";
import { getToken, promptForToken, takeTokenFromUrl } from "./auth.js";
import { refreshRelativeTimes, setServerTime } from "./dom.js";
import { connect, onStatus } from "./events.js";
import { mountBootstrap } from "./views/bootstrap.js";
import { mountBroker } from "./views/broker.js";
import { mountDevice } from "./views/device.js";
import { mountDevices } from "./views/devices.js";
import { mountFirmware } from "./views/firmware.js";
import { mountGroups } from "./views/groups.js";
import { mountNidd } from "./views/nidd.js";
import { mountSecurity } from "./views/security.js";

const main = document.getElementById("main");
let unmount = null;
const app = { info: null }; // what /api/server said (CoAP port, clock)

/** Resolves to null when the server accepts `token`, else to a message for the dialog. */
async function checkToken(token) {
  try {
    await api("GET", "/api/registrations", { query: { limit: 1 }, token });
    return null;
  } catch (error) {
    if (error.status === 401) return `The server rejected this token (401: ${error.detail}).`;
    return error.detail;
  }
}

let asking = false;

async function askForToken(message) {
  if (asking) {
    promptForToken(message, checkToken); // already open: just show the newer message
    return;
  }
  asking = true;
  const token = await promptForToken(message, checkToken);
  asking = false;
  if (token) await restart();
}

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  const [page, ...rest] = hash.split("/");
  if (page === "devices" && rest.length) return { page: "devices", endpoint: rest.join("/") };
  if (page === "firmware") return { page, campaign: rest.join("/") || null };
  if (page === "groups") return { page, group: rest.join("/") || null };
  if (page === "security" || page === "bootstrap" || page === "broker" || page === "nidd") {
    return { page };
  }
  return { page: "devices" };
}

function render() {
  if (unmount) unmount();
  main.replaceChildren();
  const r = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === r.page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (r.endpoint) unmount = mountDevice(main, r.endpoint);
  else if (r.page === "security") unmount = mountSecurity(main);
  else if (r.page === "bootstrap") unmount = mountBootstrap(main);
  else if (r.page === "firmware") unmount = mountFirmware(main, r.campaign);
  else if (r.page === "groups") unmount = mountGroups(main, r.group);
  else if (r.page === "broker") unmount = mountBroker(main);
  else if (r.page === "nidd") unmount = mountNidd(main);
  else unmount = mountDevices(main, app);
  document.title = r.endpoint ? `${r.endpoint} · aiolwm2m` : `${titleOf(r.page)} · aiolwm2m`;
}

const titleOf = (page) => (page === "nidd" ? "NIDD"
  : page.charAt(0).toUpperCase() + page.slice(1));

async function loadInfo() {
  try {
    const { data } = await serverInfo();
    app.info = data;
    setServerTime(data.time);
  } catch {
    app.info = null; // an older server without /api/server: no CoAP hint, browser clock
  }
}

/** The NIDD entry is shown only when the server has a SCEF (else /api/nidd is a 404). */
async function showNiddNav() {
  const item = document.querySelector("[data-nav=nidd]").closest("li");
  try {
    await niddStatus();
    item.hidden = false;
  } catch (error) {
    item.hidden = error.status === 404;
  }
}

/** (Re)start everything that depends on the token. */
async function restart() {
  await loadInfo();
  showNiddNav(); // not awaited: the current page does not depend on it
  connect();
  render();
}

function showLiveStatus() {
  const el = document.querySelector("[data-testid=live-status]");
  const text = el.querySelector(".live-text");
  const labels = {
    live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline",
  };
  onStatus((status) => {
    el.dataset.state = status;
    text.textContent = labels[status] ?? status;
    el.title = status === "live"
      ? "Receiving live events from the server"
      : "Not receiving live events; the page may be out of date";
  });
}

async function start() {
  showLiveStatus();
  onUnauthorized((detail) => askForToken(
    getToken() ? `The server no longer accepts the saved token (${detail}).` : null));
  document.getElementById("token-button").addEventListener("click", () => askForToken(null));
  window.addEventListener("hashchange", () => {
    render();
    main.focus({ preventScroll: true }); // screen readers start reading the new page
    window.scrollTo(0, 0);
  });
  setInterval(() => refreshRelativeTimes(main), 5000);
  takeTokenFromUrl();
  // With a saved token, just start: a 401 from any call opens the dialog (see above).
  if (getToken()) await restart();
  else await askForToken(null);
}

start();
