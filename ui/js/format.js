/** How the console writes numbers, sizes, times and event bodies. */

export function formatCount(n) {
  return Number(n).toLocaleString('en-US');
}

export function formatBytes(bytes) {
  if (bytes === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatTime(ms) {
  if (ms === undefined) return '–';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

function bytesOfBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A hex dump: offset, 16 bytes in hex, the printable ASCII beside them. */
export function hexDump(bytes) {
  const lines = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const row = bytes.subarray(offset, offset + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${offset.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

/**
 * An event's data or metadata as the API returned it: `data` (a JSON value) pretty-printed, or
 * `dataBase64` (bytes that are not canonical JSON) as a hex dump. Returns { kind, text }.
 */
export function eventBody(event, name) {
  if (name in event) return { kind: 'json', text: JSON.stringify(event[name], null, 2) };
  const bytes = bytesOfBase64(event[`${name}Base64`] ?? '');
  if (bytes.length === 0) return { kind: 'empty', text: '(empty)' };
  return { kind: 'hex', text: hexDump(bytes) };
}

/** One line of an event's data for a table cell. */
export function bodyPreview(event) {
  if ('data' in event) return JSON.stringify(event.data);
  const bytes = (event.dataBase64 ?? '').length === 0 ? 0 : atob(event.dataBase64).length;
  return bytes === 0 ? '(empty)' : `(${bytes} bytes, binary)`;
}

/** A datetime-local input's value as ms since the epoch (local time), or undefined. */
export function timeInput(value) {
  if (!value) return undefined;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

/** "A, B" → "A,B"; "" → undefined. */
export function typesInput(value) {
  const types = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return types.length > 0 ? types.join(',') : undefined;
}
