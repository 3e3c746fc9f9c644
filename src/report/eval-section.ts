/**
 * The report's "Quality metrics" section: what `rae eval --run DIR` wrote to DIR/eval.json (rFID,
 * gFID, KID ± std, precision/recall, PSNR/SSIM, image counts), with the feature network's caveat.
 * Reads the file itself and tolerates a damaged one (the section says so instead of failing the
 * whole report).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type Html, html } from './html.js';
import { fmt } from './sections.js';

interface Comparison {
  fid?: number;
  kid?: number;
  kidStd?: number;
  precision?: number | null;
  recall?: number | null;
  counts?: { a?: number; b?: number };
}

interface EvalJson {
  rfid?: number;
  gfid?: number | null;
  kid?: number | null;
  kidStd?: number | null;
  precision?: number | null;
  recall?: number | null;
  psnr?: number;
  ssim?: number | null;
  counts?: { reconstructions?: number; samples?: number; reference?: number };
  reconstruction?: Comparison;
  generation?: Comparison | null;
  featureNetwork?: string;
  comparable?: boolean;
  note?: string;
  decoderCheckpoint?: string;
  samplesTag?: string | null;
  seconds?: number;
  writtenAt?: string;
  warnings?: string[];
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function row(what: string, c: Comparison | null | undefined, sets: string, extra: Html | string = ''): Html {
  if (!c) return html`<tr><th>${what}</th><td colspan="5" class="missing-text">not computed</td></tr>`;
  const kid = num(c.kid) === undefined ? '—' : `${fmt(c.kid)} ± ${fmt(num(c.kidStd))}`;
  return html`<tr><th>${what}</th><td class="mono">${fmt(num(c.fid))}</td><td class="mono">${kid}</td><td class="mono">${fmt(num(c.precision ?? undefined))} / ${fmt(
    num(c.recall ?? undefined),
  )}</td><td>${sets}</td><td>${extra}</td></tr>`;
}

export function evalSection(runDir: string): Html {
  const file = path.join(runDir, 'eval.json');
  if (!existsSync(file))
    return html`<p class="missing-text">Not evaluated yet: <code>rae eval --run ${runDir}</code> computes rFID, gFID, KID and precision/recall.</p>`;
  let e: EvalJson;
  try {
    e = JSON.parse(readFileSync(file, 'utf8')) as EvalJson;
  } catch (err) {
    return html`<div class="card notice">eval.json could not be read (${err instanceof Error ? err.message : String(err)}); run <code>rae eval --run ${runDir}</code> again.</div>`;
  }
  const counts = e.counts ?? {};
  const psnr = num(e.psnr);
  const ssim = num(e.ssim ?? undefined);
  const recSets = `${counts.reconstructions ?? '?'} held-out originals vs their reconstructions`;
  const genSets = e.generation
    ? `${counts.reference ?? '?'} training images vs ${counts.samples ?? '?'} samples${e.samplesTag ? ` (“${e.samplesTag}”)` : ''}`
    : '';
  const pixel = psnr !== undefined ? `PSNR ${psnr.toFixed(2)} dB${ssim !== undefined ? ` · SSIM ${ssim.toFixed(3)}` : ''}` : '';
  const warnings = (e.warnings ?? []).filter((w) => typeof w === 'string');
  return html`<div class="card"><h3>Quality metrics</h3>
<p class="meta">${e.featureNetwork ?? 'feature network not recorded'}${e.decoderCheckpoint ? ` · decoder ${e.decoderCheckpoint}` : ''}${
    num(e.seconds) !== undefined ? ` · ${(e.seconds as number).toFixed(0)} s` : ''
  }${e.writtenAt ? ` · ${e.writtenAt.replace('T', ' ').slice(0, 19)} UTC` : ''}</p>
<table><thead><tr><th></th><th>FID</th><th>KID ± std</th><th>precision / recall (k = 3)</th><th>images</th><th></th></tr></thead><tbody>
${row('Reconstruction (rFID)', e.reconstruction, recSets, pixel)}
${e.generation === null ? html`<tr><th>Generation (gFID)</th><td colspan="5" class="missing-text">not computed (no DiT checkpoint when evaluated)</td></tr>` : row('Generation (gFID)', e.generation, genSets)}
</tbody></table>
<p class="meta">${e.note ?? ''} FID from fewer images than features (2048) is biased upwards: compare figures at equal counts; KID is unbiased (its ± is the spread over subsets).</p>
${warnings.length ? html`<details><summary>${warnings.length} warning(s)</summary><ul>${warnings.map((w) => html`<li>${w}</li>`)}</ul></details>` : ''}</div>`;
}
