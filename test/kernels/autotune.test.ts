/**
 * The autotuner and its cache: choices are measured among candidates the kernel tests cover,
 * recorded under the adapter/driver/version key, read back from the store, ignored (with a
 * warning, then rewritten) when corrupt or written for another key, and not consulted at all when
 * tuning is off or `retune` asks to measure again. Timing budgets are tiny: which candidate wins
 * is not asserted (that is a benchmark's business), only that a valid one is chosen and used.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { softmax as softmaxRef, nd } from '../../src/cpu/index.js';
import { fileTuningCache } from '../../src/gpu/node.js';
import type { TuningCacheStore } from '../../src/gpu/platform.js';
import { attentionForward } from '../../src/kernels/attention.js';
import { attentionCandidates, rowCandidates, tune, tuneAttention, tunePending, tuneRows } from '../../src/kernels/autotune.js';
import { softmaxInto } from '../../src/kernels/softmax.js';
import { setTuningSettings, tunedChoice, tuningKey } from '../../src/kernels/tuning-store.js';
import { rowPlan, tablePlan } from '../../src/kernels/tuning.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty } from '../../src/tensor/tensor.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { randn } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();
afterEach(() => {
  setTuningSettings(null);
  vi.restoreAllMocks();
});

function memoryStore(initial?: string): TuningCacheStore & { text?: string; writes: number } {
  const s = {
    text: initial,
    writes: 0,
    read: () => s.text,
    write: (_k: string, t: string) => {
      s.text = t;
      s.writes++;
    },
    where: () => 'memory',
  };
  return s;
}
const FAST = { minMs: 1, rounds: 1 };
const isCandidate = (p: unknown, D: number) => rowCandidates(D).some(([, c]) => JSON.stringify(c) === JSON.stringify(p));

describe('autotuner', () => {
  it('is off by default: no choice is consulted, the table plan runs', () => {
    expect(tunedChoice('row|softmax|D128xR64')).toBeUndefined();
    expect(rowPlan('softmax', 64, 100)).toEqual(tablePlan(100));
  });

  it('measures candidates, records the fastest in the store, and the kernels then use it (results still correct)', async () => {
    const store = memoryStore();
    setTuningSettings({ enabled: true, retune: false, store });
    const plan = await tuneRows('softmax', 33, 50, FAST);
    expect(isCandidate(plan, 50)).toBe(true);
    expect(rowPlan('softmax', 33, 50)).toEqual(plan);
    const file = JSON.parse(store.text ?? '{}');
    expect(file.key).toBe(tuningKey());
    expect(file.choices['row|softmax|D64xR64'].choice).toEqual(plan);
    expect(Object.keys(file.choices['row|softmax|D64xR64'].ms)).toEqual(rowCandidates(50).map(([k]) => k));
    const xh = randn(33 * 50, 5, 3);
    const x = tensor(xh, [33, 50]);
    const y = empty([33, 50]);
    softmaxInto(x, y);
    expectAllclose((await toArray(y)) as Float32Array, softmaxRef(nd(Float64Array.from(xh), [33, 50]), 1).data, TOL.softmax);
    x.dispose();
    y.dispose();
  });

  it('reads choices back from the store; retune ignores them', async () => {
    const chosen = { perThread: true, wg: 8 };
    const text = JSON.stringify({ key: tuningKey(), choices: { 'row|rmsNorm|D16xR8': { choice: chosen } } });
    setTuningSettings({ enabled: true, retune: false, store: memoryStore(text) });
    expect(rowPlan('rmsNorm', 8, 16)).toEqual(chosen);
    setTuningSettings({ enabled: true, retune: true, store: memoryStore(text) });
    expect(rowPlan('rmsNorm', 8, 16)).toEqual(tablePlan(16));
  });

  it('ignores a corrupt cache or one written for another adapter with a warning, and rewrites it', async () => {
    for (const bad of ['{"key": "x", "choi', JSON.stringify({ key: 'another adapter', choices: {} }), '[]']) {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const store = memoryStore(bad);
      setTuningSettings({ enabled: true, retune: false, store });
      expect(rowPlan('softmax', 8, 16)).toEqual(tablePlan(16));
      expect(warn).toHaveBeenCalledOnce();
      expect(String(warn.mock.calls[0][0])).toMatch(/ignoring the tuning cache memory/);
      expect(await tunePending(FAST)).toBe(1);
      expect(JSON.parse(store.text ?? '').key).toBe(tuningKey());
      vi.restoreAllMocks();
    }
  });

  it('a choice that is not a valid plan falls back to the table', () => {
    const text = JSON.stringify({ key: tuningKey(), choices: { 'row|softmax|D16xR8': { choice: { perThread: 'yes', wg: 10_000 } } } });
    setTuningSettings({ enabled: true, retune: false, store: memoryStore(text) });
    expect(rowPlan('softmax', 8, 16)).toEqual(tablePlan(16));
  });

  it('tune() skips cached classes and does nothing when tuning is off', async () => {
    const store = memoryStore();
    await tune({ rows: [{ family: 'layerNorm', rows: 4, D: 8 }] }, FAST);
    expect(store.writes).toBe(0);
    setTuningSettings({ enabled: true, retune: false, store });
    await tune({ rows: [{ family: 'layerNorm', rows: 4, D: 8 }] }, FAST);
    await tune({ rows: [{ family: 'layerNorm', rows: 4, D: 8 }] }, FAST);
    expect(store.writes).toBe(1);
  });
});

describe('autotuner: attention', () => {
  it('chooses one of the candidates for a shape class and the kernel runs it (results still correct)', async () => {
    const store = memoryStore();
    setTuningSettings({ enabled: true, retune: false, store });
    const [B, H, N, D] = [1, 2, 9, 8];
    const cfg = await tuneAttention(B, H, N, D, 'forward', FAST);
    expect(attentionCandidates(D, 'forward').map(([, c]) => c)).toContainEqual(cfg);
    expect(JSON.parse(store.text ?? '').choices['attn|forward|BH2N16D8'].choice).toEqual(cfg);
    // Forward against a float64 softmax(q kᵀ / √D) v.
    const [qh, kh, vh] = [1, 2, 3].map((seed) => randn(B * H * N * D, seed));
    const [q, k, v] = [qh, kh, vh].map((a) => tensor(a, [B, H, N, D]));
    const o = empty([B, H, N, D]);
    const lse = empty([B, H, N]);
    attentionForward(q, k, v, o, lse, 1 / Math.sqrt(D));
    const want = new Float64Array(B * H * N * D);
    for (let bh = 0; bh < B * H; bh++)
      for (let i = 0; i < N; i++) {
        const s = Array.from({ length: N }, (_, j) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qh[(bh * N + i) * D + d] * kh[(bh * N + j) * D + d];
          return dot / Math.sqrt(D);
        });
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < D; d++) want[(bh * N + i) * D + d] = e.reduce((acc, w, j) => acc + (w / z) * vh[(bh * N + j) * D + d], 0);
      }
    expectAllclose((await toArray(o)) as Float32Array, want, TOL.attention);
    for (const t of [q, k, v, o, lse]) t.dispose();
  });
});

describe('file tuning cache (Node edge)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rae-tune-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one file per key under the directory and reads it back; a missing file reads as undefined', () => {
    const c = fileTuningCache(join(dir, 'rae-webgpu'));
    expect(c.read('k1')).toBeUndefined();
    c.write('k1', '{"a":1}');
    expect(c.read('k1')).toBe('{"a":1}');
    expect(c.where('k1')).toMatch(/rae-webgpu\/tuning-[0-9a-f]{16}\.json$/);
    expect(c.where('k2')).not.toBe(c.where('k1'));
    expect(readFileSync(c.where('k1'), 'utf8')).toBe('{"a":1}');
  });
});
