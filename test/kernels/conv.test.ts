/**
 * conv2d forward and its gradients against float64. Forward: the direct-loop reference
 * (src/cpu/conv.ts), tolerance family `matmul` with scale √K·max|y| (K = Cin/groups·KH·KW terms
 * per output). Gradients: dx and dw compared with float64 gradients of L = Σ y·r (r fixed random),
 * computed exactly by the reference's adjoint loops written here from the definition (dx[x] =
 * Σ r·w over every tap that reads x, dw = Σ r·x), also `matmul` with √K of each gradient's own
 * reduction length. Shapes are not tile multiples (the tile is rm×rn per thread, 8×8 on lavapipe).
 */
import { describe, expect, it } from 'vitest';
import { conv2dRef } from '../../src/cpu/conv.js';
import { conv2dInputGradInto, conv2dInto, conv2dWeightGradInto, type ConvGeometry } from '../../src/kernels/conv.js';
import { empty } from '../../src/tensor/tensor.js';
import { ops, tensor, toArray, backward } from '../../src/index.js';
import { noGrad } from '../../src/autograd/tape.js';
import { expectAllclose, maxAbs, TOL } from '../helpers/compare.js';
import { randomData } from '../helpers/random.js';
import { requireFeature, useGpu } from '../helpers/setup.js';

useGpu();

interface Case {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  groups?: number;
  bias?: boolean;
}

const CASES: Case[] = [
  { name: '3×3 pad 1, odd sizes', x: [2, 5, 11, 13], w: [7, 5, 3, 3], padding: [1, 1], bias: true },
  { name: 'stride 2, valid', x: [1, 3, 17, 15], w: [9, 3, 3, 3], stride: [2, 2] },
  {
    name: 'stride 2 pad 1 (right edge unused: asymmetric in effect)',
    x: [2, 4, 10, 12],
    w: [6, 4, 3, 3],
    stride: [2, 2],
    padding: [1, 1],
    bias: true,
  },
  { name: 'dilation 2, pad (2, 1)', x: [1, 3, 13, 9], w: [5, 3, 3, 2], dilation: [2, 2], padding: [2, 1] },
  { name: 'groups 2, 1×7 pad (0, 3)', x: [2, 6, 9, 10], w: [10, 3, 1, 7], padding: [0, 3], groups: 2, bias: true },
  { name: 'depthwise 5×5 stride (2, 1)', x: [1, 8, 12, 11], w: [8, 1, 5, 5], stride: [2, 1], padding: [2, 2], groups: 8 },
  { name: '1×1, many channels', x: [2, 37, 5, 6], w: [70, 37, 1, 1], bias: true },
];

/** Float64 gradients of L = Σ y·r by the adjoint of the reference's loops. */
function adjoint(c: Case, x: Float64Array, w: Float64Array, r: Float64Array, OH: number, OW: number) {
  const [N, C, H, W] = c.x;
  const [Co, Cig, KH, KW] = c.w;
  const [sh, sw] = c.stride ?? [1, 1];
  const [ph, pw] = c.padding ?? [0, 0];
  const [dh, dw] = c.dilation ?? [1, 1];
  const Cog = Co / (c.groups ?? 1);
  const dx = new Float64Array(x.length);
  const dW = new Float64Array(w.length);
  const db = new Float64Array(Co);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Co; co++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const g = ((n * Co + co) * OH + oh) * OW + ow;
          db[co] += r[g];
          const grp = Math.floor(co / Cog);
          for (let ci = 0; ci < Cig; ci++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                const ih = oh * sh - ph + kh * dh;
                const iw = ow * sw - pw + kw * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const xi = ((n * C + grp * Cig + ci) * H + ih) * W + iw;
                const wi = ((co * Cig + ci) * KH + kh) * KW + kw;
                dx[xi] += r[g] * w[wi];
                dW[wi] += r[g] * x[xi];
              }
        }
  return { dx, dW, db };
}

describe('conv2d (implicit GEMM) vs float64', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const f32 = (n: number, seed: number) => Float64Array.from(Float32Array.from(randomData(n, seed)));
      const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const x = f32(size(c.x), 1);
      const w = f32(size(c.w), 2);
      const b = c.bias ? f32(c.w[0], 3) : null;
      const want = conv2dRef({ data: x, shape: c.x }, { data: w, shape: c.w }, b ? { data: b, shape: [c.w[0]] } : null, c);
      const [, , OH, OW] = want.shape;
      const r = f32(want.data.length, 4);
      const xt = tensor(Float32Array.from(x), c.x, { requiresGrad: true });
      const wt = tensor(Float32Array.from(w), c.w, { requiresGrad: true });
      const bt = b ? tensor(Float32Array.from(b), [c.w[0]], { requiresGrad: true }) : null;
      const y = ops.conv2d(xt, wt, bt, c);
      expect(y.shape).toEqual(want.shape);
      const K = c.w[1] * c.w[2] * c.w[3];
      expectAllclose(await toArray(y), want.data, TOL.matmul, { label: 'y', shape: want.shape, scale: Math.sqrt(K) * maxAbs(want.data) });
      const loss = ops.sum(ops.mul(y, tensor(Float32Array.from(r), want.shape)));
      await backward(loss);
      const g = adjoint(c, x, w, r, OH, OW);
      const Cog = c.w[0] / (c.groups ?? 1);
      const kX = Cog * c.w[2] * c.w[3];
      const kW = c.x[0] * OH * OW;
      expectAllclose(await toArray(xt.grad!), g.dx, TOL.matmul, { label: 'dx', shape: c.x, scale: Math.sqrt(kX) * maxAbs(g.dx) });
      expectAllclose(await toArray(wt.grad!), g.dW, TOL.matmul, { label: 'dw', shape: c.w, scale: Math.sqrt(kW) * maxAbs(g.dW) });
      if (bt) expectAllclose(await toArray(bt.grad!), g.db, TOL.matmul, { label: 'db', scale: Math.sqrt(kW) * maxAbs(g.db) });
    });
  }
});

describe("conv2d kernels with the other tuning rows' tiles", () => {
  // The NVIDIA/default row's tile (16×8 threads, 4×4 each) and a 4×8 one, run here on lavapipe so
  // every tile in the table is checked on some adapter.
  const tiles = [
    { wgX: 16, wgY: 8, rm: 4, rn: 4 },
    { wgX: 8, wgY: 4, rm: 4, rn: 8 },
  ];
  const c = CASES[2];
  for (const tile of tiles) {
    it(`${tile.rm}×${tile.rn} per thread, ${tile.wgX}×${tile.wgY} threads: ${c.name}`, async () => {
      const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const x = Float64Array.from(Float32Array.from(randomData(size(c.x), 1)));
      const w = Float64Array.from(Float32Array.from(randomData(size(c.w), 2)));
      const b = Float64Array.from(Float32Array.from(randomData(c.w[0], 3)));
      const want = conv2dRef({ data: x, shape: c.x }, { data: w, shape: c.w }, { data: b, shape: [c.w[0]] }, c);
      const [N, C, H, W] = c.x;
      const [Co, , KH, KW] = c.w;
      const [, , OH, OW] = want.shape;
      const r = Float64Array.from(Float32Array.from(randomData(want.data.length, 4)));
      const g = {
        N,
        C,
        H,
        W,
        Co,
        OH,
        OW,
        KH,
        KW,
        stride: c.stride ?? [1, 1],
        padding: c.padding ?? [0, 0],
        dilation: c.dilation ?? [1, 1],
        groups: c.groups ?? 1,
      } as ConvGeometry;
      const t = (d: Float64Array, s: number[]) => tensor(Float32Array.from(d), s);
      const y = empty(want.shape, 'f32');
      conv2dInto(t(x, c.x), t(w, c.w), t(b, [Co]), y, g, { config: tile });
      expectAllclose(await toArray(y), want.data, TOL.matmul, { label: 'y', scale: Math.sqrt(C * KH * KW) * maxAbs(want.data) });
      const adj = adjoint(c, x, w, r, OH, OW);
      const dx = empty(c.x, 'f32');
      conv2dInputGradInto(t(r, want.shape), t(w, c.w), dx, g, tile);
      expectAllclose(await toArray(dx), adj.dx, TOL.matmul, { label: 'dx', scale: Math.sqrt(Co * KH * KW) * maxAbs(adj.dx) });
      const splits = 3;
      const partial = empty([splits, ...c.w], 'f32');
      conv2dWeightGradInto(t(x, c.x), t(r, want.shape), partial, g, splits, tile);
      const dw = await toArray(ops.sum(partial, 0));
      expectAllclose(dw, adj.dW, TOL.matmul, { label: 'dw', scale: Math.sqrt(N * OH * OW) * maxAbs(adj.dW) });
    });
  }
});

describe('conv2d with f16 operands', () => {
  it('f16 x and weight, f32 accumulation and output (oracle on the f16-rounded inputs)', async (ctx) => {
    requireFeature(ctx, 'shader-f16');
    const c = CASES[0];
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const xt = tensor(Float32Array.from(randomData(size(c.x), 1)), c.x, { dtype: 'f16' });
    const wt = tensor(Float32Array.from(randomData(size(c.w), 2)), c.w, { dtype: 'f16' });
    const x = Float64Array.from(await toArray(xt));
    const w = Float64Array.from(await toArray(wt));
    const want = conv2dRef({ data: x, shape: c.x }, { data: w, shape: c.w }, null, c);
    const y = ops.conv2d(xt, wt, null, c);
    expect(y.dtype).toBe('f32');
    expectAllclose(await toArray(y), want.data, TOL.matmul, { label: 'y f16 in', scale: Math.sqrt(c.w[1] * 9) * maxAbs(want.data) });
  });
});

describe('conv2d forward routes and the fused relu', () => {
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const geometry = (c: Case, OH: number, OW: number): ConvGeometry => ({
    N: c.x[0],
    C: c.x[1],
    H: c.x[2],
    W: c.x[3],
    Co: c.w[0],
    OH,
    OW,
    KH: c.w[2],
    KW: c.w[3],
    stride: c.stride ?? [1, 1],
    padding: c.padding ?? [0, 0],
    dilation: c.dilation ?? [1, 1],
    groups: c.groups ?? 1,
  });
  // 1×1 as a matmul: H·W = 35 and Co = 70 are multiples of neither the matmul's 12×16 block nor
  // the conv's 8×8; 3 images exercise the batch dimension. The 5×5 one takes the implicit kernel.
  const cases: Case[] = [
    { name: '1×1 37→70 @5×7, 3 images', x: [3, 37, 5, 7], w: [70, 37, 1, 1], bias: true },
    { name: '5×5 pad 2, 6→11 @9×10', x: [2, 6, 9, 10], w: [11, 6, 5, 5], padding: [2, 2], bias: true },
  ];
  for (const c of cases) {
    for (const route of ['auto', 'implicit'] as const) {
      for (const activation of ['none', 'relu'] as const) {
        it(`${c.name}, route ${route}, activation ${activation}`, async () => {
          const x = Float64Array.from(Float32Array.from(randomData(size(c.x), 1)));
          const w = Float64Array.from(Float32Array.from(randomData(size(c.w), 2)));
          const b = Float64Array.from(Float32Array.from(randomData(c.w[0], 3)));
          const ref = conv2dRef({ data: x, shape: c.x }, { data: w, shape: c.w }, { data: b, shape: [c.w[0]] }, c);
          const want = activation === 'relu' ? ref.data.map((v) => Math.max(v, 0)) : ref.data;
          const y = empty(ref.shape, 'f32');
          const t = (d: Float64Array, s: number[]) => tensor(Float32Array.from(d), s);
          conv2dInto(t(x, c.x), t(w, c.w), t(b, [c.w[0]]), y, geometry(c, ref.shape[2], ref.shape[3]), { route, activation });
          const K = c.w[1] * c.w[2] * c.w[3];
          expectAllclose(await toArray(y), want, TOL.matmul, { label: 'y', shape: ref.shape, scale: Math.sqrt(K) * maxAbs(ref.data) });
        });
      }
    }
  }

  it('relu passes NaN through on both routes (a NaN bias poisons its channel only)', async () => {
    const c = cases[0];
    const [N, , H, W] = c.x;
    const Co = c.w[0];
    const b = Float32Array.from(randomData(Co, 3));
    b[5] = Number.NaN;
    for (const route of ['auto', 'implicit'] as const) {
      const y = empty([N, Co, H, W], 'f32');
      const x = tensor(Float32Array.from(randomData(size(c.x), 1)), c.x);
      conv2dInto(x, tensor(Float32Array.from(randomData(size(c.w), 2)), c.w), tensor(b, [Co]), y, geometry(c, H, W), {
        route,
        activation: 'relu',
      });
      const out = await toArray(y);
      for (let i = 0; i < out.length; i++) {
        const channel = Math.floor(i / (H * W)) % Co;
        expect(Number.isNaN(out[i]), `${route}: element ${i} (channel ${channel})`).toBe(channel === 5);
        if (channel !== 5) expect(out[i]).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('ops.conv2dRelu equals relu(conv2d), and falls back to the unfused pair when recording gradients', async () => {
    const c = cases[1];
    const xt = tensor(Float32Array.from(randomData(size(c.x), 1)), c.x, { requiresGrad: true });
    const wt = tensor(Float32Array.from(randomData(size(c.w), 2)), c.w, { requiresGrad: true });
    const bt = tensor(Float32Array.from(randomData(c.w[0], 3)), [c.w[0]]);
    const unfused = ops.unary('relu', ops.conv2d(xt, wt, bt, c));
    const fusedNoGrad = noGrad(() => ops.conv2dRelu(xt, wt, bt, c));
    expect(fusedNoGrad.requiresGrad).toBe(false);
    const want = await toArray(unfused);
    // The same kernel summation order either way; only where the relu is applied differs.
    expectAllclose(await toArray(fusedNoGrad), want, TOL.exact, { label: 'fused vs unfused' });
    const withGrad = ops.conv2dRelu(xt, wt, bt, c);
    expect(withGrad.requiresGrad).toBe(true);
    await backward(ops.sum(withGrad));
    const dxFused = await toArray(xt.grad!);
    xt.grad = null;
    await backward(ops.sum(unfused));
    expectAllclose(await toArray(xt.grad!), dxFused, TOL.exact, { label: 'dx' });
  });
});
