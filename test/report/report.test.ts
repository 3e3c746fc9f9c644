/** The report's parts without a browser: ticks, smoothing, escaping, the tolerant run-folder reader. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { axisLabels, formatNumber, lineChart, linearTicks, logTicks, prefersLog, smooth } from '../../src/report/chart.js';
import { escapeHtml, html } from '../../src/report/html.js';
import { ImageBudget, inlinePng } from '../../src/report/images.js';
import { ReportError, renderReport, writeReport } from '../../src/report/report.js';
import { readRunFolder } from '../../src/report/run-folder.js';
import { pickHistory, stageSeconds } from '../../src/report/sections.js';
import { patternPng, writeRunFolder } from './fixture.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'rae-report-'));

describe('chart axes', () => {
  it('linear ticks are round, evenly spaced and cover the data', () => {
    const t = linearTicks(0.0123, 0.987, 5);
    expect(t.step).toBe(0.2);
    expect(t.ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(t.lo).toBeLessThanOrEqual(0.0123);
    expect(t.hi).toBeGreaterThanOrEqual(0.987);
    const steps = linearTicks(1, 1000, 6);
    expect(steps.ticks).toEqual([0, 200, 400, 600, 800, 1000]);
    // A constant series still gets a non-empty range.
    const flat = linearTicks(3, 3);
    expect(flat.hi).toBeGreaterThan(flat.lo);
  });

  it('log ticks are decades over wide ranges and 1-2-5 mantissas over short ones', () => {
    expect(logTicks(0.001, 10).ticks).toEqual([0.001, 0.01, 0.1, 1, 10]);
    expect(logTicks(0.04, 0.6).ticks).toEqual([0.05, 0.1, 0.2, 0.5]);
    const narrow = logTicks(0.31, 0.39);
    expect(narrow.ticks.length).toBeGreaterThanOrEqual(3);
    for (const v of narrow.ticks) expect(v >= narrow.lo && v <= narrow.hi).toBe(true);
    expect(() => logTicks(0, 1)).toThrow(/positive/);
  });

  it('step axes tick whole numbers; an axis uses one notation', () => {
    expect(linearTicks(3, 6, 6, 1).ticks).toEqual([3, 4, 5, 6]);
    expect(axisLabels([0, 2e-4, 4e-4, 6e-4, 8e-4, 0.001], 2e-4)).toEqual(['0', '2e-4', '4e-4', '6e-4', '8e-4', '1e-3']);
    expect(axisLabels([0, 0.25, 0.5], 0.25)).toEqual(['0', '0.25', '0.50']);
  });

  it('formats numbers briefly', () => {
    expect(formatNumber(0.0003)).toBe('3e-4');
    expect(formatNumber(1.5e-5)).toBe('1.5e-5');
    expect(formatNumber(1200)).toBe('1200');
    expect(formatNumber(0.30000000000000004, 0.1)).toBe('0.3');
    expect(formatNumber(250000)).toBe('2.5e+5');
  });

  it('smoothing is a debiased moving average: constants stay constant, short series unchanged', () => {
    expect(
      smooth([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]),
    ).toEqual(new Array(40).fill(2));
    expect(smooth([1, 5, 3])).toEqual([1, 5, 3]);
    // n = 40 → window 2 → weight 1/2: y1 = 0, y2 = (0.5·0·0.5 + 0.5·4) / (0.25 + 0.5)
    const s = smooth([0, 4, ...new Array(38).fill(4)]);
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo(2 / 0.75, 12);
  });

  it('prefers a log axis for positive series spanning more than a decade', () => {
    expect(prefersLog([1, 0.5, 0.05])).toBe(true);
    expect(prefersLog([1, 0.5, 0.2])).toBe(false);
    expect(prefersLog([1, 0, 0.001])).toBe(false);
  });

  it('a chart drops non-finite points and, on a log axis, non-positive ones, and says how many', () => {
    const pts: [number, number][] = [
      [1, 1],
      [2, Number.NaN],
      [3, 0],
      [4, 0.5],
    ];
    expect(lineChart([{ label: 'l', color: '#000', points: pts, kind: 'line' }], { xLabel: 'x', yLabel: 'y' }).dropped).toBe(1);
    expect(lineChart([{ label: 'l', color: '#000', points: pts, kind: 'line' }], { xLabel: 'x', yLabel: 'y', log: true }).dropped).toBe(2);
    const empty = lineChart([], { xLabel: 'x', yLabel: 'y' }).svg.text;
    expect(empty).toMatch(/no data to plot/);
  });
});

describe('escaping', () => {
  it('escapes interpolated text and attribute values, keeps Html', () => {
    const evil = `<script>alert(1)</script> & "quotes" 'single'`;
    expect(escapeHtml(evil)).toBe('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; &#39;single&#39;');
    const inner = html`<b>${evil}</b>`;
    expect(html`<p title="${evil}">${inner}${[evil, inner]}</p>`.text).not.toMatch(/<script/);
    expect(html`${inner}`.text.startsWith('<b>&lt;script&gt;')).toBe(true);
  });
});

describe('run folder reader', () => {
  it('keeps the later line of a step logged twice (resume) and skips a truncated last line', () => {
    const dir = tmp();
    const lines = [
      { stage: 'decoder', step: 1, loss: 1, lr: 0.1, seconds: 1 },
      { stage: 'decoder', step: 2, loss: 0.9, lr: 0.1, seconds: 2 },
      { stage: 'decoder', step: 2, loss: 0.8, lr: 0.1, seconds: 5 },
      { stage: 'decoder', step: 3, loss: null, lr: 0.1, seconds: 6 },
    ].map((l) => JSON.stringify(l));
    writeFileSync(path.join(dir, 'metrics.jsonl'), `${lines.join('\n')}\n{"stage":"decoder","st`);
    writeFileSync(path.join(dir, 'config.json'), '{ "preset": ');
    const run = readRunFolder(dir);
    expect(run.metrics.map((m) => [m.step, m.loss])).toEqual([
      [1, 1],
      [2, 0.8],
      [3, Number.NaN],
    ]);
    expect(run.problems.join(' ')).toMatch(/metrics.jsonl line 5 is not valid JSON/);
    expect(run.problems.join(' ')).toMatch(/config.json could not be read as JSON/);
    expect(run.config).toBeUndefined();
  });

  it('a missing run folder is a clear error', async () => {
    await expect(writeReport('/nonexistent/run')).rejects.toThrow(/run folder \/nonexistent\/run does not exist/);
    await expect(writeReport('/nonexistent/run')).rejects.toBeInstanceOf(ReportError);
  });

  it('an empty folder gives a report that lists what is missing', async () => {
    const file = await writeReport(tmp());
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/Not in this run yet/);
    expect(text).toMatch(/rae train-decoder --run /);
    expect(text).toMatch(/rae sample --run /);
    expect(text).not.toMatch(/<img/);
  });

  it('the same run folder gives the same page', async () => {
    const dir = tmp();
    writeRunFolder(dir, { steps: 40 });
    const at = new Date('2026-12-01T00:00:00Z');
    expect(await renderReport(readRunFolder(dir), at)).toBe(await renderReport(readRunFolder(dir), at));
  });

  it('a damaged PNG is named in the report instead of being inlined', async () => {
    const dir = tmp();
    writeRunFolder(dir, { stages: ['decoder'], steps: 100 });
    const file = path.join(dir, 'reconstructions', 'step-00000100.png');
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length >> 1));
    const text = readFileSync(await writeReport(dir), 'utf8');
    expect(text).toMatch(/step-00000100\.png is damaged/);
    expect(text.match(/<img /g)?.length).toBe(1); // the step-50 reconstruction only
  });
});

describe('images', () => {
  it('downscales a large PNG and respects the byte budget', async () => {
    const dir = tmp();
    const w = 1600;
    const png = new PNG({ width: w, height: 400 });
    // Pseudo-random pixels: incompressible, so the file is large.
    let s = 12345;
    for (let i = 0; i < png.data.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      png.data[i] = i % 4 === 3 ? 255 : s >>> 24;
    }
    const big = path.join(dir, 'big.png');
    writeFileSync(big, PNG.sync.write(png));
    const budget = new ImageBudget(10_000_000);
    const img = await inlinePng(big, budget, { maxWidth: 1024, maxBytes: 400_000 });
    if ('error' in img) throw new Error(img.error);
    expect(img.width).toBeLessThanOrEqual(1024);
    expect(img.bytes).toBeLessThanOrEqual(400_000);
    expect(img.downscaled).toBe(true);
    expect(budget.left).toBe(10_000_000 - img.bytes);
    const small = path.join(dir, 'small.png');
    writeFileSync(small, patternPng(40, 20, 1));
    const refused = await inlinePng(small, new ImageBudget(10), { maxWidth: 1024, maxBytes: 400_000 });
    expect(refused).toEqual({ error: "small.png left out: the report's image budget is spent" });
  });

  it('adds up the training time of a resumed stage (each command restarts its clock)', () => {
    const rows = [1, 2, 3, 4, 5].map((step, i) => ({ stage: 'dit', step, loss: 1, seconds: [10, 20, 5, 15, 25][i] }));
    expect(stageSeconds(rows)).toEqual({ seconds: 20 + 25, sessions: 2 });
    expect(stageSeconds([{ stage: 'dit', step: 1, loss: 1 }])).toEqual({ sessions: 0 });
  });

  it('picks the latest and older evaluations spread over the run', () => {
    expect(pickHistory([1, 2, 3], 3)).toEqual({ latest: 3, older: [2, 1] });
    expect(pickHistory([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3)).toEqual({ latest: 10, older: [9, 5, 1] });
    expect(pickHistory([], 3)).toEqual({ older: [] });
  });
});
