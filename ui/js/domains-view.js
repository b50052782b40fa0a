import { getJson, path } from './api.js';
import { byId, el } from './dom.js';
import { formatBytes, formatCount, formatTime } from './format.js';
import { openDomain } from './navigation.js';
import { guarded } from './status.js';

/** The domains this token may read, each with its event count, disk size and last event. */
export async function loadDomains() {
  await guarded(async () => {
    const { domains } = await getJson('v1/domains');
    const summaries = await Promise.all(domains.map((d) => getJson(`v1/domains/${path(d)}`)));
    const rows = byId('domains-rows');
    rows.replaceChildren(
      ...summaries.map((s) => {
        const name = el('button', { type: 'button', className: 'link' }, s.domain);
        name.addEventListener('click', () => openDomain(s.domain));
        return el(
          'tr',
          { 'data-domain': s.domain },
          el('th', { scope: 'row' }, name),
          el('td', { className: 'number', 'data-field': 'events' }, formatCount(s.events)),
          el('td', { className: 'number', 'data-field': 'disk' }, formatBytes(s.diskBytes)),
          el('td', { 'data-field': 'last' }, formatTime(s.lastTimestamp)),
        );
      }),
    );
    if (summaries.length === 0)
      rows.append(el('tr', {}, el('td', { colSpan: 4 }, 'no domain holds events yet')));
    byId('domain-names').replaceChildren(...domains.map((d) => el('option', { value: d })));
  });
}

export function initDomainsView() {
  byId('domains-refresh').addEventListener('click', () => loadDomains());
}
