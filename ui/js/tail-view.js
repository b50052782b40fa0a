import { byId, field } from './dom.js';
import { eventItem } from './event-view.js';
import { typesInput } from './format.js';
import { startTail } from './live-tail.js';
import { showError } from './status.js';

/** The newest events shown in the live tail; older ones are dropped from the page. */
const SHOWN = 200;

let stop;

export function initTailView() {
  const form = byId('tail-form');
  const list = byId('tail-events');
  const state = byId('tail-state');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    stop?.();
    list.replaceChildren();
    const from = field(form, 'from');
    stop = startTail(
      { domain: field(form, 'domain'), types: typesInput(field(form, 'types')), from },
      {
        onEvent(event) {
          list.prepend(eventItem(event));
          while (list.children.length > SHOWN) list.lastElementChild.remove();
        },
        onState(text) {
          state.textContent = text;
        },
        onError: showError,
      },
    );
  });
  byId('tail-stop').addEventListener('click', () => {
    stop?.();
    stop = undefined;
  });
}
