/**
 * Scaled-dot-product attention, forward and backward, by one of two paths chosen per adapter:
 *
 *  - 'materialized' (attention/materialized.ts): the scores of a group of (batch, head) slices go
 *    to a temporary and the products run on the batched strided matmul, with one row kernel each
 *    way. Groups hold about `groupBytes` of temporaries (tuning.ts), never more than the cap
 *    `materializeBytes` (64 MiB on CPU adapters, where the matmul kernel is much faster per FLOP
 *    than the fused kernels and the backward does 5 instead of 7 D-length products per
 *    (query, key) pair); shapes whose single slice does not fit take the fused path.
 *  - 'flash' (below; the default where `materializeBytes` is 0, i.e. GPUs until measured
 *    otherwise): scores exist only in registers, a few keys (or queries) at a time, so memory
 *    is linear in N.
 *
 * Both save only o and lse for the backward (the autograd interface), and both accept the same
 * views; `AttentionOptions.path` forces one (tests, benchmarks). The fused kernels:
 *
 *   forward    a thread owns `perThread` query rows and keeps their output rows, running maxima
 *              and running sums in registers (online softmax), looping over the keys. Saves
 *              lse = log Σ_j exp(scale·q·k_j) per row.
 *   backward   delta = rowsum(dO ∘ O) (one thread per row), then
 *              dQ    threads own query rows and loop over keys:    dQ = scale·dS·K
 *              dK/dV threads own key rows and loop over queries:   dV = Pᵀ·dO, dK = scale·dSᵀ·Q
 *              with P = exp(scale·q·k − lse) recomputed and dS = P∘(dO·vᵀ − delta). Every output
 *              element is written by exactly one thread: deterministic, no atomics.
 *
 * The loop over the other operand takes `unroll` rows per step; a step's scores stay in registers
 * and each row accumulator is read and written once per step. Those rows come straight from
 * global memory ('stream': every thread of a workgroup reads the same row) or from tiles staged in
 * workgroup memory ('stage', barriers around each tile). Along D the code is either unrolled into
 * vec4 registers (fastest, but LLVM-based drivers compile large unrolled kernels for tens of
 * seconds) or a loop over private arrays with a trip count the compiler cannot see ('loops').
 *
 * Operands are [B, H, N, D] views with any strides and offsets (e.g. q/k/v sliced out of a fused
 * [B, N, 3, H, D] projection), f32 or f16 (f32 accumulation); rows whose D is contiguous and
 * 16-byte aligned are read and written as vec4. Kernels are specialised on D, the configuration
 * and every operand's dtype and vec4 access; all of it is in the pipeline key.
 *
 * Files: this one checks operands, chooses the path and dispatches; attention/sources.ts holds the
 * four fused kernels, attention/codegen.ts the small code-generation language they are written in,
 * attention/materialized.ts the score-matrix path.
 */
import { runtime } from '../gpu/runtime.js';
import { grid1d } from './common.js';
import {
  type AttentionConfig,
  type AttentionDims,
  type BoundOperand,
  bind,
  bound,
  packParams,
  stagedBytes,
  vec4Able,
} from './attention/codegen.js';
import { materializable, materializedBackward, materializedForward, sliceBytes } from './attention/materialized.js';
import { ATTENTION_HEADER, deltaSource, DELTA_HEADER, dkdvSource, dqSource, forwardSource } from './attention/sources.js';
import { adapterTuning, tunedAttentionConfig } from './tuning.js';
import type { View } from './view.js';

export type { AttentionConfig } from './attention/codegen.js';

/** Largest head dim the kernels are generated for. */
export const MAX_HEAD_DIM = 256;

export type AttentionPath = 'flash' | 'materialized';

export interface AttentionOptions {
  /** Overrides the per-adapter choice (benchmarks, tests of every variant). */
  config?: AttentionConfig;
  /** Forces the fused kernels or the score-matrix path (tests, benchmarks); default: per adapter (tuning.ts). */
  path?: AttentionPath;
  /** Byte cap of the score-matrix temporaries when path is 'materialized' (default: the adapter's, or 64 MiB). */
  materializeBytes?: number;
  /** Score-matrix path: bytes of temporaries per group of slices (default: the adapter's; at least one slice, at most the cap). */
  groupBytes?: number;
}

const DEFAULT_MATERIALIZE_BYTES = 64 * 2 ** 20;

let forcedPath: AttentionPath | null = null;
/** Makes calls without `path` take this one until reset with null (tests of models and replays on both paths). */
export function setForcedAttentionPath(path: AttentionPath | null): void {
  forcedPath = path;
}

/**
 * Which path runs this pass: the forced one, else the score-matrix path when the adapter's cap
 * (tuning.ts) admits one (batch, head) slice. A forced 'materialized' with slices too big for the
 * cap or for one storage binding throws.
 */
function choosePath(
  op: string,
  s: AttentionDims,
  options: AttentionOptions,
  pass: 'forward' | 'backward',
): { path: AttentionPath; cap: number } {
  const opts = forcedPath && !options.path && !options.config ? { ...options, path: forcedPath } : options;
  // A flash kernel configuration without a path asks for the flash kernels.
  if (opts.path === 'flash' || (opts.config && !opts.path)) return { path: 'flash', cap: 0 };
  const cap = opts.materializeBytes ?? (opts.path ? DEFAULT_MATERIALIZE_BYTES : adapterTuning().attention.materializeBytes);
  if (opts.path === 'materialized' && !materializable(s, pass, cap))
    throw new RangeError(
      `${op}: the score-matrix path needs ${sliceBytes(s, pass)} bytes per (batch, head) at Nq = ${s.nq}, Nk = ${s.nk}, over the cap of ${cap} (or the adapter's binding limit)`,
    );
  // A group's temporary (the cap, or half of it backward) must also fit one storage binding.
  const lim = runtime().limits;
  const fit = Math.min(cap, Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize) * (pass === 'forward' ? 1 : 2));
  if (!(fit > 0 && materializable(s, pass, fit))) return { path: 'flash', cap: 0 };
  const group = opts.groupBytes ?? adapterTuning().attention.groupBytes;
  return { path: 'materialized', cap: Math.min(fit, Math.max(group, sliceBytes(s, pass))) };
}

/**
 * The adapter's configuration (tuning.ts) for the forward kernel or the two backward kernels; a
 * staged configuration's tile shrinks until it fits the adapter's workgroup memory.
 */
export function chooseAttentionConfig(d: number, pass: 'forward' | 'backward' = 'forward'): AttentionConfig {
  const cfg = { ...adapterTuning().attention[pass] };
  const limit = runtime().limits.maxComputeWorkgroupStorageSize;
  while (cfg.stage > cfg.unroll && stagedBytes(d, cfg.stage) > limit) cfg.stage /= 2;
  return cfg;
}

function checkView(op: string, name: string, v: View, shape: readonly number[]): void {
  if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i])) {
    throw new RangeError(`${op}: ${name} must have shape [${shape.join(', ')}], got [${v.shape.join(', ')}]`);
  }
  if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`${op}: ${name} must be f32 or f16, got ${v.dtype}`);
}

function checkInputs(op: string, q: View, k: View, v: View, lse: View): AttentionDims {
  if (q.shape.length !== 4) throw new RangeError(`${op}: q must be [B, H, Nq, D], got [${q.shape.join(', ')}]`);
  const [b, h, nq, d] = q.shape;
  const nk = k.shape[2] ?? 0;
  checkView(op, 'q', q, [b, h, nq, d]);
  checkView(op, 'k', k, [b, h, nk, d]);
  checkView(op, 'v', v, [b, h, nk, d]);
  if (d < 1 || d > MAX_HEAD_DIM) throw new RangeError(`${op}: head dim ${d} must be in [1, ${MAX_HEAD_DIM}]`);
  if (nk === 0 && nq > 0) throw new RangeError(`${op}: attention over zero keys is undefined (k has Nk = 0)`);
  checkView(op, 'lse', lse, [b, h, nq]);
  if (lse.dtype !== 'f32') throw new TypeError(`${op}: lse must be f32, got ${lse.dtype}`);
  return { b, h, nq, nk, d };
}

function validConfig(cfg: AttentionConfig, d: number): boolean {
  const { rows, perThread, unroll, stage } = cfg;
  return (
    Number.isInteger(rows) &&
    rows >= 1 &&
    rows <= runtime().limits.maxComputeInvocationsPerWorkgroup &&
    Number.isInteger(perThread) &&
    perThread >= 1 &&
    perThread <= 16 &&
    Number.isInteger(unroll) &&
    unroll >= 1 &&
    unroll <= 32 &&
    Number.isInteger(stage) &&
    stage >= 0 &&
    stage % unroll === 0 &&
    typeof cfg.loops === 'boolean' &&
    stagedBytes(d, stage) <= runtime().limits.maxComputeWorkgroupStorageSize
  );
}

function resolveConfig(op: string, s: AttentionDims, opts: AttentionOptions, pass: 'forward' | 'backward'): AttentionConfig {
  if (opts.config) {
    if (!validConfig(opts.config, s.d))
      throw new RangeError(`${op}: invalid configuration ${JSON.stringify(opts.config)} for head dim ${s.d}`);
    return opts.config;
  }
  // The autotuner's choice when tuning is on and this shape class was measured (a cached value that does not validate is ignored).
  const tuned = tunedAttentionConfig(pass, s.b * s.h, s.nq, s.d);
  return tuned && validConfig(tuned, s.d) ? tuned : chooseAttentionConfig(s.d, pass);
}

const header = (s: AttentionDims, scale: number) => ({
  nq: s.nq,
  nk: s.nk,
  scale_log2e: scale * Math.LOG2E,
  scale,
  dv4: Math.ceil(s.d / 4),
});
const cfgKey = (c: AttentionConfig) => `t${c.rows}r${c.perThread}u${c.unroll}s${c.stage}${c.loops ? 'L' : 'U'}`;
/** BoundOperand dtypes and vec4 access, the rest of what the WGSL is specialised on. */
const opsKey = (ops: BoundOperand[]) => ops.map((o) => `${o.view.dtype}${o.v4 ? '/4' : ''}@${o.binding}`).join(',');
const R = (name: string, view: View, v4 = vec4Able(view)): BoundOperand => ({ name, view, access: 'read', v4, buf: '', binding: 0 });
const W = (name: string, view: View, v4 = vec4Able(view)): BoundOperand => ({ name, view, access: 'write', v4, buf: '', binding: 0 });

function dispatchOps(key: string, wgsl: () => string, ops: BoundOperand[], groups: [number, number, number], params: Uint32Array): void {
  const b = bound(ops);
  runtime().dispatch(
    { key, bindings: [...b.map((o) => o.access), 'uniform'], wgsl },
    b.map((o) => o.view.buffer),
    groups,
    params,
  );
}

/**
 * o = softmax(scale · q kᵀ) v and lse = log Σ_j exp(scale · q·k_j), per (batch, head, query).
 * q: [B,H,Nq,D], k, v: [B,H,Nk,D], o: [B,H,Nq,D] (any strides); lse: [B,H,Nq] f32.
 */
export function attentionForward(q: View, k: View, v: View, o: View, lse: View, scale: number, opts: AttentionOptions = {}): void {
  const op = 'attentionForward';
  const s = checkInputs(op, q, k, v, lse);
  checkView(op, 'o', o, q.shape);
  if (s.b * s.h * s.nq === 0) return;
  const { path, cap } = choosePath(op, s, opts, 'forward');
  if (path === 'materialized') {
    bind(op, [R('q', q), R('k', k), R('v', v), W('o', o), W('lse', lse, false)]);
    materializedForward(q, k, v, o, lse, scale, s, cap);
    return;
  }
  const cfg = resolveConfig(op, s, opts, 'forward');
  const ops = bind(op, [R('q', q), R('k', k), R('v', v), W('o', o), W('lse', lse, false)]);
  const groups: [number, number, number] = [Math.ceil(s.nq / (cfg.rows * cfg.perThread)), s.h, s.b];
  dispatchOps(
    `attn_fwd|d${s.d}|${cfgKey(cfg)}|${opsKey(ops)}`,
    () => forwardSource(s.d, cfg, ops),
    ops,
    groups,
    packParams(ATTENTION_HEADER, header(s, scale), ops),
  );
}

/**
 * Gradients of attentionForward: dq, dk, dv (shapes of q, k, v; any strides) from dO and the
 * saved o and lse. Allocates one [B,H,Nq] f32 temporary (delta) and releases it after recording.
 */
export function attentionBackward(
  q: View,
  k: View,
  v: View,
  o: View,
  lse: View,
  dO: View,
  dq: View,
  dk: View,
  dv: View,
  scale: number,
  opts: AttentionOptions = {},
): void {
  const op = 'attentionBackward';
  const s = checkInputs(op, q, k, v, lse);
  for (const [name, t, like] of [
    ['o', o, q],
    ['dO', dO, q],
    ['dq', dq, q],
    ['dk', dk, k],
    ['dv', dv, v],
  ] as const)
    checkView(op, name, t, like.shape);
  if (s.b * s.h * (s.nq + s.nk) === 0) return;
  // With no queries (Nq = 0) the score matrix is empty and dK, dV are zeros: the flash kernels write them.
  const { path, cap } = s.nq > 0 ? choosePath(op, s, opts, 'backward') : { path: 'flash' as const, cap: 0 };
  if (path === 'materialized') {
    bind(op, [R('q', q), R('k', k), R('v', v), R('lse', lse, false), R('dO', dO), W('dq', dq), W('dk', dk), W('dv', dv)]);
    materializedBackward(q, k, v, lse, dO, dq, dk, dv, scale, s, cap);
    return;
  }
  const cfg = resolveConfig(op, s, opts, 'backward');
  const rt = runtime();
  const rows = s.b * s.h * s.nq;
  const deltaBuf = rt.allocate(Math.max(rows, 1) * 4, 'attention-delta');
  const delta: View = { buffer: deltaBuf, dtype: 'f32', shape: [s.b, s.h, s.nq], strides: [s.h * s.nq, s.nq, 1], offset: 0 };
  try {
    if (rows > 0) {
      const dOps = bind(op, [R('o', o, false), R('dO', dO, false), W('delta', delta, false)]);
      dispatchOps(
        `attn_delta|d${s.d}|${opsKey(dOps)}`,
        () => deltaSource(s.d, dOps),
        dOps,
        [...grid1d(rows), 1],
        packParams(DELTA_HEADER, { nq: s.nq, heads: s.h, batch: s.b }, dOps),
      );
      const qOps = bind(op, [R('q', q), R('k', k), R('v', v), R('dO', dO), R('lse', lse, false), R('delta', delta, false), W('dq', dq)]);
      const groups: [number, number, number] = [Math.ceil(s.nq / (cfg.rows * cfg.perThread)), s.h, s.b];
      dispatchOps(
        `attn_dq|d${s.d}|${cfgKey(cfg)}|${opsKey(qOps)}`,
        () => dqSource(s.d, cfg, qOps),
        qOps,
        groups,
        packParams(ATTENTION_HEADER, header(s, scale), qOps),
      );
    }
    const kOps = bind(op, [
      R('q', q),
      R('k', k),
      R('v', v),
      R('dO', dO),
      R('lse', lse, false),
      R('delta', delta, false),
      W('dk', dk),
      W('dv', dv),
    ]);
    const groups: [number, number, number] = [Math.ceil(s.nk / (cfg.rows * cfg.perThread)), s.h, s.b];
    dispatchOps(
      `attn_dkdv|d${s.d}|${cfgKey(cfg)}|${opsKey(kOps)}`,
      () => dkdvSource(s.d, cfg, kOps),
      kOps,
      groups,
      packParams(ATTENTION_HEADER, header(s, scale), kOps),
    );
  } finally {
    rt.release(deltaBuf);
  }
}
