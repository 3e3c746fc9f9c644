/**
 * `report.html`: one self-contained page about a run folder — curves as inline SVG, images as
 * data: URIs, no script, no external file — so it opens from disk anywhere and can be mailed.
 * A content-security policy forbids scripts and remote loads, so even a mistake in escaping
 * names taken from the data could not run anything.
 */
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { evalSection } from './eval-section.js';
import { type Html, html, trusted } from './html.js';
import { ImageBudget } from './images.js';
import { hasProbe, probeHeadline, probeSection } from './probe-section.js';
import { type RunFolder, readRunFolder } from './run-folder.js';

export { ReportError } from './run-folder.js';
import { fmt, qualitySection, STAGES, samplesSection, stageInfo, stagesOf, trainingSection } from './sections.js';
import { STYLE } from './style.js';
import { configSection, setupSection, timingsSection } from './tables.js';

/** Inlined PNG bytes at most; images past it are listed as left out (base64 adds a third). */
const IMAGE_BUDGET_BYTES = 4_000_000;

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What a complete run has and this one does not, with the command that produces it. */
function missingParts(run: RunFolder): Html[] {
  const dir = shellQuote(run.dir);
  const out: Html[] = [];
  const stages = new Set(run.metrics.map((m) => m.stage));
  if (!run.config) out.push(html`<li><b>Configuration</b> — no config.json (every <code>rae</code> command writes it).</li>`);
  if (!run.adapter && !run.commands.length) out.push(html`<li><b>Adapter, data and timings</b> — no run.json.</li>`);
  for (const [stage, info] of Object.entries(STAGES))
    if (!stages.has(stage)) out.push(html`<li><b>${info.title}</b> — not trained yet: <code>rae ${info.command} --run ${dir}</code></li>`);
  if (run.reconstructions.every((r) => !r.png))
    out.push(html`<li><b>Reconstructions</b> — none yet (written at stage 1's evaluation steps).</li>`);
  if (run.samples.length === 0) out.push(html`<li><b>Samples</b> — none yet: <code>rae sample --run ${dir}</code></li>`);
  return out;
}

function statusStrip(run: RunFolder): Html {
  const items: Html[] = stagesOf(run.metrics).map((stage, i) => {
    const rows = run.metrics.filter((m) => m.stage === stage);
    const last = rows[rows.length - 1];
    return html`<li><b>${stageInfo(stage, i).title}</b>step ${last.step} · loss ${fmt(last.loss)}</li>`;
  });
  for (const [stage, info] of Object.entries(STAGES))
    if (!run.metrics.some((m) => m.stage === stage)) items.push(html`<li class="missing"><b>${info.title}</b>not run yet</li>`);
  const recon = run.reconstructions[run.reconstructions.length - 1];
  if (recon?.psnr !== undefined)
    items.push(
      html`<li><b>Held-out reconstruction</b>PSNR ${recon.psnr.toFixed(2)} dB${recon.ssim !== undefined ? html` · SSIM ${recon.ssim.toFixed(3)}` : ''}</li>`,
    );
  items.push(
    run.samples.length
      ? html`<li><b>Samples</b>${run.samples.length} set(s), latest “${run.samples[0].tag}”</li>`
      : html`<li class="missing"><b>Samples</b>none yet</li>`,
  );
  const probe = probeHeadline(run.dir);
  if (probe !== undefined) items.push(html`<li><b>Linear probe</b>top-1 ${(100 * probe).toFixed(1)}%</li>`);
  if (run.data && typeof run.data.name === 'string') items.push(html`<li><b>Data</b>${run.data.name}</li>`);
  return html`<ul class="status">${items}</ul>`;
}

export async function renderReport(run: RunFolder, generatedAt = new Date()): Promise<string> {
  const budget = new ImageBudget(IMAGE_BUDGET_BYTES);
  const missing = missingParts(run);
  const sections: [id: string, title: string, body: Html][] = [
    ['training', 'Training curves', trainingSection(run)],
    ['quality', 'Reconstruction quality', await qualitySection(run, budget)],
    ['metrics', 'Quality metrics (FID, KID)', evalSection(run.dir)],
    ['samples', 'Samples', await samplesSection(run, budget)],
    ...(hasProbe(run.dir) ? [['probe', 'Linear probe', probeSection(run.dir)] as [string, string, Html]] : []),
    ['timings', 'Timings', timingsSection(run)],
    ['setup', 'Adapter and data', setupSection(run)],
    ['config', 'Configuration', configSection(run)],
  ];
  const page = html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RAE run ${run.name} — report</title>
<style>${trusted(STYLE)}</style></head>
<body><header><h1>RAE training report</h1>
<p class="sub">Run <b>${run.name}</b> · <span class="mono">${run.dir}</span> · written ${generatedAt.toISOString().replace('T', ' ').slice(0, 19)} UTC</p>
${statusStrip(run)}
<nav>${sections.map(([id, title]) => html`<a href="#${id}">${title}</a>`)}${run.problems.length ? html`<a href="#problems">Problems</a>` : ''}</nav></header>
<main>
${missing.length ? html`<section id="missing"><h2>Not in this run yet</h2><div class="card notice"><ul>${missing}</ul></div></section>` : ''}
${sections.map(([id, title, body]) => html`<section id="${id}"><h2>${title}</h2>${body}</section>`)}
${
  run.problems.length
    ? html`<section id="problems"><h2>Problems reading the run folder</h2><div class="card notice"><ul>${run.problems.map((p) => html`<li>${p}</li>`)}</ul></div></section>`
    : ''
}
</main>
<footer>Written by rae-webgpu (<code>rae report --run DIR</code> writes it again). One self-contained file: images are embedded, charts are SVG, and the page runs no scripts.</footer>
</body></html>
`;
  return page.text;
}

/** Writes DIR/report.html for the run folder DIR (replacing it atomically) and returns its path. */
export async function writeReport(runDir: string): Promise<string> {
  const run = readRunFolder(runDir);
  const text = await renderReport(run);
  const file = path.join(run.dir, 'report.html');
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
  return file;
}
