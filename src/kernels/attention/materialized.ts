/**
 * Attention through the score matrix: the scores of a group of (batch, head) slices are written
 * to a temporary and the products run on the batched strided matmul (../matmul.ts), which is
 * much faster per FLOP than the fused kernels on CPU adapters and does 5 instead of 7 D-length
 * inner products per (query, key) pair in the backward (the flash dQ and dK/dV passes each
 * recompute the scores).
 *
 *   forward    S = scale·Q Kᵀ          matmul, alpha = scale
 *              P = softmax(S), lse     row kernel, P over S in place
 *              O = P V                 matmul
 *   backward   S = scale·Q Kᵀ, dP = dO Vᵀ                    two matmuls
 *              P = exp(S − lse), delta = Σ_j P∘dP,            one row kernel, in place:
 *              dS = scale·P∘(dP − delta)                        S ← P, dP ← dS
 *              dV = Pᵀ dO, dQ = dS K, dK = dSᵀ Q              three matmuls (transposes are views)
 *
 * delta = Σ_j P_j·dP_j equals rowsum(dO ∘ O) of the flash path (dP_j = dO·v_j and O = Σ_j P_j v_j),
 * computed from the P actually used here, so no separate pass over D is needed.
 *
 * Temporaries ([slices, Nq, Nk] f32, one forward, two backward) come from runtime().allocate and
 * are released after recording, like the flash backward's delta; slices are processed in groups
 * whose temporaries stay under the byte budget the caller passes (attention.ts: tuning.ts
 * `groupBytes`, at least one slice, never above `materializeBytes`), small enough on CPU adapters
 * for the scores to stay in cache from the matmul that writes them to the kernels that read them.
 */
import { runtime } from '../../gpu/runtime.js';
import { grid1d, WG } from '../common.js';
import { type MatmulConfig, matmulInto, usableBroadcastConfig } from '../matmul.js';
import { adapterTuning } from '../tuning.js';
import { uniforms } from '../uniforms.js';
import type { View } from '../view.js';
import type { AttentionDims } from './codegen.js';

/** Rows of the score matrix per (batch, head) slice times the temporaries a pass needs. */
export function sliceBytes(s: Pick<AttentionDims, 'nq' | 'nk'>, pass: 'forward' | 'backward'): number {
  return s.nq * s.nk * 4 * (pass === 'forward' ? 1 : 2);
}

/** Whether one (batch, head) slice of this pass fits under `capBytes` (and the adapter's binding limit). */
export function materializable(s: Pick<AttentionDims, 'nq' | 'nk'>, pass: 'forward' | 'backward', capBytes: number): boolean {
  const lim = runtime().limits.maxStorageBufferBindingSize;
  return s.nq > 0 && s.nk > 0 && sliceBytes(s, pass) <= capBytes && s.nq * s.nk * 4 <= lim;
}

/** A [B', H', N, D] (or [B', H', N]) window of a [B, H, …] view. */
function window(v: View, b0: number, nb: number, h0: number, nh: number): View {
  // Fields copied one by one: a View may be a Tensor, whose fields are getters that a spread would drop.
  return {
    buffer: v.buffer,
    dtype: v.dtype,
    shape: [nb, nh, ...v.shape.slice(2)],
    strides: v.strides,
    offset: v.offset + b0 * v.strides[0] + h0 * v.strides[1],
  };
}

/** The last two dims swapped (a transposed operand for matmulInto). */
function t(v: View): View {
  const n = v.shape.length;
  return {
    buffer: v.buffer,
    dtype: v.dtype,
    offset: v.offset,
    shape: [...v.shape.slice(0, n - 2), v.shape[n - 1], v.shape[n - 2]],
    strides: [...v.strides.slice(0, n - 2), v.strides[n - 1], v.strides[n - 2]],
  };
}

/** Groups of (batch, head) slices, each under the cap: whole batches of all heads, else heads of one batch entry. */
function* groups(s: AttentionDims, perSlice: number, capBytes: number): Generator<[b0: number, nb: number, h0: number, nh: number]> {
  const fit = Math.max(1, Math.floor(capBytes / perSlice));
  if (fit >= s.h) {
    const nb = Math.min(s.b, Math.floor(fit / s.h));
    for (let b0 = 0; b0 < s.b; b0 += nb) yield [b0, Math.min(nb, s.b - b0), 0, s.h];
  } else {
    for (let b0 = 0; b0 < s.b; b0++) for (let h0 = 0; h0 < s.h; h0 += fit) yield [b0, 1, h0, Math.min(fit, s.h - h0)];
  }
}

/**
 * The matmul configuration for the products with N = D output columns (O, dQ, dK, dV): the
 * adapter's register tile narrowed to D / rn threads across, with the same threads per workgroup,
 * when that divides evenly. The lavapipe tile is 128 columns wide, so at D = 64 half of every
 * workgroup idled; the 64-wide tile took 20–26 ms of CPU time per [24, 256, 64] product instead
 * of 28–41 ms (one process, interleaved, min of 4). At D = 72 the uneven 5×6-thread tile was
 * slower than the table's (CPU time 172 vs 151–156 ms per [128, 256, 72] product), so other
 * widths keep the table (and GPU kernels are left to matmul.ts).
 */
function narrowConfig(n: number): MatmulConfig | undefined {
  // The broadcast kernel's block is lanes·rn columns (64 on lavapipe): narrowed only below that.
  const b = usableBroadcastConfig();
  if (b) {
    const rn = Math.min(b.rn, 4 * Math.ceil(n / (4 * b.lanes)));
    return rn === b.rn ? undefined : { ...b, rn };
  }
  const g = adapterTuning().matmul.general;
  if (g.kind !== 'register' || n >= g.wgX * g.rn || n % g.rn !== 0) return undefined;
  const wgX = n / g.rn;
  const threads = g.wgX * g.wgY;
  return threads % wgX === 0 ? { ...g, wgX, wgY: threads / wgX } : undefined;
}

/** Parameters of both row kernels: rows of this group, its shape, the score scale and lse's strides. */
const ROW_UNIFORMS = uniforms({
  rows: 'u32',
  nq: 'u32',
  heads: 'u32',
  nk: 'u32',
  scale: 'f32',
  lse_sb: 'u32',
  lse_sh: 'u32',
  lse_sn: 'u32',
  lse_offset: 'u32',
});

/**
 * One score row per invocation (no barriers: on CPU adapters they are emulated and a workgroup
 * per row ran 3–12× slower for the softmax family, tuning.ts), rows contiguous in the temporaries.
 * `vec4` (Nk % 4 == 0): the rows are read as vec4s, which lavapipe loads for about half the
 * instructions per element of scalars (every non-constant load there is a loop over the lanes).
 */
function rowKernel(kind: 'softmax' | 'grad', vec4: boolean): string {
  const T = vec4 ? 'vec4<f32>' : 'f32';
  const splat = (x: string) => (vec4 ? `vec4<f32>(${x})` : x);
  const hsum = (x: string) => (vec4 ? `dot(${x}, vec4<f32>(1.0))` : x);
  const hmax = (x: string) => (vec4 ? `max(max(${x}.x, ${x}.y), max(${x}.z, ${x}.w))` : x);
  const bufs =
    kind === 'softmax'
      ? [
          `@group(0) @binding(0) var<storage, read_write> s: array<${T}>;`,
          '@group(0) @binding(1) var<storage, read_write> lse: array<f32>;',
        ]
      : [
          `@group(0) @binding(0) var<storage, read_write> s: array<${T}>;`,
          `@group(0) @binding(1) var<storage, read_write> dp: array<${T}>;`,
          '@group(0) @binding(2) var<storage, read> lse: array<f32>;',
        ];
  // Forward: the max and the sum of exp(s − max) in one pass (the sum rescaled when the max
  // grows), then p = exp(s − lse): two reads and a write per score instead of three and two
  // (loads, not the exps, are the cost on CPU adapters); the row is a few KiB and stays in cache.
  const body =
    kind === 'softmax'
      ? `var m = -3.0e38;
  var l = 0.0;
  for (var j = 0u; j < n; j++) {
    let x = s[base + j];
    let mj = max(m, ${hmax('x')});
    l = l * exp(m - mj) + ${hsum(`exp(x - ${splat('mj')})`)};
    m = mj;
  }
  let L = m + log(l);
  for (var j = 0u; j < n; j++) { s[base + j] = exp(s[base + j] - ${splat('L')}); }
  lse[li] = L;`
      : `let L = ${splat('lse[li]')};
  var delta = 0.0;
  for (var j = 0u; j < n; j++) { let p = exp(s[base + j] - L); s[base + j] = p; delta += ${hsum('p * dp[base + j]')}; }
  let scale = params.scale;
  for (var j = 0u; j < n; j++) { dp[base + j] = s[base + j] * (dp[base + j] - ${splat('delta')}) * scale; }`;
  return `${bufs.join('\n')}
${ROW_UNIFORMS.wgsl(bufs.length)}
const WG = ${WG}u;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * (nwg.x * WG);
  if (i >= params.rows) { return; }
  let Nq = params.nq;
  let row = i % Nq;
  let h = (i / Nq) % params.heads;
  let b = i / (Nq * params.heads);
  // Row length in array elements (${vec4 ? 'vec4s' : 'scalars'}).
  let n = params.nk${vec4 ? ' / 4u' : ''};
  let base = i * n;
  let li = params.lse_offset + b * params.lse_sb + h * params.lse_sh + row * params.lse_sn;
  ${body}
}`;
}

export const materializedSoftmaxSource = (vec4 = true): string => rowKernel('softmax', vec4);
export const materializedGradSource = (vec4 = true): string => rowKernel('grad', vec4);

function rowParams(rows: number, nq: number, heads: number, nk: number, scale: number, lse: View): Uint32Array {
  const st = lse.strides.map((x, i) => (lse.shape[i] === 1 ? 0 : x));
  return ROW_UNIFORMS.pack({ rows, nq, heads, nk, scale, lse_sb: st[0], lse_sh: st[1], lse_sn: st[2], lse_offset: lse.offset });
}

function scores(buffer: View['buffer'], nb: number, nh: number, nq: number, nk: number): View {
  return { buffer, dtype: 'f32', shape: [nb, nh, nq, nk], strides: [nh * nq * nk, nq * nk, nk, 1], offset: 0 };
}

export function materializedForward(
  q: View,
  k: View,
  v: View,
  o: View,
  lse: View,
  scale: number,
  s: AttentionDims,
  capBytes: number,
): void {
  const rt = runtime();
  const per = sliceBytes(s, 'forward');
  const maxSlices = Math.min(s.b * s.h, Math.max(1, Math.floor(capBytes / per)));
  const sBuf = rt.allocate(maxSlices * per, 'attention-scores');
  try {
    for (const [b0, nb, h0, nh] of groups(s, per, capBytes)) {
      const S = scores(sBuf, nb, nh, s.nq, s.nk);
      const w = (x: View) => window(x, b0, nb, h0, nh);
      matmulInto(w(q), t(w(k)), S, { alpha: scale });
      const rows = nb * nh * s.nq;
      const v4 = s.nk % 4 === 0;
      rt.dispatch(
        { key: `attn_mat_softmax|${v4 ? 'v4' : 's'}`, bindings: ['write', 'write', 'uniform'], wgsl: () => materializedSoftmaxSource(v4) },
        [sBuf, lse.buffer],
        [...grid1d(rows), 1],
        rowParams(rows, s.nq, nh, s.nk, scale, w(lse)),
      );
      matmulInto(S, w(v), w(o), { config: narrowConfig(s.d) });
    }
  } finally {
    rt.release(sBuf);
  }
}

export function materializedBackward(
  q: View,
  k: View,
  v: View,
  lse: View,
  dO: View,
  dq: View,
  dk: View,
  dv: View,
  scale: number,
  s: AttentionDims,
  capBytes: number,
): void {
  const rt = runtime();
  const per = sliceBytes(s, 'backward');
  const maxSlices = Math.min(s.b * s.h, Math.max(1, Math.floor(capBytes / per)));
  const bytes = (maxSlices * per) / 2;
  const sBuf = rt.allocate(bytes, 'attention-scores');
  const dpBuf = rt.allocate(bytes, 'attention-score-grads');
  try {
    for (const [b0, nb, h0, nh] of groups(s, per, capBytes)) {
      const S = scores(sBuf, nb, nh, s.nq, s.nk);
      const dP = scores(dpBuf, nb, nh, s.nq, s.nk);
      const w = (x: View) => window(x, b0, nb, h0, nh);
      matmulInto(w(q), t(w(k)), S, { alpha: scale });
      matmulInto(w(dO), t(w(v)), dP);
      const rows = nb * nh * s.nq;
      const v4 = s.nk % 4 === 0;
      rt.dispatch(
        {
          key: `attn_mat_grad|${v4 ? 'v4' : 's'}`,
          bindings: ['write', 'write', 'read', 'uniform'],
          wgsl: () => materializedGradSource(v4),
        },
        [sBuf, dpBuf, lse.buffer],
        [...grid1d(rows), 1],
        rowParams(rows, s.nq, nh, s.nk, scale, w(lse)),
      );
      const config = narrowConfig(s.d);
      matmulInto(t(S), w(dO), w(dv), { config });
      matmulInto(dP, w(k), w(dq), { config });
      matmulInto(t(dP), w(q), w(dk), { config });
    }
  } finally {
    rt.release(sBuf);
    rt.release(dpBuf);
  }
}
