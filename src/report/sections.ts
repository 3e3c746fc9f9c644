/** The report's sections, each a function of what the run folder holds (see run-folder.ts). */
import { lineChart, prefersLog, type Series } from './chart.js';
import { type Html, html } from './html.js';
import { type ImageBudget, type InlineImage, inlinePng } from './images.js';
import type { MetricRow, Reconstruction, RunFolder, SampleSet } from './run-folder.js';

export const STAGES: Record<string, { title: string; color: string; command: string }> = {
  decoder: { title: 'Stage 1 — RAE decoder', color: '#2563eb', command: 'train-decoder' },
  dit: { title: 'Stage 2 — diffusion transformer', color: '#c2410c', command: 'train-dit' },
};
const EXTRA_COLORS = ['#0f766e', '#7c3aed', '#be185d'];

/** Stages in the order they run, then any other stage name found in the metrics. */
export function stagesOf(metrics: readonly MetricRow[]): string[] {
  const found = [...new Set(metrics.map((m) => m.stage))];
  return [...Object.keys(STAGES).filter((s) => found.includes(s)), ...found.filter((s) => !(s in STAGES))];
}

export function stageInfo(stage: string, i: number) {
  return STAGES[stage] ?? { title: `Stage “${stage}”`, color: EXTRA_COLORS[i % EXTRA_COLORS.length], command: '' };
}

export function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(2).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(digits)));
}

export function duration(seconds: number | undefined): string {
  if (seconds === undefined) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - 60 * m)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Training time of a stage: each command logs seconds since it started, so a resumed run's
 * clock restarts; the segments' last values add up.
 */
export function stageSeconds(rows: readonly MetricRow[]): { seconds?: number; sessions: number } {
  let total = 0;
  let sessions = 0;
  let prev: number | undefined;
  for (const r of rows) {
    if (r.seconds === undefined) continue;
    if (prev === undefined || r.seconds < prev) {
      if (prev !== undefined) total += prev;
      sessions++;
    }
    prev = r.seconds;
  }
  return prev === undefined ? { sessions: 0 } : { seconds: total + prev, sessions };
}

let toggleId = 0;

/** A chart with a linear/log switch made of radio buttons and CSS (the page has no script). */
function scaleToggle(series: Series[], xLabel: string, yLabel: string, logFirst: boolean): Html {
  const lin = lineChart(series, { xLabel, yLabel });
  const log = lineChart(series, { xLabel, yLabel, log: true });
  if (log.dropped > 0) return lin.svg; // zero or negative values: no log axis
  const id = `scale-${toggleId++}`;
  return html`<div class="scale-toggle">
<input type="radio" class="lin" name="${id}" id="${id}-lin"${logFirst ? '' : html` checked`}>
<input type="radio" class="log" name="${id}" id="${id}-log"${logFirst ? html` checked` : ''}>
<div class="switch"><label class="lin" for="${id}-lin">linear</label><label class="log" for="${id}-log">log</label></div>
<div class="view lin">${lin.svg}</div><div class="view log">${log.svg}</div></div>`;
}

function chartFigure(title: string, body: Html, note?: string): Html {
  return html`<figure class="chart-figure"><h4>${title}</h4>${body}${note ? html`<figcaption>${note}</figcaption>` : ''}</figure>`;
}

function seriesOf(rows: readonly MetricRow[], key: keyof MetricRow): [number, number][] {
  return rows.filter((r) => typeof r[key] === 'number' && Number.isFinite(r[key] as number)).map((r) => [r.step, r[key] as number]);
}

export function trainingSection(run: RunFolder): Html {
  toggleId = 0; // ids unique within the page, and the same page for the same run folder
  const stages = stagesOf(run.metrics);
  if (stages.length === 0) return html`<p class="missing-text">No training metrics yet (metrics.jsonl is missing or empty).</p>`;
  return html`${stages.map((stage, i) => {
    const info = stageInfo(stage, i);
    const rows = run.metrics.filter((m) => m.stage === stage);
    const losses = seriesOf(rows, 'loss');
    const bad = rows.length - losses.length;
    const last = rows[rows.length - 1];
    const time = stageSeconds(rows);
    const ips = median(rows.map((r) => r.imagesPerSecond).filter((v): v is number => v !== undefined));
    const figures: Html[] = [
      chartFigure(
        'Loss',
        scaleToggle(
          [{ label: 'loss', color: info.color, points: losses, kind: 'noisy' }],
          'step',
          'loss',
          prefersLog(losses.map((p) => p[1])),
        ),
        bad > 0 ? `${bad} logged step(s) had a non-finite loss and are not drawn.` : undefined,
      ),
    ];
    const lr = seriesOf(rows, 'lr');
    if (lr.length > 0)
      figures.push(
        chartFigure(
          'Learning rate',
          lineChart([{ label: 'lr', color: '#475569', points: lr, kind: 'line' }], { xLabel: 'step', yLabel: 'learning rate' }).svg,
        ),
      );
    const grad = seriesOf(rows, 'gradNorm');
    if (grad.length > 0)
      figures.push(
        chartFigure(
          'Gradient norm',
          scaleToggle([{ label: 'grad norm', color: '#0f766e', points: grad, kind: 'noisy' }], 'step', 'gradient norm', false),
        ),
      );
    const speed = seriesOf(rows, 'imagesPerSecond');
    if (speed.length > 0)
      figures.push(
        chartFigure(
          'Throughput',
          lineChart([{ label: 'images/s', color: '#7c3aed', points: speed, kind: 'noisy' }], { xLabel: 'step', yLabel: 'images / s' }).svg,
        ),
      );
    return html`<div class="card" id="stage-${i}"><h3>${info.title}</h3>
<p class="meta">${rows.length} logged steps up to step ${last.step}; loss ${fmt(losses[0]?.[1])} → ${fmt(losses[losses.length - 1]?.[1])}${
      time.seconds !== undefined
        ? html`; ${duration(time.seconds)} of training${time.sessions > 1 ? ` in ${time.sessions} sessions (resumed)` : ''}`
        : ''
    }${ips !== undefined ? html`; median ${fmt(ips, 3)} images/s` : ''}</p>
<div class="charts">${figures}</div></div>`;
  })}`;
}

/** PSNR/SSIM by step from the metrics and the reconstructions' JSON files (the latter win on a tie). */
function qualityPoints(run: RunFolder, key: 'psnr' | 'ssim'): [number, number][] {
  const byStep = new Map<number, number>();
  for (const m of run.metrics) if (m[key] !== undefined) byStep.set(m.step, m[key]!);
  for (const r of run.reconstructions) if (r[key] !== undefined) byStep.set(r.step, r[key]!);
  return [...byStep.entries()].sort((a, b) => a[0] - b[0]);
}

function imgTag(img: InlineImage, alt: string, maxDisplay: number): Html {
  // Small tiles (32-pixel images) are shown enlarged by a whole factor, without blurring.
  const k = Math.max(1, Math.min(8, Math.floor(maxDisplay / img.width)));
  return html`<img src="${img.uri}" width="${img.width * k}" height="${img.height * k}" alt="${alt}"${k > 1 ? html` class="pixelated"` : ''}>`;
}

async function figureOf(
  file: string | undefined,
  budget: ImageBudget,
  alt: string,
  caption: Html | string,
  maxDisplay: number,
): Promise<Html> {
  if (!file) return html`<figure><p class="missing-text">image missing</p><figcaption>${caption}</figcaption></figure>`;
  // Twice the shown width keeps detail on dense screens; thumbnails get a smaller share of bytes.
  const img = await inlinePng(file, budget, { maxWidth: Math.min(1024, 2 * maxDisplay), maxBytes: maxDisplay >= 700 ? 500_000 : 200_000 });
  if ('error' in img) return html`<figure><p class="missing-text">${img.error}</p><figcaption>${caption}</figcaption></figure>`;
  return html`<figure>${imgTag(img, alt, maxDisplay)}<figcaption>${caption}${img.downscaled ? ' (downscaled)' : ''}</figcaption></figure>`;
}

/** The latest, then up to `n` earlier ones spread over the run (the first included). */
export function pickHistory<T>(items: readonly T[], n: number): { latest?: T; older: T[] } {
  if (items.length === 0) return { older: [] };
  const earlier = items.slice(0, -1);
  if (earlier.length <= n) return { latest: items[items.length - 1], older: earlier.reverse() };
  const picked = new Set<number>();
  for (let i = 0; i < n; i++) picked.add(Math.round((i * (earlier.length - 1)) / Math.max(1, n - 1)));
  return { latest: items[items.length - 1], older: [...picked].sort((a, b) => b - a).map((i) => earlier[i]) };
}

function reconCaption(r: Reconstruction): string {
  const parts = [`step ${r.step}`];
  if (r.psnr !== undefined) parts.push(`PSNR ${r.psnr.toFixed(2)} dB`);
  if (r.ssim !== undefined) parts.push(`SSIM ${r.ssim.toFixed(3)}`);
  if (r.count !== undefined) parts.push(`${r.count} held-out images`);
  return parts.join(' · ');
}

export async function qualitySection(run: RunFolder, budget: ImageBudget): Promise<Html> {
  const psnr = qualityPoints(run, 'psnr');
  const ssim = qualityPoints(run, 'ssim');
  const charts: Html[] = [];
  if (psnr.length > 0)
    charts.push(
      chartFigure(
        'PSNR (held-out)',
        lineChart([{ label: 'PSNR', color: '#059669', points: psnr, kind: 'line' }], { xLabel: 'step', yLabel: 'PSNR (dB)' }).svg,
      ),
    );
  if (ssim.length > 0)
    charts.push(
      chartFigure(
        'SSIM (held-out)',
        lineChart([{ label: 'SSIM', color: '#7c3aed', points: ssim, kind: 'line' }], { xLabel: 'step', yLabel: 'SSIM' }).svg,
      ),
    );
  const withPng = run.reconstructions.filter((r) => r.png);
  const { latest, older } = pickHistory(withPng, 3);
  const figures: Html[] = [];
  if (latest)
    figures.push(
      await figureOf(latest.png, budget, `reconstructions at step ${latest.step}`, html`<b>Latest</b> · ${reconCaption(latest)}`, 720),
    );
  for (const r of older) figures.push(await figureOf(r.png, budget, `reconstructions at step ${r.step}`, reconCaption(r), 300));
  if (charts.length === 0 && figures.length === 0)
    return html`<p class="missing-text">No held-out evaluation yet (no PSNR/SSIM in the metrics, no reconstructions/).</p>`;
  return html`${charts.length ? html`<div class="card"><div class="charts">${charts}</div></div>` : ''}
${
  figures.length
    ? html`<div class="card"><h3>Reconstructions</h3><p class="meta">Top row: held-out originals; bottom row: the decoder's reconstructions from the frozen encoder's tokens.${
        withPng.length > 4 ? ` Showing 4 of ${withPng.length} evaluations.` : ''
      }</p><div class="gallery">${figures}</div></div>`
    : html`<p class="missing-text">No reconstruction images (reconstructions/step-*.png) yet.</p>`
}`;
}

function samplerLine(s: SampleSet): string {
  const parts: string[] = [];
  if (s.step !== undefined && s.step >= 0) parts.push(`DiT at step ${s.step}`);
  if (s.weights) parts.push(`${s.weights === 'ema' ? 'EMA' : s.weights} weights`);
  if (s.sampler) parts.push(`${s.sampler}${s.steps !== undefined ? `, ${s.steps} steps` : ''}`);
  const g = s.guidance;
  if (g) {
    const kind = typeof g.kind === 'string' ? g.kind : 'guidance';
    if (kind === 'none') parts.push('no guidance');
    else {
      const name = kind === 'cfg' ? 'CFG' : kind === 'auto' ? 'AutoGuidance' : kind;
      const scale = typeof g.scale === 'number' ? ` scale ${g.scale}` : '';
      const interval = Array.isArray(g.interval) ? ` on t ∈ [${g.interval.map(String).join(', ')}]` : '';
      const guide = typeof g.guide === 'string' ? `, guide ${g.guide}` : '';
      parts.push(`${name}${scale}${interval}${guide}`);
    }
  }
  if (s.count !== undefined) parts.push(`${s.count} images`);
  if (s.seed !== undefined) parts.push(`seed ${s.seed}`);
  if (s.seconds !== undefined) parts.push(duration(s.seconds));
  return parts.join(' · ');
}

const MAX_CLASS_GRIDS = 10;
const MAX_OLDER_SETS = 3;

export async function samplesSection(run: RunFolder, budget: ImageBudget): Promise<Html> {
  if (run.samples.length === 0) return html`<p class="missing-text">No samples yet (samples/ is missing or empty).</p>`;
  const [latest, ...rest] = run.samples;
  const cards: Html[] = [];
  const classFigures: Html[] = [];
  for (const { k, png } of latest.classGrids.slice(0, MAX_CLASS_GRIDS)) {
    const name = latest.classNames.get(k);
    classFigures.push(
      await figureOf(
        png,
        budget,
        `samples of class ${name ?? k}`,
        name !== undefined ? html`<b>${name}</b> · class ${k}` : `class ${k}`,
        540,
      ),
    );
  }
  const more = latest.classGrids.length - classFigures.length;
  cards.push(html`<div class="card"><h3>Samples “${latest.tag}”</h3><p class="meta">${samplerLine(latest)}</p>
${latest.grid ? await figureOf(latest.grid, budget, `all samples of ${latest.tag}`, 'All classes (class-balanced labels)', 720) : ''}
${classFigures.length ? html`<div class="classes">${classFigures}</div>` : html`<p class="missing-text">No per-class grids (class-&lt;k&gt;.png) in this set.</p>`}
${more > 0 ? html`<p class="meta">${more} more class grids are in ${latest.dir} (the report shows the first ${MAX_CLASS_GRIDS}).</p>` : ''}</div>`);
  const older: Html[] = [];
  for (const s of rest.slice(0, MAX_OLDER_SETS))
    older.push(await figureOf(s.grid ?? s.classGrids[0]?.png, budget, `samples ${s.tag}`, html`<b>${s.tag}</b> · ${samplerLine(s)}`, 300));
  if (older.length)
    cards.push(
      html`<div class="card"><h3>Earlier sample sets</h3><div class="gallery">${older}</div>${
        rest.length > MAX_OLDER_SETS ? html`<p class="meta">${rest.length - MAX_OLDER_SETS} older sets not shown.</p>` : ''
      }</div>`,
    );
  return html`${cards}`;
}
