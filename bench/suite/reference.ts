/**
 * Float64 references (src/cpu) for a sample of each case's output, computed from the same
 * Float32Array inputs every engine receives. Samples keep the big cases affordable: a few rows
 * of a matmul, one head of attention, a spread of AdamW parameters.
 */
import * as cpu from '../../src/cpu/index.js';
import { AdamW64 } from '../../src/cpu/optim.js';
import type { Expected, Input, Op } from './spec.js';
import { sampleRows } from './spec.js';

const ND = (x: Input | Float32Array, shape?: number[]): cpu.NDArray =>
  x instanceof Float32Array ? cpu.nd(x, shape!) : cpu.nd(x.data, x.shape);

/** Element (i, j) of a stored operand read as its logical [rows, cols] matrix. */
const at = (data: Float32Array, trans: boolean | undefined, rows: number, cols: number) =>
  trans ? (i: number, j: number) => data[j * rows + i] : (i: number, j: number) => data[i * cols + j];

export function expectedMatmul(op: Extract<Op, { kind: 'matmul' }>, [a, b]: Input[]): Expected {
  const { M, K, N } = op;
  const A = at(a.data, op.transA, M, K);
  const B = at(b.data, op.transB, K, N);
  const indices: number[] = [];
  const vals: number[] = [];
  for (const i of sampleRows(M, 6)) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A(i, k) * B(k, j);
      indices.push(i * N + j);
      vals.push(s);
    }
  }
  // f32 accumulation over K terms: error grows ~√K·ε relative to the row's magnitude.
  return { output: 'out', indices, values: Float64Array.from(vals), tol: 2e-6 * Math.sqrt(K) * 4 };
}

/** Attention: output rows (forward) or dV (backward) of heads (0, 0) and (B−1, H−1). */
export function expectedAttention(op: Extract<Op, { kind: 'attention' }>, ins: Input[]): Expected {
  const { B, H, N, D } = op;
  const head = (t: Input, b: number, h: number) => cpu.nd(t.data.subarray((b * H + h) * N * D, ((b * H + h) * N + N) * D), [N, D]);
  const indices: number[] = [];
  const vals: number[] = [];
  for (const [b, h] of [
    [0, 0],
    [B - 1, H - 1],
  ]) {
    const [q, k, v] = ins.slice(0, 3).map((t) => head(t, b, h));
    const p = cpu.attentionWeights(q, k); // [N, N]
    const out = op.backward ? cpu.matmul(cpu.transpose(p), head(ins[3], b, h)) : cpu.matmul(p, v);
    const base = (b * H + h) * N * D;
    for (let i = 0; i < N * D; i += 7) {
      indices.push(base + i);
      vals.push(out.data[i]);
    }
  }
  return { output: op.backward ? 'dV' : 'out', indices, values: Float64Array.from(vals), tol: 1e-4 };
}

export function expectedRows(op: Extract<Op, { kind: 'layerNorm' | 'rmsNorm' | 'softmax' }>, ins: Input[]): Expected {
  const { T, W } = op;
  const rows = sampleRows(T, 16);
  const sub = new Float32Array(rows.length * W);
  rows.forEach((r, i) => sub.set(ins[0].data.subarray(r * W, r * W + W), i * W));
  const x = ND(sub, [rows.length, W]);
  const y =
    op.kind === 'softmax'
      ? cpu.softmax(x, -1)
      : op.kind === 'layerNorm'
        ? cpu.layerNorm(x, [W], ND(ins[1]), ND(ins[2]))
        : cpu.rmsNorm(x, [W], ND(ins[1]));
  const indices = rows.flatMap((r) => Array.from({ length: W }, (_, j) => r * W + j));
  return { output: 'out', indices, values: y.data, tol: 1e-5 };
}

export const ADAM = { lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0 };

/** The parameters after one AdamW step from zero moments (inputs: param, grad). */
export function expectedAdamw(op: Extract<Op, { kind: 'adamw' }>, [p, g]: Input[]): Expected {
  const stride = Math.max(1, Math.floor(op.P / 4096));
  const indices: number[] = [];
  for (let i = 0; i < op.P; i += stride) indices.push(i);
  const params = Float64Array.from(indices, (i) => p.data[i]);
  new AdamW64([params], ADAM).step([Float64Array.from(indices, (i) => g.data[i])]);
  return { output: 'param', indices, values: params, tol: 1e-6 };
}

/**
 * The block-train case's inputs in order: x [B, N, D], then the parameters
 * (ln1.w, ln1.b, qkv.w [3D, D], qkv.b, proj.w [D, D], proj.b, ln2.w, ln2.b, fc1.w [4D, D], fc1.b, fc2.w [D, 4D], fc2.b).
 */
export const BLOCK_PARAMS = ['ln1.w', 'ln1.b', 'qkv.w', 'qkv.b', 'proj.w', 'proj.b', 'ln2.w', 'ln2.b', 'fc1.w', 'fc1.b', 'fc2.w', 'fc2.b'];

/** Loss of the first step (before any update): mean(y²) of the pre-LN block's output. */
export function expectedBlockLoss(op: Extract<Op, { kind: 'block-train' }>, ins: Input[]): Expected {
  const { B, N, D, H } = op;
  const P = Object.fromEntries(BLOCK_PARAMS.map((n, i) => [n, ND(ins[i + 1])]));
  const x = cpu.reshape(ND(ins[0]), [B * N, D]);
  const qkv = cpu.linear(cpu.layerNorm(x, [D], P['ln1.w'], P['ln1.b']), P['qkv.w'], P['qkv.b']); // [BN, 3D]
  const heads = (i: number) => cpu.permute(cpu.reshape(cpu.narrow(qkv, 1, i * D, D), [B, N, H, D / H]), [0, 2, 1, 3]);
  const att = cpu.reshape(cpu.permute(cpu.scaledDotProductAttention(heads(0), heads(1), heads(2)), [0, 2, 1, 3]), [B * N, D]);
  const h = cpu.add(x, cpu.linear(att, P['proj.w'], P['proj.b']));
  const m = cpu.linear(
    cpu.geluTanh(cpu.linear(cpu.layerNorm(h, [D], P['ln2.w'], P['ln2.b']), P['fc1.w'], P['fc1.b'])),
    P['fc2.w'],
    P['fc2.b'],
  );
  const y = cpu.add(h, m);
  let s = 0;
  for (const v of y.data) s += v * v;
  return { output: 'loss', indices: [0], values: Float64Array.of(s / y.data.length), tol: 1e-4 };
}
