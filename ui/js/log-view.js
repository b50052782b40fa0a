import { getJson, path } from './api.js';
import { byId, el, field } from './dom.js';
import { bodyPreview, formatCount, formatTime, timeInput, typesInput } from './format.js';
import { onOpenDomain, openInstance } from './navigation.js';
import { guarded, showInfo } from './status.js';

/**
 * A domain's log, filtered by event types and a time range, a page at a time. Domain reads go
 * forward only: "next" continues at the answer's nextPosition; "previous" returns to the pages
 * already seen (a stack of their starts) or, before the first one read, steps back by a page of
 * positions; "newest" starts a page before the log's end.
 */
const state = { starts: [], from: 0, next: undefined };

function filters(form) {
  return {
    domain: field(form, 'domain'),
    types: typesInput(field(form, 'types')),
    fromTime: timeInput(field(form, 'fromTime')),
    toTime: timeInput(field(form, 'toTime')),
    limit: Number(field(form, 'limit')) || 50,
  };
}

function row(domain, event) {
  const instance = el(
    'button',
    { type: 'button', className: 'link' },
    `${event.aggregateType} ${event.aggregateId}`,
  );
  instance.addEventListener('click', () => openInstance(domain, event.aggregateType, event.aggregateId));
  return el(
    'tr',
    { 'data-position': String(event.position) },
    el('td', { className: 'number' }, event.position),
    el('td', { 'data-field': 'type' }, event.type),
    el('td', {}, instance),
    el('td', { className: 'number' }, event.version),
    el('td', { className: 'number' }, event.generation),
    el('td', {}, formatTime(event.timestamp)),
    el('td', {}, el('code', { 'data-field': 'data' }, bodyPreview(event))),
  );
}

async function readPage(from) {
  const form = byId('log-form');
  const f = filters(form);
  if (!f.domain) return;
  await guarded(async () => {
    const page = await getJson(`v1/domains/${path(f.domain)}/events`, {
      fromPosition: from,
      limit: f.limit,
      types: f.types,
      fromTime: f.fromTime,
      toTime: f.toTime,
    });
    state.from = from;
    state.next = page.nextPosition;
    byId('log-from-position').value = String(from);
    byId('log-rows').replaceChildren(...page.events.map((e) => row(f.domain, e)));
    byId('log-summary').textContent =
      `${formatCount(page.events.length)} events from position ${formatCount(from)}; ` +
      `the next page starts at ${formatCount(page.nextPosition)}`;
    showInfo('');
  });
}

async function newest() {
  const form = byId('log-form');
  const f = filters(form);
  if (!f.domain) return;
  await guarded(async () => {
    const { events } = await getJson(`v1/domains/${path(f.domain)}`);
    state.starts = [];
    await readPage(Math.max(0, events - f.limit));
  });
}

export function initLogView() {
  const form = byId('log-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    state.starts = [];
    readPage(Number(field(form, 'fromPosition')) || 0);
  });
  byId('log-next').addEventListener('click', () => {
    if (state.next === undefined) return;
    state.starts.push(state.from);
    readPage(state.next);
  });
  byId('log-previous').addEventListener('click', () => {
    const back = state.starts.pop();
    if (back !== undefined) readPage(back);
    else if (state.from > 0) readPage(Math.max(0, state.from - filters(form).limit));
  });
  byId('log-newest').addEventListener('click', () => newest());
  onOpenDomain(({ domain }) => {
    for (const id of ['log-domain', 'instance-domain', 'tail-domain']) byId(id).value = domain;
    state.starts = [];
    readPage(0);
    byId('log').scrollIntoView();
  });
}
