// Statistics, the targets, and the three outputs: results JSON, a Markdown table, an SVG chart.
import type { PathName } from './paths.js';
import { PATH_LABELS } from './paths.js';

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export function stat(values: number[]): Stat | undefined {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return undefined;
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/** Per path, one value per round. */
export type Series = Partial<Record<PathName, number[]>>;

/** Figure definition: how it reads in the table and the chart. */
export interface FigureSpec {
  key: string;
  title: string;
  unit: string;
  /** Digits after the point in the table. */
  digits: number;
  /** Direction of "better". */
  better: 'lower' | 'higher';
}

export interface Target {
  id: string;
  text: string;
  value: number | undefined;
  limit: number;
  /** value ≤ limit (or ≥ for 'min'). */
  kind: 'max' | 'min';
  unit: string;
  met: boolean | undefined;
  note?: string;
}

export function target(id: string, text: string, value: number | undefined, kind: 'max' | 'min', limit: number, unit: string, note?: string): Target {
  const met = value === undefined || !Number.isFinite(value) ? undefined : kind === 'max' ? value <= limit : value >= limit;
  return { id, text, value, limit, kind, unit, met, note };
}

export const fmt = (x: number | undefined, digits = 0): string => {
  if (x === undefined || !Number.isFinite(x)) return '—';
  const abs = Math.abs(x);
  const d = abs >= 1000 ? 0 : digits;
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};

export const cell = (s: Stat | undefined, digits = 0, sign = false): string =>
  s ? `${sign && s.median > 0 ? '+' : ''}${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})` : '—';

// ---- SVG chart: small multiples, one panel per figure, log scale, min–max whiskers --------------

export interface Panel {
  title: string;
  unit: string;
  /** `stat` is drawn; `shown` (default `stat`) is written beside the bar (e.g. a negative median drawn at the floor). */
  bars: { label: string; path: PathName | 'baseline' | 'normalize'; stat: Stat | undefined; shown?: Stat }[];
  target?: { value: number; label: string };
  note?: string;
}

const COLORS: Record<string, string> = {
  direct: '#8a8f98',
  nginx: '#3c9a5f',
  portico: '#2563eb',
  candidate: '#7c3aed',
  floor: '#0891b2',
  portkey: '#e07b24',
  baseline: '#8a8f98',
  normalize: '#2563eb',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function svgChart(title: string, subtitle: string[], panels: Panel[]): string {
  const W = 460;
  const H = 40 + 26 * Math.max(4, ...panels.map((p) => p.bars.length)) + 28;
  const cols = 2;
  const rows = Math.ceil(panels.length / cols);
  const width = cols * W + 20;
  const top = 40 + 16 * subtitle.length;
  const height = top + rows * H + 10;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="14" y="26" font-size="17" font-weight="bold">${esc(title)}</text>`,
    ...subtitle.map((line, i) => `<text x="14" y="${46 + 16 * i}" font-size="11" fill="#555">${esc(line)}</text>`),
  );
  panels.forEach((p, i) => {
    const x0 = 10 + (i % cols) * W;
    const y0 = top + Math.floor(i / cols) * H;
    parts.push(`<g transform="translate(${x0},${y0})">`);
    parts.push(`<text x="4" y="16" font-weight="bold">${esc(p.title)}</text>`);
    parts.push(`<text x="${W - 14}" y="16" text-anchor="end" fill="#666" font-size="11">${esc(p.unit)}, log scale</text>`);
    const labelW = 78;
    const valueW = 150;
    const plotW = W - labelW - valueW - 20;
    const values = p.bars.flatMap((b) => (b.stat ? [b.stat.min, b.stat.max, b.stat.median] : [])).filter((v) => v > 0);
    if (p.target) values.push(p.target.value);
    const lo = Math.pow(10, Math.floor(Math.log10(Math.max(1e-3, Math.min(...values, 1)))));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, lo * 10))));
    const sx = (v: number) => labelW + (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * plotW;
    // decades
    for (let d = lo; d <= hi * 1.0001; d *= 10) {
      const x = sx(d);
      parts.push(`<line x1="${x}" y1="26" x2="${x}" y2="${30 + 26 * p.bars.length}" stroke="#e5e7eb"/>`);
      parts.push(`<text x="${x}" y="${42 + 26 * p.bars.length}" text-anchor="middle" font-size="9" fill="#888">${fmtTick(d)}</text>`);
    }
    p.bars.forEach((b, j) => {
      const y = 30 + j * 26;
      parts.push(`<text x="${labelW - 6}" y="${y + 14}" text-anchor="end">${esc(b.label)}</text>`);
      if (!b.stat) {
        parts.push(`<text x="${labelW + 4}" y="${y + 14}" fill="#999">not measured</text>`);
        return;
      }
      const s = b.stat;
      const w = Math.max(1.5, sx(s.median) - labelW);
      parts.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="16" fill="${COLORS[b.path] ?? '#999'}" rx="2"/>`);
      if (s.max > s.min) {
        const a = sx(Math.max(s.min, lo));
        const c = sx(s.max);
        parts.push(`<line x1="${a.toFixed(1)}" y1="${y + 11}" x2="${c.toFixed(1)}" y2="${y + 11}" stroke="#111" stroke-width="1"/>`);
        parts.push(`<line x1="${a.toFixed(1)}" y1="${y + 7}" x2="${a.toFixed(1)}" y2="${y + 15}" stroke="#111"/>`);
        parts.push(`<line x1="${c.toFixed(1)}" y1="${y + 7}" x2="${c.toFixed(1)}" y2="${y + 15}" stroke="#111"/>`);
      }
      const t = b.shown ?? s;
      const d = (v: number) => (Math.abs(v) < 10 ? 1 : 0);
      parts.push(`<text x="${labelW + plotW + 8}" y="${y + 14}">${esc(fmt(t.median, d(t.median)))} <tspan fill="#888" font-size="10">(${esc(fmt(t.min, d(t.min)))}–${esc(fmt(t.max, d(t.max)))})</tspan></text>`);
    });
    if (p.target) {
      const x = sx(p.target.value);
      parts.push(`<line x1="${x}" y1="26" x2="${x}" y2="${30 + 26 * p.bars.length}" stroke="#dc2626" stroke-dasharray="4 3" stroke-width="1.5"/>`);
      parts.push(`<text x="${x + 3}" y="${32 + 26 * p.bars.length}" font-size="9" fill="#dc2626">${esc(p.target.label)}</text>`);
    }
    if (p.note) parts.push(`<text x="4" y="${H - 12}" font-size="10" fill="#666">${esc(p.note)}</text>`);
    parts.push('</g>');
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function fmtTick(v: number): string {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(+v.toPrecision(3));
}

export const LABEL = (p: PathName) => PATH_LABELS[p];
