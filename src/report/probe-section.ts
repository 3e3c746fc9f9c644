/**
 * The report's linear-probe section: DIR/probe.json (the run's encoder) and DIR/probe-random.json
 * (the same architecture at random initialisation), as written by `rae probe --run DIR` and the
 * demo. An unreadable file is a line in the section, not a failed report.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type Html, html } from './html.js';
import { duration, fmt } from './sections.js';

export const PROBE_FILES = [
  { file: 'probe.json', label: "the run's encoder" },
  { file: 'probe-random.json', label: 'same architecture, random initialisation' },
] as const;

interface ProbeJson {
  accuracy?: number;
  trainAccuracy?: number;
  chance?: number;
  classes?: number;
  trainImages?: number;
  testImages?: number;
  split?: string;
  data?: string;
  encoder?: string;
  featureDim?: number;
  weightDecay?: number;
  epochs?: number;
  seconds?: number;
}

const pct = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '—');
const num = (v: unknown) => (typeof v === 'number' ? v : undefined);

/** Whether the run folder holds any probe result (the section is left out otherwise). */
export function hasProbe(runDir: string): boolean {
  return PROBE_FILES.some((p) => existsSync(path.join(runDir, p.file)));
}

/** The highest probe accuracy found, for the report's status strip. */
export function probeHeadline(runDir: string): number | undefined {
  const f = path.join(runDir, 'probe.json');
  if (!existsSync(f)) return undefined;
  try {
    return num((JSON.parse(readFileSync(f, 'utf8')) as ProbeJson).accuracy);
  } catch {
    return undefined;
  }
}

export function probeSection(runDir: string): Html {
  const rows: Html[] = [];
  const problems: string[] = [];
  for (const { file, label } of PROBE_FILES) {
    const f = path.join(runDir, file);
    if (!existsSync(f)) continue;
    let r: ProbeJson;
    try {
      r = JSON.parse(readFileSync(f, 'utf8')) as ProbeJson;
    } catch (e) {
      problems.push(`${file} could not be read as JSON (${(e as Error).message}).`);
      continue;
    }
    rows.push(
      html`<tr><td>${label}<br><span class="meta">${r.encoder ?? ''}</span></td><td class="num"><b>${pct(r.accuracy)}</b></td><td class="num">${pct(r.trainAccuracy)}</td><td class="num">${pct(r.chance)}</td><td class="num">${fmt(num(r.trainImages), 8)} / ${fmt(num(r.testImages), 8)}${r.split === 'test' ? ' (test split)' : r.split ? ' (held out)' : ''}</td><td class="num">${fmt(num(r.featureDim), 6)}</td><td class="num">${fmt(num(r.weightDecay))}</td><td class="num">${duration(num(r.seconds))}</td></tr>`,
    );
  }
  const table = rows.length
    ? html`<table><thead><tr><th>encoder</th><th>held-out top-1</th><th>train top-1</th><th>chance</th><th>train / test images</th><th>feature dim</th><th>weight decay</th><th>time</th></tr></thead><tbody>${rows}</tbody></table>`
    : '';
  return html`<div class="card"><p class="meta">Logistic regression on the frozen encoder's mean-pooled latent tokens (standardised with the training images' statistics; weight decay chosen on a validation split of the training images), trained on the GPU; accuracy on images it never saw. The paper judges encoders by this figure.</p>${table}${
    problems.length ? html`<ul>${problems.map((p) => html`<li>${p}</li>`)}</ul>` : ''
  }</div>`;
}
