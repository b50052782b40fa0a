import { getJson, path } from './api.js';
import { byId, field } from './dom.js';
import { eventItem } from './event-view.js';
import { formatCount } from './format.js';
import { onOpenInstance } from './navigation.js';
import { guarded, showInfo } from './status.js';

/**
 * One instance's events, a page at a time in either order (the API's `direction`): "next" follows
 * the answer's nextVersion, "previous" returns to the pages already seen.
 */
const state = { starts: [], from: undefined, next: undefined };

async function readPage(from) {
  const form = byId('instance-form');
  const domain = field(form, 'domain');
  const type = field(form, 'type');
  const id = field(form, 'id');
  if (!domain || !type || !id) return;
  const direction = field(form, 'direction');
  await guarded(async () => {
    const page = await getJson(`v1/domains/${path(domain, 'aggregates', type, id, 'events')}`, {
      direction,
      fromVersion: from,
      limit: Number(field(form, 'limit')) || 20,
    });
    state.from = from;
    state.next = page.complete ? undefined : page.nextVersion;
    byId('instance-events').replaceChildren(...page.events.map(eventItem));
    const shown = page.events.length === 0 ? 'no events' : `${formatCount(page.events.length)} events`;
    byId('instance-summary').textContent =
      `${type} ${id} in ${domain}: version ${formatCount(page.version)}; ${shown} on this page` +
      (page.complete ? ', the last page' : `; the next page starts at version ${page.nextVersion}`);
    showInfo('');
  });
}

export function initInstanceView() {
  const form = byId('instance-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    state.starts = [];
    readPage(undefined);
  });
  byId('instance-next').addEventListener('click', () => {
    if (state.next === undefined) return;
    state.starts.push(state.from);
    readPage(state.next);
  });
  byId('instance-previous').addEventListener('click', () => {
    if (state.starts.length > 0) readPage(state.starts.pop());
  });
  onOpenInstance(({ domain, type, id }) => {
    byId('instance-domain').value = domain;
    byId('instance-type').value = type;
    byId('instance-id').value = id;
    state.starts = [];
    readPage(undefined);
    byId('instance').scrollIntoView();
  });
}
