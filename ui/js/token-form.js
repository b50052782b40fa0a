import { byId, field } from './dom.js';
import { onApiError, showInfo } from './status.js';
import { currentToken, forgetToken, rememberToken } from './token.js';

/**
 * The token form: shown when the server answers 401 (or while a token is kept, to forget it);
 * a submitted token is kept for this tab and the domains are loaded again with it.
 */
export function initTokenForm({ onToken }) {
  const form = byId('token-form');
  const input = byId('token-input');
  if (currentToken()) form.hidden = false;
  onApiError((err) => {
    if (err.status !== 401) return;
    form.hidden = false;
    input.focus();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    rememberToken(field(form, 'token'));
    input.value = '';
    showInfo('token kept for this tab');
    onToken();
  });
  byId('token-forget').addEventListener('click', () => {
    forgetToken();
    showInfo('token forgotten');
  });
}
