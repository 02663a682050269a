// The REST API client: bearer token, JSON bodies, and errors that carry the API's `detail`.

import { getToken } from "./auth.js";

export class ApiError extends Error {
  constructor(status, detail, body = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

let unauthorized = () => {};

/** Register what happens when the API answers 401 (the app shows the token dialog). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/**
 * Call the API. Resolves to {status, data} for any 2xx (callers look for 202 = queued);
 * rejects with ApiError otherwise (status 0 when the server cannot be reached).
 * `body` may be a ready JSON string (to keep integers beyond 2^53 exact); `raw` is a Blob
 * sent as it is (application/octet-stream).
 */
export async function api(method, path, { query, body, raw, token } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  const bearer = token ?? getToken();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  } else if (raw !== undefined) {
    headers["Content-Type"] = "application/octet-stream";
    payload = raw;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "Cannot reach the server. Is it still running?");
  }
  const data = await readJson(response);
  if (!response.ok) {
    const detail = describeDetail(data) ?? `${response.status} ${response.statusText}`;
    // A token passed explicitly is being tested (the token dialog); do not re-prompt.
    if (response.status === 401 && token === undefined) unauthorized(detail);
    throw new ApiError(response.status, detail, data);
  }
  return { status: response.status, data };
}

async function readJson(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** FastAPI's `detail` is a string, or a list of validation errors for malformed bodies. */
function describeDetail(data) {
  if (!data || typeof data !== "object") return typeof data === "string" ? data : null;
  const { detail } = data;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc ?? []).slice(1).join(".") || "request"}: ${e.msg}`)
      .join("; ");
  }
  return null;
}

/** One sentence for the user, by HTTP status, keeping the API's own explanation. */
export function explainError(error) {
  if (!(error instanceof ApiError)) return `Unexpected error: ${error?.message ?? error}`;
  const d = error.detail;
  switch (error.status) {
    case 0: return d;
    case 400: return `Rejected: ${d}`;
    case 401: return "Not authorized: enter a valid API token.";
    case 404: return `Not found: ${d}`;
    case 409: return `Conflict: ${d}`;
    case 413: return `Too large: ${d}`;
    case 422: return `Invalid request: ${d}`;
    case 502: return `The device's answer could not be understood: ${d}`;
    case 504: return `Timed out (504): ${d}`;
    default: return `HTTP ${error.status}: ${d}`;
  }
}

const enc = encodeURIComponent;

/**
 * The API path of a device under `base`: an end device behind a gateway is named
 * "gateway/prefix" (as events name it) and lives at `base`/gateway/devices/prefix.
 */
function devicePath(base, ep) {
  const cut = ep.lastIndexOf("/");
  if (cut < 0) return `${base}/${enc(ep)}`;
  return `${base}/${enc(ep.slice(0, cut))}/devices/${enc(ep.slice(cut + 1))}`;
}
const reg = (ep) => devicePath("/api/registrations", ep);
const client = (ep) => devicePath("/api/clients", ep);

// --- the endpoints the UI uses --------------------------------------------------------------

export const serverInfo = () => api("GET", "/api/server");
export const listRegistrations = (query) => api("GET", "/api/registrations", { query });
export const getRegistration = (ep) => api("GET", reg(ep));
export const getObjects = (ep) => api("GET", `${reg(ep)}/objects`);
export const getObservations = (ep) => api("GET", `${client(ep)}/observations`);
/** The end devices behind gateway `gw` (registrations with gateway, prefix, device_id). */
export const listEndDevices = (gw, query) => api(
  "GET", `/api/registrations/${enc(gw)}/devices`, { query });
export const getQueuedRequest = (id) => api("GET", `/api/requests/${enc(id)}`);
/** The last known value of each resource (kept by the server, also while it sleeps). */
export const getLatestValues = (ep) => api("GET", `${client(ep)}/values/latest`);
/** The newest `limit` values of `path` (and below), oldest first. */
export const getValueHistory = (ep, path, limit) => api(
  "GET", `${client(ep)}/values`, { query: { path, limit } });

/** Write an Opaque resource with the bytes of `file` (streamed; no base64 round trip). */
export const writeOpaqueFile = (ep, path, file) => api(
  "POST", `${client(ep)}/write-opaque`, { query: { path }, raw: file });

export function deviceOp(ep, operation, args) {
  const base = `${client(ep)}/${operation}`;
  if (operation === "read" || operation === "discover") return api("GET", base, { query: args });
  return api("POST", base, { body: args });
}

export const listSecurity = () => api("GET", "/api/security");
export const putSecurity = (ep, body) => api("PUT", `/api/security/${enc(ep)}`, { body });
export const deleteSecurity = (ep) => api("DELETE", `/api/security/${enc(ep)}`);
export const listBootstrap = () => api("GET", "/api/bootstrap");
/** The SCEF and NIDD summary; 404 when the server runs without --scef. */
export const niddStatus = () => api("GET", "/api/nidd");
