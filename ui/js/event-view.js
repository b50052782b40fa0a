import { el } from './dom.js';
import { eventBody, formatTime } from './format.js';

function body(event, name) {
  const { kind, text } = eventBody(event, name);
  return el('pre', { className: `body ${kind}`, 'data-kind': kind }, text);
}

/** One event with everything the API returned for it: an <li> with a definition list. */
export function eventItem(event) {
  const rows = [
    ['type', event.type],
    ['version', event.version],
    ['position', event.position],
    ['generation', event.generation],
    ['timestamp', `${formatTime(event.timestamp)} (${event.timestamp})`],
    ['crc', event.crc],
  ];
  if (event.aggregateType !== undefined)
    rows.splice(1, 0, ['instance', `${event.aggregateType} ${event.aggregateId}`]);
  const list = el('dl');
  for (const [name, value] of rows) list.append(el('dt', {}, name), el('dd', { 'data-field': name }, value));
  list.append(el('dt', {}, 'data'), el('dd', { 'data-field': 'data' }, body(event, 'data')));
  list.append(el('dt', {}, 'metadata'), el('dd', { 'data-field': 'metadata' }, body(event, 'metadata')));
  return el('li', { 'data-position': String(event.position) }, list);
}
