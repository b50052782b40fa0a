import { byId } from './dom.js';

const listeners = new Set();

/** Called with every ApiError shown: the token form listens for 401. */
export function onApiError(listener) {
  listeners.add(listener);
}

/** Shows a failure plainly, 401 and 403 in words, with the server's code and message. */
export function showError(err) {
  const status = byId('status');
  status.className = 'error';
  if (err.status === 401) {
    status.textContent = `401 Unauthorized: this server needs a token (${err.code}). Enter one above.`;
  } else if (err.status === 403) {
    status.textContent = `403 Forbidden: the token may not do this (${err.code}: ${err.message}).`;
  } else if (err.status > 0) {
    status.textContent = `${err.status} ${err.code}: ${err.message}`;
  } else {
    status.textContent = err.message;
  }
  for (const listener of listeners) listener(err);
}

export function showInfo(text) {
  const status = byId('status');
  status.className = '';
  status.textContent = text;
}

/** Runs an action, showing its failure instead of throwing it. */
export async function guarded(action) {
  try {
    return await action();
  } catch (err) {
    if (err && typeof err.status === 'number') showError(err);
    else showError({ status: 0, code: 'ERROR', message: String(err?.message ?? err) });
    return undefined;
  }
}
