import { currentToken } from './token.js';

/** The API's base: the page is served at <prefix>/ui/, the API lives at <prefix>/. */
export const apiBase = new URL('../', document.baseURI);

/** An error answer of the API ({ error: { code, message } }) or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function apiUrl(path, query = {}) {
  const url = new URL(path.replace(/^\//, ''), apiBase);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') url.searchParams.set(name, String(value));
  }
  return url;
}

export function authHeaders(extra = {}) {
  const token = currentToken();
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

export async function errorOf(response) {
  try {
    const body = await response.json();
    if (body?.error?.code) return new ApiError(response.status, body.error.code, body.error.message);
  } catch {
    // not the API's error shape: fall through
  }
  return new ApiError(response.status, `HTTP_${response.status}`, response.statusText);
}

async function request(path, query, as) {
  let response;
  try {
    response = await fetch(apiUrl(path, query), { headers: authHeaders({ accept: 'application/json' }) });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `the server cannot be reached (${err.message})`);
  }
  if (!response.ok) throw await errorOf(response);
  return as === 'text' ? response.text() : response.json();
}

/** GET a JSON route of the API with the tab's token. */
export function getJson(path, query) {
  return request(path, query, 'json');
}

/** GET a text route (/metrics). */
export function getText(path, query) {
  return request(path, query, 'text');
}

/** Path segments are encoded one by one, so a name never changes the route. */
export function path(...segments) {
  return segments.map((s) => encodeURIComponent(s)).join('/');
}
