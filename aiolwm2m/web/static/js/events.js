// The live event stream (server-sent events from /api/events), shared by all views.
//
// EventSource reconnects by itself after a dropped connection, but gives up for good on an
// HTTP error (401 after a token change, or the server restarting). We then retry with a
// growing delay. Each time the stream opens, views are told to "resync": events may have
// been missed while offline, or before the first connection.

import { api } from "./api.js";
import { getToken } from "./auth.js";

const EVENT_NAMES = [
  "registered", "updated", "deregistered", "expired", "awake", "sleeping",
  "notification", "send", "queued-request", "observation-ended",
  "firmware-job", "firmware-campaign",
  "end-device-added", "end-device-changed", "end-device-removed",
];

const listeners = new Set();
const statusListeners = new Set();
let source = null;
let retryDelay = 1000;
let retryTimer = null;
let wasLive = false;
let status = "offline";

/** Listen to every event: fn(name, data). Returns the unsubscribe function. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** fn(status) with status in "connecting", "live", "reconnecting", "offline". */
export function onStatus(fn) {
  statusListeners.add(fn);
  fn(status);
  return () => statusListeners.delete(fn);
}

function setStatus(next) {
  status = next;
  for (const fn of statusListeners) fn(next);
}

function dispatch(name, data) {
  for (const fn of [...listeners]) {
    try {
      fn(name, data);
    } catch (error) {
      // One broken view must not stop the others from seeing events.
      console.error(`event handler failed for ${name}`, error);
    }
  }
}

export function connect() {
  disconnect();
  const url = new URL("/api/events", location.origin);
  url.searchParams.set("access_token", getToken() ?? "");
  setStatus(wasLive ? "reconnecting" : "connecting");
  const es = new EventSource(url);
  source = es;
  for (const name of EVENT_NAMES) {
    es.addEventListener(name, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      dispatch(name, data);
    });
  }
  es.onopen = () => {
    retryDelay = 1000;
    // The first time too: a view loads while the stream connects, and what changed between
    // its load and this moment came as no event.
    dispatch("resync", {});
    wasLive = true;
    setStatus("live");
  };
  es.onerror = () => {
    if (es !== source) return;
    if (es.readyState === EventSource.CLOSED) {
      setStatus("offline");
      scheduleRetry();
    } else {
      setStatus("reconnecting");
    }
  };
}

export function disconnect() {
  clearTimeout(retryTimer);
  if (source) {
    source.close();
    source = null;
  }
}

function scheduleRetry() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(async () => {
    try {
      // A cheap authenticated call: a 401 here opens the token dialog (see main.js),
      // which reconnects once a good token is entered.
      await api("GET", "/api/registrations", { query: { limit: 1 } });
      connect();
    } catch (error) {
      if (error.status !== 401) scheduleRetry();
    }
  }, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
}
