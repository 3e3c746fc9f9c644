/**
 * Line charts as inline SVG strings, drawn here rather than by a script in the page so the report
 * shows its curves in any viewer, with scripts off, and from disk. Linear or log y axis, "nice"
 * ticks with labels, raw points plus a smoothed line for noisy series (losses).
 */
import { type Html, html } from './html.js';

export type Point = readonly [x: number, y: number];

export interface Series {
  label: string;
  /** A CSS colour written by the report's own code (never taken from data). */
  color: string;
  points: readonly Point[];
  /** 'noisy': every point as a dot plus an exponential moving average; 'line': a polyline with markers when sparse. */
  kind: 'noisy' | 'line';
}

export interface ChartOptions {
  xLabel: string;
  yLabel: string;
  log?: boolean;
  /** x values are whole numbers (training steps; the default): ticks at least 1 apart. */
  integerX?: boolean;
  width?: number;
  height?: number;
}

const MARGIN = { left: 62, right: 14, top: 22, bottom: 42 };
/** Caps on what one path holds, so a long run's report stays a few hundred kB. */
const MAX_DOTS = 2500;
const MAX_LINE_POINTS = 1200;

/** 1, 2 or 5 × 10^k closest above `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/** About `target` evenly spaced round ticks covering [lo, hi]; the domain widens to the outer ticks. */
export function linearTicks(lo: number, hi: number, target = 5, minStep = 0): { ticks: number[]; lo: number; hi: number; step: number } {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const step = Math.max(minStep, niceStep((hi - lo) / target));
  const start = Math.floor(lo / step + 1e-9);
  const end = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  // Multiplying the integer index (not accumulating) keeps 0.1 + 0.2 style drift out of the labels.
  for (let i = start; i <= end; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, lo: start * step, hi: end * step, step };
}

/** Ticks for a log axis over positive [lo, hi]: decades, or 1-2-5 / 1…9 mantissas when the range is short. */
export function logTicks(lo: number, hi: number): { ticks: number[]; lo: number; hi: number } {
  if (!(lo > 0 && hi > 0)) throw new Error(`logTicks: needs a positive range, got [${lo}, ${hi}]`);
  if (!(hi > lo)) {
    lo /= 1.25;
    hi *= 1.25;
  }
  const pad = (Math.log10(hi) - Math.log10(lo)) * 0.04;
  const dLo = 10 ** (Math.log10(lo) - pad);
  const dHi = 10 ** (Math.log10(hi) + pad);
  for (const mantissas of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const ticks: number[] = [];
    for (let k = Math.floor(Math.log10(dLo)); k <= Math.ceil(Math.log10(dHi)); k++)
      for (const m of mantissas) {
        const v = Number((m * 10 ** k).toPrecision(12));
        if (v >= dLo && v <= dHi) ticks.push(v);
      }
    if (ticks.length >= 3 && ticks.length <= 10) return { ticks, lo: dLo, hi: dHi };
  }
  // Less than a decade with few round mantissas inside: linear round numbers, placed on the log scale.
  let lin: number[] = [];
  for (let target = 4; lin.length < 3 && target <= 32; target *= 2)
    lin = linearTicks(dLo, dHi, target).ticks.filter((t) => t >= dLo && t <= dHi);
  return { ticks: lin, lo: dLo, hi: dHi };
}

/** Short, readable number: 0.25, 1200, 3e-4, 1.5e+6. */
/** Labels for one axis in one notation: exponents for all ticks when any needs one. */
export function axisLabels(ticks: readonly number[], step?: number): string[] {
  const exponent = ticks.some((t) => t !== 0 && (Math.abs(t) >= 1e5 || Math.abs(t) < 1e-3)) || (step !== undefined && step < 1e-3);
  return ticks.map((t) => (exponent && t !== 0 ? t.toExponential(2).replace(/\.?0+e/, 'e') : formatNumber(t, step)));
}

export function formatNumber(v: number, step?: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace(/\.?0+e/, 'e');
  if (step !== undefined && step > 0 && step < 1e5) {
    // As many decimals as the tick spacing has (0.25 → 2), so labels line up and differ.
    const decimals = (String(Number(step.toPrecision(12))).split('.')[1] ?? '').length;
    return v.toFixed(Math.min(decimals, 6));
  }
  return String(Number(v.toPrecision(4)));
}

/** Debiased exponential moving average; the window grows with the number of points (about n/20). */
export function smooth(values: readonly number[]): number[] {
  const window = Math.max(1, values.length / 20);
  const w = Math.min(0.98, 1 - 1 / window);
  const out: number[] = [];
  let acc = 0;
  let norm = 0;
  for (const v of values) {
    acc = w * acc + (1 - w) * v;
    norm = w * norm + (1 - w);
    out.push(acc / norm);
  }
  return out;
}

/** Every k-th point, the last one always kept, so at most `max` remain. */
function thin<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  const stride = Math.ceil(items.length / max);
  const out = items.filter((_, i) => i % stride === 0);
  if ((items.length - 1) % stride !== 0) out.push(items[items.length - 1]);
  return out;
}

/** Min and max without spreading (a long run's metrics overflow the argument limit). */
function extent(values: readonly number[]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

const r1 = (v: number) => Math.round(v * 10) / 10;

/** Returns the chart and how many points could not be shown (non-finite, or ≤ 0 on a log axis). */
export function lineChart(series: readonly Series[], opts: ChartOptions): { svg: Html; dropped: number } {
  const W = opts.width ?? 520;
  const H = opts.height ?? 260;
  const plot = { x: MARGIN.left, y: MARGIN.top, w: W - MARGIN.left - MARGIN.right, h: H - MARGIN.top - MARGIN.bottom };
  let dropped = 0;
  const usable = series.map((s) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!opts.log || y > 0));
    dropped += s.points.length - pts.length;
    return { ...s, points: pts };
  });
  const all = usable.flatMap((s) => s.points);
  const frame = html`<rect class="plot-area" x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}"/>`;
  if (all.length === 0) {
    const svg = html`<svg class="chart empty" viewBox="0 0 ${W} ${H}" role="img" aria-label="no data">${frame}<text class="empty-note" x="${W / 2}" y="${H / 2}" text-anchor="middle">no data to plot</text></svg>`;
    return { svg, dropped };
  }

  const [xMin, xMax] = extent(all.map((p) => p[0]));
  const [yMin, yMax] = extent(all.map((p) => p[1]));
  // Steps are whole numbers: no tick between two of them.
  const xs = linearTicks(xMin, xMax, 6, opts.integerX === false ? 0 : 1);
  const ys = opts.log ? { ...logTicks(yMin, yMax), step: undefined } : linearTicks(yMin, yMax, 5);
  const ty = (v: number) => (opts.log ? Math.log10(v) : v);
  const [tLo, tHi] = [ty(ys.lo), ty(ys.hi)];
  const px = (x: number) => r1(plot.x + ((x - xs.lo) / (xs.hi - xs.lo)) * plot.w);
  const py = (t: number) => r1(plot.y + plot.h - ((t - tLo) / (tHi - tLo)) * plot.h);

  const grid: string[] = [];
  const labels: Html[] = [];
  const xText = axisLabels(xs.ticks, xs.step);
  const yText = axisLabels(ys.ticks, ys.step);
  for (const [i, t] of xs.ticks.entries()) {
    const x = px(t);
    grid.push(`M${x} ${plot.y}v${plot.h}`);
    labels.push(html`<text class="tick x" x="${x}" y="${plot.y + plot.h + 15}" text-anchor="middle">${xText[i]}</text>`);
  }
  for (const [i, t] of ys.ticks.entries()) {
    const y = py(ty(t));
    grid.push(`M${plot.x} ${y}h${plot.w}`);
    labels.push(html`<text class="tick y" x="${plot.x - 6}" y="${y + 4}" text-anchor="end">${yText[i]}</text>`);
  }

  const paths: Html[] = [];
  for (const s of usable) {
    if (s.points.length === 0) continue;
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    const lineOf = (p: readonly Point[]) => p.map(([x, t], i) => `${i ? 'L' : 'M'}${px(x)} ${py(t)}`).join('');
    const transformed: Point[] = pts.map(([x, y]) => [x, ty(y)]);
    if (s.kind === 'noisy') {
      // A zero-length segment with round caps is a dot: one path for thousands of points.
      const dots = thin(transformed, MAX_DOTS)
        .map(([x, t]) => `M${px(x)} ${py(t)}h0`)
        .join('');
      paths.push(html`<path class="series dots" d="${dots}" stroke="${s.color}"/>`);
      const line: Point[] = pts.length >= 8 ? smooth(transformed.map((p) => p[1])).map((t, i) => [pts[i][0], t]) : transformed;
      paths.push(html`<path class="series line" d="${lineOf(thin(line, MAX_LINE_POINTS))}" stroke="${s.color}"/>`);
    } else {
      paths.push(html`<path class="series line" d="${lineOf(thin(transformed, MAX_LINE_POINTS))}" stroke="${s.color}"/>`);
      if (pts.length <= 40) {
        const marks = transformed.map(([x, t]) => `M${px(x)} ${py(t)}h0`).join('');
        paths.push(html`<path class="series markers" d="${marks}" stroke="${s.color}"/>`);
      }
    }
  }

  // The legend sits above the plot, right-aligned, so it never covers the curves.
  const legend: Html[] = [];
  const named = usable.filter((s) => s.points.length > 0);
  const explainsDots = named.some((s) => s.kind === 'noisy' && s.points.length >= 8);
  if (named.length > 1 || explainsDots) {
    let right = plot.x + plot.w;
    for (const s of [...named].reverse()) {
      const text = `${s.label}${s.kind === 'noisy' && s.points.length >= 8 ? ' (dots: raw, line: smoothed)' : ''}`;
      legend.push(html`<g class="legend"><path d="M${right - 4} ${plot.y - 10}h0" stroke="${s.color}" class="series markers"/>
<text x="${right - 12}" y="${plot.y - 6}" text-anchor="end">${text}</text></g>`);
      right -= 12 + 6 * text.length + 14;
    }
  }

  const svg = html`<svg class="chart${opts.log ? ' log' : ''}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${opts.yLabel} against ${opts.xLabel}">
${frame}<path class="grid" d="${grid.join('')}"/>
${labels}
<text class="axis-label x" x="${plot.x + plot.w / 2}" y="${H - 6}" text-anchor="middle">${opts.xLabel}</text>
<text class="axis-label y" transform="translate(14 ${plot.y + plot.h / 2}) rotate(-90)" text-anchor="middle">${opts.yLabel}${opts.log ? ' (log scale)' : ''}</text>
${paths}${legend}</svg>`;
  return { svg, dropped };
}

/** Whether a log axis is the better default: all positive and spanning more than a factor of ten. */
export function prefersLog(values: readonly number[]): boolean {
  const finite = values.filter(Number.isFinite);
  if (finite.length < 2 || finite.some((v) => v <= 0)) return false;
  const [lo, hi] = extent(finite);
  return hi / lo > 10;
}
