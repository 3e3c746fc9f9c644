/**
 * tools/convert_rae_checkpoint.py on a training checkpoint written by torch.save (torch 1.13, the
 * reference's save_checkpoint layout; test/fixtures/golden/ditdh_ckpt_tiny.pt): the converted
 * safetensors loads strictly into DiTDH and reproduces the reference velocity of the chosen
 * weights. Needs a Python with torch (RAE_PYTHON, default /usr/bin/python3 — Debian's
 * python3-torch); without it these cases are skipped, not passed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits, bf16BitsToF32, f32ToBf16Bits, openSafetensors, loadSafetensors } from '../../src/io/safetensors.js';
import { DiTDH, type DiTConfig } from '../../src/models/dit.js';
import { loadWeights } from '../../src/io/pretrained.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { goldenPath, loadGolden, relByMax, REPO_GOLDEN_DIR } from '../helpers/golden.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const here = path.dirname(fileURLToPath(import.meta.url));
const SCRIPT = path.resolve(here, '../../tools/convert_rae_checkpoint.py');
const PYTHON = process.env.RAE_PYTHON ?? '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

const CKPT = goldenPath('ditdh_ckpt_tiny.pt', { dir: REPO_GOLDEN_DIR });
const g = loadGolden('ditdh_ckpt_tiny', { dir: REPO_GOLDEN_DIR });
const config = g.meta.config as unknown as DiTConfig;
const work = mkdtempSync(path.join(tmpdir(), 'rae-convert-'));

function python(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Converts once per (source, flags): each Python start imports torch, which takes seconds. */
const converted = new Map<string, string>();
function convert(src: string, ...flags: string[]): string {
  const key = [src, ...flags].join(' ');
  if (!converted.has(key)) {
    const out = path.join(work, `${converted.size}.safetensors`);
    const r = python([SCRIPT, src, out, ...flags]);
    expect(r.status, r.out).toBe(0);
    converted.set(key, out);
  }
  return converted.get(key)!;
}

const input = (k: string) => {
  const t = g.inputs.get(k)!;
  return tensor(t.data, t.shape, { dtype: t.dtype });
};

async function velocity(file: string): Promise<ArrayLike<number>> {
  return scopeAsync(async () => {
    const m = DiTDH.fromConfig(config);
    loadWeights(m, file); // strict: every key present, none extra, shapes equal
    m.eval();
    const v = await toArray(m.forward(input('x'), input('t'), input('y')));
    m.dispose();
    return v;
  });
}

describe.skipIf(!hasTorch)('tools/convert_rae_checkpoint.py (torch checkpoint → safetensors)', () => {
  it('takes the EMA weights by default; DiTDH reproduces the reference velocity', async () => {
    const out = convert(CKPT);
    expect(openSafetensors(out).metadata.weights).toBe('ema');
    const v = await velocity(out);
    expect(relByMax(v, g.outputs.get('v_ema')!.data)).toBeLessThan(1e-4);
    // The two weight sets really differ, so the comparison tells them apart.
    expect(relByMax(v, g.outputs.get('v_model')!.data)).toBeGreaterThan(0.1);
  });

  it('--key model takes the online weights', async () => {
    const out = convert(CKPT, '--key', 'model');
    expect(openSafetensors(out).metadata.weights).toBe('model');
    expect(relByMax(await velocity(out), g.outputs.get('v_model')!.data)).toBeLessThan(1e-4);
  });

  it('--dtype f16 / bf16 round each weight to nearest-even of the f32 value', () => {
    const f32 = loadSafetensors(convert(CKPT));
    for (const [dtype, toBits, fromBits] of [
      ['f16', f32ToF16Bits, f16BitsToF32],
      ['bf16', f32ToBf16Bits, bf16BitsToF32],
    ] as const) {
      const half = openSafetensors(convert(CKPT, '--dtype', dtype));
      let floats = 0;
      for (const [k, t] of f32) {
        const want = t.dtype === 'f32' ? Array.from(t.data, (v) => fromBits(toBits(v))) : Array.from(t.data);
        const info = half.info(k);
        if (t.dtype === 'f32') {
          expect(info.dtype, k).toBe(dtype.toUpperCase());
          floats++;
        }
        expect(Array.from(half.read(k).data), `${dtype} ${k}`).toEqual(want);
      }
      expect(floats).toBe(f32.size);
      half.close();
    }
  });

  it('strips DDP ("module.") and torch.compile ("_orig_mod.") prefixes of plain state dicts', () => {
    const plain = path.join(work, 'prefixed.pt');
    const r = python([
      '-c',
      'import sys, torch; c = torch.load(sys.argv[1], weights_only=False); ' +
        "sd = {('module.' if i % 2 else '_orig_mod.') + k: v for i, (k, v) in enumerate(c['ema'].items())}; torch.save(sd, sys.argv[2])",
      CKPT,
      plain,
    ]);
    expect(r.status, r.out).toBe(0);
    const stripped = openSafetensors(convert(plain));
    const reference = openSafetensors(convert(CKPT));
    expect(stripped.metadata.weights).toBe('state dict');
    expect(stripped.keys()).toEqual(reference.keys());
    for (const k of reference.keys())
      expect(Buffer.compare(Buffer.from(stripped.readRaw(k)), Buffer.from(reference.readRaw(k))), k).toBe(0);
  });

  it('bad requests fail with a message, writing nothing', () => {
    const missing = python([SCRIPT, path.join(work, 'nope.pt'), path.join(work, 'nope.safetensors')]);
    expect(missing.status).not.toBe(0);
    expect(missing.out).toMatch(/nope\.pt: no such file/);
    expect(existsSync(path.join(work, 'nope.safetensors'))).toBe(false);
    const onlyModel = path.join(work, 'only-model.pt');
    expect(
      python([
        '-c',
        "import sys, torch; c = torch.load(sys.argv[1], weights_only=False); torch.save({'model': c['model'], 'step': 1}, sys.argv[2])",
        CKPT,
        onlyModel,
      ]).status,
    ).toBe(0);
    const r = python([SCRIPT, onlyModel, path.join(work, 'x.safetensors'), '--key', 'ema']);
    expect(r.status).toBe(1);
    expect(existsSync(path.join(work, 'x.safetensors'))).toBe(false);
    expect(r.out).toMatch(/no 'ema' entry; the checkpoint has \['model', 'step'\]/);
  });
});
