/**
 * matmulInto against the float64 oracle (src/cpu matmul + a float64 epilogue), for both kernels
 * (register-blocked and workgroup-memory tiled), on shapes that are not multiples of any tile,
 * transposed / broadcast / offset views, every epilogue, f16 inputs and outputs.
 *
 * Tolerances (f32 accumulation in both kernels):
 *  - f32 out: |gpu − ref| ≤ 1e-6·√K·max|ref| + 1e-5·|ref|. f32 rounding of a K-term dot product
 *    of unit-scale data grows like √K·2⁻²⁴ ≈ 6e-8·√K relative to the result's scale, so this
 *    leaves a ~16× margin and still catches any wrong or missing term (errors of order 1).
 *  - f16 out: additionally rtol 1e-3 (one f16 rounding is ≤ 2⁻¹¹ ≈ 4.9e-4 relative).
 *  - f16 inputs: the oracle uses the f16-rounded inputs, so the f32 bounds above apply.
 *  - exact GELU on K = 1 (the product is exact): |gpu − ref| ≤ 1e-7·|x| + 2⁻²³·|ref|, i.e. an
 *    erf good to 1e-7 plus the rounding of the two multiplications in 0.5·x·(1 + erf(x/√2)).
 */
import { describe, expect, it } from 'vitest';
import { geluScalar, geluTanhScalar, sigmoidScalar } from '../../src/cpu/elementwise.js';
import { matmul as matmulRef } from '../../src/cpu/linalg.js';
import { broadcastTo, nd, type NDArray } from '../../src/cpu/ndarray.js';
import { ndRandn } from '../../src/cpu/random.js';
import { transpose } from '../../src/cpu/shape.js';
import { runtime } from '../../src/gpu/runtime.js';
import { chooseMatmulConfig, matmulInto, type MatmulActivation, type MatmulConfig, type MatmulOptions } from '../../src/kernels/matmul.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import type { DType } from '../../src/core/dtype.js';
import { empty, viewOf, type Tensor } from '../../src/tensor/tensor.js';
import { derived, expectAllclose, maxAbs, TOL } from '../helpers/compare.js';
import { requireFeature, useGpu } from '../helpers/setup.js';

useGpu();

/**
 * Configurations under test. Shader compilation on lavapipe costs 0.3–3 s per specialisation, so
 * the full matrix runs on the two cheap-to-compile register variants (vec4 loads and scalar
 * loads) and a core subset covers the tiled kernel, the adapter's own choice and the NVIDIA
 * table entry (large tiles: a few cases only).
 */
const CONFIGS: { name: string; config?: MatmulConfig; level: 'full' | 'views' | 'core' | 'nt' | 'smoke' }[] = [
  { name: 'register 4×4 vec4', config: { kind: 'register', wgX: 8, wgY: 8, rm: 4, rn: 4 }, level: 'views' },
  { name: 'register 4×4 scalar', config: { kind: 'register', wgX: 8, wgY: 8, rm: 4, rn: 4, scalar: true }, level: 'full' },
  { name: 'shared 64×64×16', config: { kind: 'shared', wgX: 16, wgY: 16, rm: 4, rn: 4, tk: 16 }, level: 'core' },
  { name: 'adapter table', config: undefined, level: 'core' },
  // Used only for x·Wᵀ-shaped products on adapters with 8-wide subgroups; elsewhere it falls back.
  { name: 'split-K 8 lanes, 4×4 blocks', config: { kind: 'splitk', lanes: 8, wgY: 2, rm: 4, rn: 4 }, level: 'nt' },
  // Needs subgroups of exactly 8 lanes (lavapipe); elsewhere it falls back to the table's kernel.
  { name: 'broadcast 8 lanes, 8×32 blocks', config: { kind: 'broadcast', lanes: 8, rm: 8, rn: 4 }, level: 'views' },
  { name: 'shared 128×128×16 (NVIDIA entry)', config: { kind: 'shared', wgX: 16, wgY: 16, rm: 8, rn: 8, tk: 16 }, level: 'smoke' },
];

interface Operand {
  t: Tensor;
  ref: NDArray;
}

let seed = 1;

/**
 * A random operand of logical shape `shape`. trans: stored as the transpose of its last two dims
 * and viewed with swapped strides. bcast0: the first dim is a stride-0 broadcast of one matrix.
 * offset: the view starts `offset` elements into its buffer.
 */
async function operand(
  shape: number[],
  o: { trans?: boolean; dtype?: DType; bcast0?: boolean; offset?: number; scale?: number } = {},
): Promise<Operand> {
  const r = shape.length;
  const stored = o.bcast0 ? shape.slice(1) : [...shape];
  const sr = stored.length;
  if (o.trans) [stored[sr - 2], stored[sr - 1]] = [stored[sr - 1], stored[sr - 2]];
  const n = stored.reduce((x, y) => x * y, 1);
  const off = o.offset ?? 0;
  const host = new Float32Array(n + off);
  const rnd = ndRandn([n], seed++, o.scale ?? 1).data;
  host.set(rnd, off);
  const base = tensor(host, [n + off], { dtype: o.dtype ?? 'f32' });
  const vals = (await toArray(base)).slice(off); // f16-rounded when dtype is f16
  let ref = nd(vals, stored);
  if (o.trans) ref = transpose(ref, -2, -1);
  if (o.bcast0) ref = broadcastTo(ref, shape);
  // Strides of the stored (contiguous) layout, then the view's.
  const cs: number[] = [];
  for (let i = sr - 1, acc = 1; i >= 0; i--) {
    cs[i] = acc;
    acc *= stored[i];
  }
  if (o.trans) [cs[sr - 2], cs[sr - 1]] = [cs[sr - 1], cs[sr - 2]];
  const strides = o.bcast0 ? [0, ...cs] : cs;
  expect(strides.length).toBe(r);
  const t = viewOf(base, shape, strides, off);
  base.dispose();
  return { t, ref };
}

const ACTS: Record<MatmulActivation, (x: number) => number> = {
  none: (x) => x,
  relu: (x) => Math.max(x, 0),
  silu: (x) => x * sigmoidScalar(x),
  gelu: geluScalar,
  gelu_tanh: geluTanhScalar,
};

interface Case {
  M: number;
  K: number;
  N: number;
  aBatch?: number[];
  bBatch?: number[];
  transA?: boolean;
  transB?: boolean;
  aBcast0?: boolean;
  bBcast0?: boolean;
  dtype?: DType;
  outDtype?: DType;
  bias?: boolean;
  activation?: MatmulActivation;
  residual?: number[] | 'full' | 'transposed';
  alpha?: number;
  accumulate?: boolean;
  transOut?: boolean;
  offsets?: boolean;
}

function batchOf(c: Case): number[] {
  const a = c.aBatch ?? [],
    b = c.bBatch ?? [];
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => Math.max(a[a.length - r + i] ?? 1, b[b.length - r + i] ?? 1));
}

async function check(c: Case, config?: MatmulConfig): Promise<string> {
  const { M, K, N } = c;
  const batch = batchOf(c);
  const outShape = [...batch, M, N];
  const a = await operand([...(c.aBatch ?? []), M, K], { trans: c.transA, dtype: c.dtype, bcast0: c.aBcast0, offset: c.offsets ? 4 : 0 });
  const b = await operand([...(c.bBatch ?? []), K, N], { trans: c.transB, dtype: c.dtype, bcast0: c.bBcast0, offset: c.offsets ? 8 : 0 });
  const bias = c.bias ? await operand([N], { offset: c.offsets ? 3 : 0 }) : undefined;
  const resShape = c.residual === 'full' || c.residual === 'transposed' ? outShape : c.residual;
  const res = resShape ? await operand(resShape, { trans: c.residual === 'transposed' }) : undefined;
  // Output: contiguous, or the transpose view of an [..., N, M] buffer.
  let out: Tensor;
  let init: NDArray | undefined;
  const oDt = c.outDtype ?? 'f32';
  if (c.accumulate) {
    const o = await operand(outShape, { trans: c.transOut, dtype: oDt });
    out = o.t;
    init = o.ref;
  } else if (c.transOut) {
    const r = outShape.length;
    const stored = [...batch, N, M];
    const base = empty(stored, oDt);
    const st = [...base.strides];
    [st[r - 2], st[r - 1]] = [st[r - 1], st[r - 2]];
    out = viewOf(base, outShape, st, 0);
    base.dispose();
  } else {
    out = empty(outShape, oDt);
  }
  const opts: MatmulOptions = {
    bias: bias?.t,
    residual: res?.t,
    activation: c.activation,
    alpha: c.alpha,
    accumulate: c.accumulate,
    config,
  };
  matmulInto(a.t, b.t, out, opts);
  const got = await toArray(out);

  const prod = matmulRef(a.ref, b.ref);
  expect(prod.shape).toEqual(outShape);
  const act = ACTS[c.activation ?? 'none'];
  const resB = res ? broadcastTo(res.ref, outShape).data : undefined;
  const want = new Float64Array(prod.data.length);
  for (let i = 0; i < want.length; i++) {
    let v = (c.alpha ?? 1) * prod.data[i];
    if (bias) v += bias.ref.data[i % N];
    v = act(v);
    if (resB) v += resB[i];
    if (init) v += init.data[i];
    want[i] = v;
  }
  const scale = Math.sqrt(Math.max(K, 1)) * maxAbs(want);
  for (const t of [a.t, b.t, bias?.t, res?.t, out]) t?.dispose();
  const label = JSON.stringify(c);
  // f16 out: the f32 bound plus one f16 rounding (rtol 1e-3), written out in the header.
  const r =
    oDt === 'f16'
      ? expectAllclose(got, want, derived({ atol: 1e-6 * scale, rtol: 1e-3 }), { shape: outShape, label })
      : expectAllclose(got, want, TOL.matmul, { shape: outShape, label, scale });
  return r.message;
}

const SHAPES: Case[] = [
  { M: 1, K: 1, N: 1 },
  { M: 7, K: 65, N: 127 },
  { M: 65, K: 127, N: 33 },
  // vec4-eligible (K % 4 == 0, N % 4 == 0) with ragged M / N edges
  { M: 33, K: 64, N: 36 },
  { M: 67, K: 132, N: 20 },
  { M: 2, K: 3, N: 1 },
];

const TRANSPOSES: Case[] = [
  { M: 65, K: 127, N: 33, transA: true },
  { M: 65, K: 127, N: 33, transB: true },
  { M: 65, K: 127, N: 33, transA: true, transB: true },
  // vec4 along M for A, along K for B
  { M: 36, K: 64, N: 40, transA: true },
  { M: 36, K: 64, N: 40, transB: true },
  { M: 36, K: 64, N: 41, transA: true, transB: true },
  { M: 13, K: 28, N: 44, offsets: true },
  { M: 12, K: 28, N: 44, transA: true, transB: true, offsets: true },
];

const BATCHES: Case[] = [
  { aBatch: [3], M: 17, K: 9, N: 31 },
  { aBatch: [3], bBatch: [], M: 17, K: 9, N: 31, transB: true },
  { aBatch: [1], bBatch: [3], M: 17, K: 9, N: 31 },
  { aBatch: [3], bBatch: [3], M: 17, K: 9, N: 31, aBcast0: true },
  { aBatch: [3], bBatch: [3], M: 17, K: 12, N: 32, bBcast0: true, transA: true },
  { aBatch: [2, 1, 3, 1], bBatch: [1, 2, 1, 2], M: 5, K: 8, N: 7 },
  { aBatch: [2, 1, 2, 1, 2], bBatch: [1, 2, 1, 2, 1], M: 5, K: 8, N: 12 },
  { aBatch: [2, 3], bBatch: [2, 3], M: 9, K: 16, N: 24, transOut: true },
];

// Every load mode of each operand (vec4 / scalar, along K / along M or N) once, a rank-4
// broadcast batch and one fused epilogue.
const CORE: Case[] = [
  { M: 7, K: 65, N: 127 },
  { M: 33, K: 64, N: 36 },
  TRANSPOSES[0],
  TRANSPOSES[1],
  TRANSPOSES[3],
  TRANSPOSES[4],
  BATCHES[5],
  { M: 19, K: 33, N: 37, bias: true, activation: 'gelu', residual: [37], alpha: 0.5, accumulate: true },
];
// Both operands K-contiguous (the split-K kernel's domain), K not a multiple of the lane count.
const NT: Case[] = [
  { M: 1, K: 1, N: 1, transB: true },
  { M: 7, K: 3, N: 5, transB: true },
  { M: 65, K: 127, N: 33, transB: true },
  { M: 36, K: 64, N: 40, transB: true, offsets: true },
  { aBatch: [3], bBatch: [3], M: 17, K: 12, N: 32, transB: true, bBcast0: true },
  { M: 19, K: 33, N: 37, transB: true, bias: true, activation: 'gelu', residual: [37], alpha: 0.5, accumulate: true },
  { M: 19, K: 33, N: 37, transA: true, transB: true },
];
const SMOKE: Case[] = [
  { M: 65, K: 127, N: 33 },
  { M: 36, K: 64, N: 40, transB: true, bias: true, activation: 'silu' },
];

// Cold shader compilation on a loaded 2-core machine can take minutes for a group; a warm Mesa
// shader cache makes the whole file take seconds.
const COMPILE_HEAVY = { timeout: 300_000 };

describe('matmulInto', () => {
  for (const { name, config: cfg, level } of CONFIGS) {
    describe(`config ${name}`, COMPILE_HEAVY, () => {
      if (level === 'smoke') {
        it('smoke shapes', async () => {
          for (const c of SMOKE) await check(c, cfg);
        });
        return;
      }
      if (level === 'nt') {
        it('K-contiguous operands (x·Wᵀ), ragged K, batches, epilogue', async () => {
          for (const c of NT) await check(c, cfg);
        });
        it('K-contiguous f16 operands', async (ctx) => {
          requireFeature(ctx, 'shader-f16');
          await check({ M: 65, K: 127, N: 33, dtype: 'f16', transB: true }, cfg);
        });
        return;
      }
      if (level === 'core') {
        it('core shapes, transposes, batches and a fused epilogue', async () => {
          for (const c of CORE) await check(c, cfg);
        });
        it('f16 inputs', async (ctx) => {
          requireFeature(ctx, 'shader-f16');
          await check({ M: 36, K: 64, N: 40, dtype: 'f16', transB: true }, cfg);
        });
        return;
      }
      it('plain shapes', async () => {
        for (const c of SHAPES) await check(c, cfg);
      });
      it('transposed and offset views', async () => {
        for (const c of TRANSPOSES) await check(c, cfg);
      });
      it('batched, broadcast batch dims, strided out', async () => {
        for (const c of BATCHES) await check(c, cfg);
      });
      if (level === 'full')
        it('epilogues', async () => {
          for (const activation of ['none', 'relu', 'silu', 'gelu', 'gelu_tanh'] as const) {
            await check({ M: 19, K: 24, N: 37, bias: true, activation }, cfg);
          }
          await check({ M: 19, K: 33, N: 37, residual: 'full' }, cfg);
          await check({ M: 19, K: 33, N: 37, residual: [37], bias: true, activation: 'gelu' }, cfg);
          await check({ aBatch: [2], M: 19, K: 33, N: 37, residual: [1, 37], alpha: -0.25 }, cfg);
          await check({ aBatch: [2], M: 19, K: 33, N: 37, residual: 'transposed', accumulate: true }, cfg);
          await check({ M: 19, K: 32, N: 36, alpha: 0.5, accumulate: true, transOut: true }, cfg);
          await check({ M: 19, K: 32, N: 36, bias: true, activation: 'silu', residual: 'full', alpha: 2, accumulate: true }, cfg);
        });
      it('f16 inputs and outputs (f32 accumulation)', async (ctx) => {
        requireFeature(ctx, 'shader-f16');
        await check({ M: 33, K: 64, N: 36, dtype: 'f16' }, cfg);
        await check({ M: 65, K: 127, N: 33, dtype: 'f16', transB: true }, cfg);
        await check({ M: 36, K: 64, N: 40, dtype: 'f16', transA: true, bias: true, activation: 'gelu' }, cfg);
        await check({ aBatch: [3], M: 17, K: 9, N: 31, dtype: 'f16', outDtype: 'f16' }, cfg);
        await check({ M: 17, K: 24, N: 32, outDtype: 'f16', accumulate: true }, cfg);
      });
    });
  }

  it('uses the adapter table by default', async () => {
    const cfg = chooseMatmulConfig(runtime().adapterSummary);
    expect(['register', 'shared']).toContain(cfg.general.kind);
    const lvp = chooseMatmulConfig({ description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)' });
    expect(lvp.general.kind).toBe('register');
    expect(lvp.kContiguous?.kind).toBe('splitk');
    expect(lvp.broadcast).toEqual({ kind: 'broadcast', lanes: 8, rm: 32, rn: 8 });
    expect(chooseMatmulConfig({ vendor: 'nvidia', device: 'NVIDIA H100 80GB HBM3' }).general.kind).toBe('shared');
  });

  it('exact GELU is accurate to ~1e-7 (erf fit) and the other activations are finite everywhere', async () => {
    const n = 4001;
    const xs = Float32Array.from({ length: n }, (_, i) => -20 + (40 * i) / (n - 1));
    xs[0] = -90;
    xs[n - 1] = 90;
    const x = tensor(xs, [n, 1]);
    const one = tensor(Float32Array.of(1), [1, 1]);
    for (const act of ['gelu', 'gelu_tanh', 'silu'] as const) {
      const out = empty([n, 1]);
      matmulInto(x, one, out, { activation: act });
      const got = await toArray(out);
      out.dispose();
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const ref = ACTS[act](xs[i]);
        expect(Number.isFinite(got[i]), `${act}(${xs[i]}) = ${got[i]}`).toBe(true);
        if (act !== 'gelu') {
          expect(Math.abs(got[i] - ref)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(xs[i])));
          continue;
        }
        const err = Math.abs(got[i] - ref);
        if (err === 0) continue;
        const bound = 1e-7 * Math.abs(xs[i]) + 2 ** -23 * Math.abs(ref);
        worst = Math.max(worst, err / bound);
        expect(err, `gelu(${xs[i]}): got ${got[i]}, want ${ref}`).toBeLessThanOrEqual(bound);
      }
      if (act === 'gelu') expect(worst).toBeLessThanOrEqual(1);
    }
    x.dispose();
    one.dispose();
  });

  it('rejects mismatched shapes naming matmul and both shapes', () => {
    const a = empty([3, 4]);
    const b = empty([5, 6]);
    const out = empty([3, 6]);
    expect(() => matmulInto(a, b, out)).toThrow(RangeError);
    expect(() => matmulInto(a, b, out)).toThrow(/matmul.*\[3, 4\].*\[5, 6\]/);
    const a3 = empty([2, 3, 4]);
    const b3 = empty([3, 4, 6]);
    expect(() => matmulInto(a3, b3, empty([2, 3, 6]))).toThrow(/matmul.*\[2, 3, 4\].*\[3, 4, 6\].*broadcast/);
    const b2 = empty([4, 6]);
    expect(() => matmulInto(a, b2, empty([3, 7]))).toThrow(/matmul.*\[3, 4\].*\[4, 6\].*out/);
    expect(() => matmulInto(a, b2, empty([6]))).toThrow(RangeError);
    expect(() => matmulInto(a, b2, out, { bias: empty([5]) })).toThrow(/bias/);
    expect(() => matmulInto(a, b2, out, { residual: empty([2, 6]) })).toThrow(/residual/);
    for (const t of [a, b, out, a3, b3, b2]) t.dispose();
  });
});
