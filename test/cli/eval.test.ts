/**
 * `rae eval --a --b` as a user runs it (a child process through vite-node): two tiny sets of
 * random PNGs of different sizes (one as class folders, one as a .tar.gz), the JSON checked
 * against the metrics recomputed from the features the command saved (FID by NumPy's float64
 * nuclear-norm form, KID and precision/recall by the library functions), and bad input as one
 * line on stderr: a missing folder, an unreadable image (named), too few images, a corrupt
 * --inception file (the tensor named), --a without --b.
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { featureSet } from '../../src/eval/features.js';
import { FID_INCEPTION_REQUIRED } from '../../src/eval/fid-inception-layout.js';
import { evalCommand } from '../../src/cli/eval-command.js';
import { kernelInceptionDistance } from '../../src/eval/kid.js';
import { precisionRecall } from '../../src/eval/precision-recall.js';
import { loadSafetensors, saveSafetensors, type WriteTensor } from '../../src/io/safetensors.js';
import { ownLines, rae as raeCli, type Ran } from '../helpers/cli.js';

const PYTHON = '/usr/bin/python3';
const hasNumpy = spawnSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

const tmp = () => fs.mkdtempSync(path.join(tmpdir(), 'rae-eval-cli-'));
/** `rae eval ARGS`. */
const rae = (args: string[]) => raeCli(['eval', ...args]);

function expectOneLineError(r: Ran, pattern: RegExp): void {
  expect(r.status, r.stdout + r.stderr).not.toBe(0);
  const lines = ownLines(r.stderr);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

/** n random PNGs of varying sizes; `dark` halves the value range (a different distribution). */
async function pngs(dir: string, names: string[], seed: number, dark: boolean): Promise<void> {
  let s = seed;
  for (const [i, name] of names.entries()) {
    const w = 8 + (i % 3) * 7;
    const h = 9 + (i % 2) * 11;
    const buf = Buffer.alloc(w * h * 3);
    for (let j = 0; j < buf.length; j++) {
      s = (s * 1103515245 + 12345) >>> 0;
      buf[j] = (s >>> 24) & (dark ? 0x7f : 0xff);
    }
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    await sharp(buf, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(path.join(dir, name));
  }
}

/** FID of two row-major float32 feature sets by NumPy in float64 (nuclear-norm form). */
async function numpyFid(a: Float32Array, na: number, b: Float32Array, nb: number, dir: string): Promise<number> {
  const fa = path.join(dir, 'fa.bin');
  const fb = path.join(dir, 'fb.bin');
  fs.writeFileSync(fa, a);
  fs.writeFileSync(fb, b);
  const code = `
import numpy as np, sys
a = np.fromfile('${fa}', dtype='<f4').astype(np.float64).reshape(${na}, -1)
b = np.fromfile('${fb}', dtype='<f4').astype(np.float64).reshape(${nb}, -1)
ma, mb = a.mean(0), b.mean(0)
x, y = a - ma, b - mb
nuc = np.linalg.svd(x @ y.T, compute_uv=False).sum() / np.sqrt((${na} - 1) * (${nb} - 1))
print(repr(float(((ma - mb) ** 2).sum() + (x * x).sum() / (${na} - 1) + (y * y).sum() / (${nb} - 1) - 2 * nuc)))
`;
  const { stdout } = await promisify(execFile)(PYTHON, ['-c', code]);
  return Number(stdout.trim());
}

describe('rae eval --a --b', () => {
  it.skipIf(!hasNumpy)(
    'figures of two small sets (class folders vs a .tar.gz) match the metrics recomputed from its features',
    async () => {
      const dir = tmp();
      const a = path.join(dir, 'a');
      await pngs(a, ['cat/1.png', 'cat/2.png', 'dog/3.png', 'dog/4.png', 'dog/5.png'], 1, false);
      const bDir = path.join(dir, 'b');
      await pngs(bDir, ['x1.png', 'x2.png', 'x3.png', 'x4.png'], 9, true);
      const b = path.join(dir, 'b.tar.gz');
      await promisify(execFile)('tar', ['-czf', b, '-C', bDir, '.']);
      const json = path.join(dir, 'out', 'figures.json');
      const feats = path.join(dir, 'features.safetensors');
      const r = await rae(['--a', a, '--b', b, '--json', json, '--save-features', feats, '--kid-subsets', '10', '--batch', '3']);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/5 images in .*a, 4 in .*b\.tar\.gz/);
      expect(r.stdout).toMatch(/FID \d+\.\d+ {2}KID .* ± .* precision \d\.\d{4} {2}recall \d\.\d{4} {2}\(A 5, B 4 images/);
      expect(r.stdout).toMatch(/not comparable to published values/);
      const out = JSON.parse(fs.readFileSync(json, 'utf8'));
      expect(out.counts).toEqual({ a: 5, b: 4 });
      expect(out.comparable).toBe(false);
      const saved = loadSafetensors(feats);
      const fa = saved.get('a')!.data as Float32Array;
      const fb = saved.get('b')!.data as Float32Array;
      expect([saved.get('a')!.shape, saved.get('b')!.shape]).toEqual([
        [5, 2048],
        [4, 2048],
      ]);
      const want = await numpyFid(fa, 5, fb, 4, dir);
      expect(Math.abs(out.fid - want) / Math.abs(want)).toBeLessThan(1e-9);
      const A = featureSet(fa, 5, 2048);
      const B = featureSet(fb, 4, 2048);
      const kid = kernelInceptionDistance(A, B, { subsets: 10 });
      expect([out.kid, out.kidStd, out.kidSubsets]).toEqual([kid.kid, kid.kidStd, 10]);
      const pr = precisionRecall(A, B, 3);
      expect([out.precision, out.recall]).toEqual([pr.precision, pr.recall]);
    },
    600_000,
  );

  it('bad input found before the GPU starts: missing folder, missing --b, nothing given, too few images', async () => {
    const dir = tmp();
    await expect(evalCommand({ a: path.join(dir, 'missing'), b: dir })).rejects.toThrow(/image set not found: .*missing/);
    await expect(evalCommand({ a: dir })).rejects.toThrow(/--b PATH is missing/);
    await expect(evalCommand({})).rejects.toThrow(/nothing to evaluate: give --a PATH --b PATH .* or --run DIR/);
    await expect(evalCommand({ a: dir, b: dir, run: dir })).rejects.toThrow(/either --run DIR or --a PATH --b PATH, not both/);
    const one = path.join(dir, 'one');
    await pngs(one, ['only.png'], 3, false);
    const two = path.join(dir, 'two');
    await pngs(two, ['1.png', '2.png'], 4, false);
    await expect(evalCommand({ a: two, b: one })).rejects.toThrow(
      /--b .*one: 1 image; FID and KID need at least 2 per set \(precision\/recall 4\)/,
    );
  });

  it('an unreadable image (named) and a corrupt --inception file (tensor named): one line on stderr', async () => {
    const dir = tmp();
    const two = path.join(dir, 'two');
    await pngs(two, ['1.png', '2.png'], 4, false);
    // An unreadable image: the error names the file.
    const bad = path.join(dir, 'bad');
    await pngs(bad, ['2.png', '3.png'], 5, false);
    fs.writeFileSync(path.join(bad, '1.png'), 'not a png at all');
    expectOneLineError(await rae(['--a', bad, '--b', two, '--batch', '1']), new RegExp(`${bad}/1\\.png: cannot decode image`));
    // A weights file of the right layout except one transposed kernel: that tensor is named.
    const weights = path.join(dir, 'fid.safetensors');
    const tensors: Record<string, WriteTensor> = {};
    for (const t of FID_INCEPTION_REQUIRED) {
      const shape = t.name === 'Mixed_6b.branch7x7_2.conv.weight' ? [128, 128, 7, 1] : t.shape;
      tensors[t.name] = { dtype: 'F16', shape, data: new Float32Array(shape.reduce((x, y) => x * y, 1)) };
    }
    saveSafetensors(weights, tensors);
    expectOneLineError(
      await rae(['--a', two, '--b', two, '--inception', weights]),
      /fid\.safetensors: not the FID InceptionV3 layout.*tensor Mixed_6b\.branch7x7_2\.conv\.weight has shape \[128, 128, 7, 1\], expected \[128, 128, 1, 7\]/,
    );
  }, 300_000);
});
