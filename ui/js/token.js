/** The API token, kept for this tab only: sessionStorage is neither shared with other tabs nor kept on disk. */
const KEY = 'ringstore.token';

export function currentToken() {
  return sessionStorage.getItem(KEY) ?? undefined;
}

export function rememberToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}
