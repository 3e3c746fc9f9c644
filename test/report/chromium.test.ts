/**
 * report.html opened from disk in headless Chromium (Debian's `chromium`, driven by
 * playwright-core): charts drawn inside their boxes with labelled axes, every image decoded,
 * no console errors, names from the data shown literally and never run.
 */
import { existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../../src/report/report.js';
import { writeRunFolder } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const EVIL_CLASS = '<script>alert(1)</script> & "quotes"';
/** Folder names may not hold '/', so no closing tags here; an event handler instead. */
const EVIL_DIR = 'run-<img src=x onerror=alert(2)>';
const EVIL_TAG = '<svg onload=alert(3)>';

interface ChartCheck {
  paths: { cls: string; points: number; outside: number }[];
  axisLabels: string[];
  xTicks: number;
  yTicks: number;
}

/** The little of the DOM the checks use (the project's TypeScript has no DOM library). */
interface DomEl {
  tagName: string;
  textContent: string | null;
  attributes: Iterable<{ name: string }>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): DomEl | null;
  querySelectorAll(selector: string): Iterable<DomEl> & { length: number };
  ownerDocument: { title: string };
}

interface RawChart {
  box: number[];
  paths: { cls: string; d: string }[];
  axisLabels: string[];
  xTicks: number;
  yTicks: number;
}

/** Every chart's series paths (points parsed from `d`) against its plot-area rectangle. */
async function inspectCharts(page: Page): Promise<ChartCheck[]> {
  const raw: RawChart[] = await page.$$eval('svg.chart:not(.empty)', (svgs) =>
    (svgs as unknown as DomEl[]).map((svg) => {
      const box = svg.querySelector('rect.plot-area')!;
      return {
        box: ['x', 'y', 'width', 'height'].map((a) => Number(box.getAttribute(a))),
        paths: [...svg.querySelectorAll(':scope > path.series')].map((p) => ({
          cls: p.getAttribute('class') ?? '',
          d: p.getAttribute('d') ?? '',
        })),
        axisLabels: [...svg.querySelectorAll('text.axis-label')].map((t) => t.textContent ?? ''),
        xTicks: svg.querySelectorAll('text.tick.x').length,
        yTicks: svg.querySelectorAll('text.tick.y').length,
      };
    }),
  );
  return raw.map(({ box: [x, y, w, h], paths, ...rest }) => ({
    ...rest,
    paths: paths.map(({ cls, d }) => {
      // Absolute M/L commands with "x y" pairs (dots are "M x y h0").
      const pts = (d.match(/[ML][^MLh]+/g) ?? []).map((c) => c.slice(1).trim().split(/\s+/).map(Number));
      const outside = pts.filter(([px, py]) => !(px >= x - 0.5 && px <= x + w + 0.5 && py >= y - 0.5 && py <= y + h + 0.5)).length;
      return { cls, points: pts.length, outside };
    }),
  }));
}

/** The text as rendered (what a reader sees), not the DOM's raw text content. */
function shownText(page: Page): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point of the check
  return page.innerText('body');
}

describe.skipIf(!existsSync(CHROMIUM))('report.html in headless Chromium', () => {
  let browser: Browser;
  const root = mkdtempSync(path.join(tmpdir(), 'rae-report-chromium-'));

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless=new', '--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens the report; collects console errors, page errors and dialogs (an alert would be one). */
  async function open(file: string) {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    const dialogs: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    return { page, errors, dialogs };
  }

  it('draws the charts of both stages, PSNR/SSIM, and every image', async () => {
    const dir = path.join(root, 'full');
    writeRunFolder(dir);
    const file = await writeReport(dir);
    const size = statSync(file).size;
    expect(size).toBeLessThan(1_000_000);
    const { page, errors } = await open(file);

    const charts = await inspectCharts(page);
    // Stage 1: loss and gradient norm (linear + log views each), learning rate, throughput;
    // stage 2: the same without gradient norm; then PSNR and SSIM.
    expect(charts.length).toBe(6 + 4 + 2);
    for (const c of charts) {
      expect(c.paths.length).toBeGreaterThan(0);
      for (const p of c.paths) {
        expect(p.outside, `${p.cls}: points outside the plot box`).toBe(0);
        expect(p.points).toBeGreaterThanOrEqual(4); // PSNR/SSIM: 4 evaluations
      }
      expect(c.axisLabels[0]).toBe('step');
      expect(c.axisLabels[1].length).toBeGreaterThan(0);
      expect(c.xTicks).toBeGreaterThanOrEqual(3);
      expect(c.yTicks).toBeGreaterThanOrEqual(3);
    }
    // The noisy loss: all 200 logged steps as dots plus the smoothed line.
    const lossDots = charts.flatMap((c) => c.paths).filter((p) => p.cls === 'series dots');
    expect(lossDots.some((p) => p.points === 200)).toBe(true);
    const labels = charts.flatMap((c) => c.axisLabels);
    for (const l of ['loss', 'loss (log scale)', 'learning rate', 'gradient norm', 'images / s', 'PSNR (dB)', 'SSIM'])
      expect(labels).toContain(l);

    // Drawn, not just present: the visible charts take up room on the page.
    const visible = await page.$$eval('svg.chart', (els) => els.filter((e) => e.getBoundingClientRect().width > 300).length);
    expect(visible).toBe(4 + 3 + 2); // one view of each linear/log pair is hidden

    // The CSS-only linear/log switch (the page has no script).
    const firstLoss = page.locator('.scale-toggle').first();
    await firstLoss.locator('label.lin').click();
    expect(await firstLoss.locator('.view.lin svg').isVisible()).toBe(true);
    expect(await firstLoss.locator('.view.log svg').isVisible()).toBe(false);
    await firstLoss.locator('label.log').click();
    expect(await firstLoss.locator('.view.log svg').isVisible()).toBe(true);

    const images = await page.$$eval('img', (els) =>
      els.map((i) => ({ ok: i.complete && i.naturalWidth > 0, data: i.src.startsWith('data:image/png;base64,'), alt: i.alt })),
    );
    // 4 reconstructions (latest + 3 older), the sample grid, 10 class grids.
    expect(images.length).toBe(15);
    for (const i of images) expect(i, i.alt).toEqual({ ok: true, data: true, alt: i.alt });
    const text = await shownText(page);
    for (const name of ['airplane', 'truck', 'llvmpipe', 'a1b2c3d4', 'train-decoder', 'PSNR 24.00 dB', 'dinov2-with-registers-small'])
      expect(text).toContain(name);
    expect(text).toContain('5 min 0 s of training in 2 sessions (resumed)');
    expect(text).toContain('DiT at step 200 · EMA weights · heun, 25 steps · CFG scale 1.5 on t ∈ [0.1, 1] · 40 images');

    await page.screenshot({ path: path.join(tmpdir(), 'rae-report-screenshot.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a run with stage 1 only shows it and says what is missing', async () => {
    const dir = path.join(root, 'stage1');
    writeRunFolder(dir, { stages: ['decoder'], steps: 100 });
    const { page, errors } = await open(await writeReport(dir));
    const text = await shownText(page);
    expect(text).toMatch(/Stage 2 — diffusion transformer — not trained yet: rae train-dit --run /);
    expect(text).toMatch(/Samples — none yet: rae sample --run /);
    const charts = await inspectCharts(page);
    expect(charts.length).toBe(6 + 2);
    for (const c of charts) for (const p of c.paths) expect(p.outside).toBe(0);
    const loaded = await page.$$eval('img', (els) => els.map((i) => i.naturalWidth > 0));
    expect(loaded).toEqual([true, true]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('names from the data and the config are shown literally and never run', async () => {
    const dir = path.join(root, EVIL_DIR);
    writeRunFolder(dir, { classNames: [EVIL_CLASS, 'cat'], steps: 60 });
    // A sample set whose folder name is markup, a config string and a stage name with markup.
    const tagDir = path.join(dir, 'samples', EVIL_TAG);
    mkdirSync(tagDir, { recursive: true });
    writeFileSync(
      path.join(tagDir, 'samples.json'),
      JSON.stringify({ tag: EVIL_TAG, step: 10, sampler: `euler"><script>alert(4)</script>` }),
    );
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ preset: `"><script>alert(5)</script>`, data: { source: EVIL_CLASS } }));
    writeFileSync(path.join(dir, 'metrics.jsonl'), `${JSON.stringify({ stage: '<b onmouseover=alert(6)>x', step: 1, loss: 1, lr: 0 })}\n`, {
      flag: 'a',
    });
    const { page, errors, dialogs } = await open(await writeReport(dir));

    const dom = await page.$eval('html', (el) => {
      const root = el as unknown as DomEl;
      return {
        scripts: root.querySelectorAll('script').length,
        handlers: [...root.querySelectorAll('*')].flatMap((e) =>
          [...e.attributes].filter((a) => a.name.startsWith('on')).map((a) => `${e.tagName} ${a.name}`),
        ),
        bold: root.querySelectorAll('b[onmouseover]').length,
        foreignImages: [...root.querySelectorAll('img')].filter((i) => !(i.getAttribute('src') ?? '').startsWith('data:')).length,
        title: root.ownerDocument.title,
      };
    });
    expect(dom).toEqual({ scripts: 0, handlers: [], bold: 0, foreignImages: 0, title: `RAE run ${EVIL_DIR} — report` });
    const text = await shownText(page);
    for (const literal of [EVIL_CLASS, EVIL_DIR, EVIL_TAG, '"><script>alert(5)</script>', 'Stage “<b onmouseover=alert(6)>x”'])
      expect(text).toContain(literal);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
