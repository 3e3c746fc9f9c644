/**
 * Sanity table for the FID pipeline on CIFAR-10 (/work/shared/datasets/cifar10-jpeg.tar.gz): two
 * samples of the same distribution (test vs train, all classes) must be far closer than two
 * classes (airplane vs frog, both from train, disjoint images). n images per set, spread evenly
 * over each set's files (so every class appears in the mixed sets). Features of each set are
 * saved in the temp folder so the table can be recomputed without the network.
 *
 * Usage: npx vite-node bench/cifar-fid-sanity.ts [n per set, default 120] [archive]
 * Writes bench/results/cifar-fid-sanity.md and prints the table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareFeatureSets } from '../src/eval/compare.js';
import { extractFeatures, loadFeatureNetwork } from '../src/eval/extract.js';
import { featureSet, type FeatureSet } from '../src/eval/features.js';
import { decodeToRgb, type ImageSource } from '../src/eval/image-set.js';
import { init, shutdown } from '../src/gpu/runtime.js';
import { openImageArchive } from '../src/io/formats/folder.js';
import type { RecordSource } from '../src/io/formats/source.js';
import { loadSafetensors, openSafetensors, saveSafetensors } from '../src/io/safetensors.js';
import { adapterLine } from './common.js';

const n = Number(process.argv[2] ?? 120);
const archive = process.argv[3] ?? '/work/shared/datasets/cifar10-jpeg.tar.gz';
const outDir = path.resolve(import.meta.dirname, 'results');
// Features are kept outside the repository (4 MB at n = 120): a rerun recomputes only the table.
const featureFile = path.join(os.tmpdir(), `rae-cifar-fid-sanity-features-${n}.safetensors`);

/** n records of `src` (optionally of one class), evenly spaced, as an image set. */
function pick(src: RecordSource, label: string, cls?: string): ImageSource {
  const all = [...src.labels.keys()].filter((i) => cls === undefined || src.classes[src.labels[i]] === cls);
  if (all.length < n) throw new Error(`${label}: only ${all.length} images`);
  const idx = Array.from({ length: n }, (_, i) => all[Math.floor(((i + 0.5) * all.length) / n)]);
  return {
    name: label,
    count: n,
    read: async (start, end) => {
      const sel = idx.slice(start, end);
      const raws = await src.load(sel);
      return Promise.all(raws.map((r, i) => decodeToRgb(r, src.describe(sel[i]))));
    },
    close: async () => {},
  };
}

await init();
console.log(adapterLine());
const t0 = performance.now();
const net = loadFeatureNetwork();
const cached = fs.existsSync(featureFile) ? loadSafetensors(featureFile) : undefined;
const feats = new Map<string, FeatureSet>();
// Extraction timings travel with the cached features (metadata), so a rerun still reports them.
const timing: string[] = [];
if (cached) {
  const st = openSafetensors(featureFile);
  timing.push(...JSON.parse(st.metadata.timing ?? '[]'));
  st.close();
}
const sets: [string, string, string | undefined][] = [
  ['test (all classes)', 'test', undefined],
  ['train (all classes)', 'train', undefined],
  ['train airplane', 'train', 'airplane'],
  ['train frog', 'train', 'frog'],
];
const sources = new Map<string, RecordSource>();
for (const [label, split, cls] of sets) {
  const hit = cached?.get(label);
  if (hit) {
    feats.set(label, featureSet(hit.data as Float32Array, hit.shape[0], hit.shape[1]));
    continue;
  }
  if (!sources.has(split)) sources.set(split, await openImageArchive(archive, split));
  const t = performance.now();
  feats.set(label, await extractFeatures(pick(sources.get(split)!, label, cls), net, { batch: 8, label }));
  const s = (performance.now() - t) / 1000;
  timing.push(`${label}: ${n} images in ${s.toFixed(0)} s (${(n / s).toFixed(2)} img/s)`);
  saveSafetensors(
    featureFile,
    Object.fromEntries([...feats].map(([k, f]) => [k, { shape: [f.count, f.dim], data: f.data as Float32Array }])),
    { timing: JSON.stringify(timing) },
  );
}
net.dispose();
const rows: string[] = [];
for (const [a, b] of [
  ['test (all classes)', 'train (all classes)'],
  ['train airplane', 'train frog'],
  ['test (all classes)', 'train airplane'],
]) {
  const r = compareFeatureSets(feats.get(a)!, feats.get(b)!, { a, b }, { seed: 0 });
  rows.push(
    `| ${a} vs ${b} | ${r.counts.a} / ${r.counts.b} | ${r.fid.toFixed(3)} | ${r.kid.toExponential(2)} ± ${r.kidStd.toExponential(1)} | ${r.precision?.toFixed(3)} / ${r.recall?.toFixed(3)} |`,
  );
}
const total = (performance.now() - t0) / 1000;
const text = `# CIFAR-10 FID sanity (nsfwjs InceptionV3 features, mixed10 average, 299×299 bilinear)

${adapterLine()} · ${new Date().toISOString().slice(0, 16)} UTC · \`npx vite-node bench/cifar-fid-sanity.ts ${n}\`
(${archive}; n images per set evenly spaced over the set's files; KID with 100 subsets of n)

| sets | images | FID | KID ± std | precision / recall |
| --- | --- | --- | --- | --- |
${rows.join('\n')}

FIDs from ${n} samples at 2048 features are biased upwards (singular covariances); compare them
with each other, not with published values (these weights were fine-tuned for another task).
KID's subset size is min(1000, n) = n here, so every subset is a whole set and the ± is round-off.
Feature extraction (first run; load average 20–28 on the shared 2-core machine): ${timing.join('; ')}. This run: ${total.toFixed(0)} s.
`;
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, 'cifar-fid-sanity.md'), text);
console.log(text);
shutdown();
