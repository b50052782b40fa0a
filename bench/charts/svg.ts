/** The few SVG building blocks the bench charts need; every text and attribute is escaped. */

export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

type Attributes = Record<string, string | number | undefined>;

function attributes(attrs: Attributes): string {
  return Object.entries(attrs)
    .flatMap(([name, value]) =>
      value === undefined
        ? []
        : [` ${name}="${escapeXml(typeof value === 'number' ? round(value) : value)}"`],
    )
    .join('');
}

/** Coordinates to 0.1 px: enough for a chart, and stable text across runs. */
function round(value: number): string {
  return String(Math.round(value * 10) / 10);
}

export function element(name: string, attrs: Attributes, ...children: string[]): string {
  return children.length === 0
    ? `<${name}${attributes(attrs)}/>`
    : `<${name}${attributes(attrs)}>${children.join('')}</${name}>`;
}

export function text(x: number, y: number, content: string, attrs: Attributes = {}): string {
  return element('text', { x, y, ...attrs }, escapeXml(content));
}

/** A whole standalone document: the XML declaration, the namespace, a title for screen readers. */
export function svgDocument(width: number, height: number, title: string, body: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${element(
    'svg',
    {
      xmlns: 'http://www.w3.org/2000/svg',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'font-family': 'system-ui, -apple-system, Segoe UI, Roboto, sans-serif',
      'font-size': 12,
    },
    element('title', {}, escapeXml(title)),
    element('rect', { width, height, fill: '#ffffff' }),
    ...body,
  )}\n`;
}

/** Round tick steps (1, 2, 2.5, 5 × 10^n) covering 0…max in about `count` steps. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const ticks: number[] = [];
  for (let value = 0; value < max + step; value += step) ticks.push(Math.round(value / step) * step);
  return ticks;
}

/** 1234567 → "1.23M", 0.25 → "0.25". */
export function shortNumber(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e3) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value: number): string {
  return String(Number(value.toPrecision(3)));
}
