/**
 * Row-wise softmax family over the last dim of contiguous [rows, C] views: one workgroup per
 * row, threads stride through C, workgroup reductions from row-reduce.ts; or, for short rows
 * (tuning.ts rowPlan), one row per invocation with no barriers, as vec4 when C and the offsets
 * are multiples of 4 (softmaxVec4Body; same arithmetic per element). Forward uses an online
 * (max, sum) per thread so x is read twice, not three times. Everything computes in f32; f16
 * operands are loaded and stored through conversions.
 *
 * Cross entropy fuses log-softmax with the label gather; labels outside [0, C) give NaN loss
 * (and a NaN gradient row) instead of reading out of bounds: validating labels is the caller's
 * job (the autograd layer does it), the kernel only refuses to make up a number.
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { sizeOf } from '../core/shape.js';
import { asPlan, type PlanArg, rowEnables, rowFrame, rowsOf, type SubgroupFlavour, useSubgroups, vec4RowsOk } from './row-reduce.js';
import { rowPlan } from './tuning.js';
import { uniforms } from './uniforms.js';
import { isContiguous, type View } from './view.js';

export type SoftmaxKind = 'softmax' | 'logSoftmax' | 'softmaxBackward' | 'logSoftmaxBackward' | 'crossEntropy' | 'crossEntropyBackward';

/**
 * Parameters: rows, row length, the cross-entropy gradient scale, and the element offsets of the
 * inputs a (x, y or logits) and b (dy or labels) and outputs o and o2 (log-probabilities).
 * Kernels without a second input or output get offset 0 there.
 */
const SOFTMAX_UNIFORMS = uniforms({
  rows: 'u32',
  C: 'u32',
  scale: 'f32',
  a_offset: 'u32',
  b_offset: 'u32',
  o_offset: 'u32',
  o2_offset: 'u32',
});

function sameRows(a: View, b: View, op: string, what: string): void {
  const [ra, ca] = rowsOf(a, op, 'input');
  const [rb, cb] = rowsOf(b, op, what);
  if (ra !== rb || ca !== cb)
    throw new RangeError(`${op}: ${what} [${b.shape.join(', ')}] must match the input's [${a.shape.join(', ')}] as [rows, C]`);
}

/** out = softmax(x) over the last dim. */
export function softmaxInto(x: View, out: View): void {
  sameRows(x, out, 'softmax', 'out');
  launch('softmax', [x], [out], rowsOf(x, 'softmax', 'x'));
}

/** out = x − logsumexp(x) over the last dim. */
export function logSoftmaxInto(x: View, out: View): void {
  sameRows(x, out, 'logSoftmax', 'out');
  launch('logSoftmax', [x], [out], rowsOf(x, 'logSoftmax', 'x'));
}

/** dx = y ∘ (dy − Σ dy∘y), y = softmax output. */
export function softmaxBackwardInto(y: View, dy: View, dx: View): void {
  sameRows(y, dy, 'softmaxBackward', 'dy');
  sameRows(y, dx, 'softmaxBackward', 'dx');
  launch('softmaxBackward', [y, dy], [dx], rowsOf(y, 'softmaxBackward', 'y'));
}

/** dx = dy − exp(y) · Σ dy, y = log-softmax output. */
export function logSoftmaxBackwardInto(y: View, dy: View, dx: View): void {
  sameRows(y, dy, 'logSoftmaxBackward', 'dy');
  sameRows(y, dx, 'logSoftmaxBackward', 'dx');
  launch('logSoftmaxBackward', [y, dy], [dx], rowsOf(y, 'logSoftmaxBackward', 'y'));
}

function checkLabels(logits: View, labels: View, op: string): [number, number] {
  const [N, C] = rowsOf(logits, op, 'logits');
  if (labels.dtype !== 'i32') throw new TypeError(`${op}: labels must be i32, got ${labels.dtype}`);
  if (!isContiguous(labels) || sizeOf(labels.shape) !== N)
    throw new RangeError(`${op}: labels must be contiguous with ${N} elements, got [${labels.shape.join(', ')}]`);
  return [N, C];
}

/**
 * lossPerRow[n] = logsumexp(logits[n]) − logits[n, labels[n]] (NaN when labels[n] ∉ [0, C));
 * optionally also writes the log-probabilities [N, C].
 */
export function crossEntropyInto(logits: View, labels: View, lossPerRow: View, logProbs?: View): void {
  const [N, C] = checkLabels(logits, labels, 'crossEntropy');
  if (!isContiguous(lossPerRow) || sizeOf(lossPerRow.shape) !== N)
    throw new RangeError(`crossEntropy: lossPerRow must be contiguous with ${N} elements`);
  if (lossPerRow.dtype !== 'f32' && lossPerRow.dtype !== 'f16')
    throw new TypeError(`crossEntropy: lossPerRow must be f32 or f16, got ${lossPerRow.dtype}`);
  if (logProbs) sameRows(logits, logProbs, 'crossEntropy', 'logProbs');
  launch('crossEntropy', [logits, labels], logProbs ? [lossPerRow, logProbs] : [lossPerRow], [N, C]);
}

/**
 * dlogits = (softmax(logits) − onehot(labels)) · gradScale, without a one-hot in memory. A row
 * whose label is outside [0, C) gets NaN gradients.
 */
export function crossEntropyBackwardInto(logits: View, labels: View, gradScale: number, dlogits: View): void {
  const [N, C] = checkLabels(logits, labels, 'crossEntropyBackward');
  sameRows(logits, dlogits, 'crossEntropyBackward', 'dlogits');
  launch('crossEntropyBackward', [logits, labels], [dlogits], [N, C], gradScale);
}

function launch(kind: SoftmaxKind, ins: View[], outs: View[], [rows, C]: [number, number], scale = 1): void {
  if (rows === 0 || C === 0) return;
  const backward = kind === 'softmaxBackward' || kind === 'logSoftmaxBackward';
  const base = rowPlan(backward ? 'softmaxBackward' : 'softmax', rows, C);
  const plan = { ...base, vec4: VEC4_KINDS.has(kind) && vec4RowsOk(base, C, [...ins, ...outs]) };
  const sg = plan.perThread ? false : useSubgroups();
  const dtypes = [...ins, ...outs].map((v) => v.dtype);
  const shape = plan.perThread ? `thread${plan.vec4 ? 'v4' : ''}` : 'wg';
  const key = `softmax|${kind}|${shape}${plan.wg}|sg${sg}|${dtypes.join(',')}`;
  const params = SOFTMAX_UNIFORMS.pack({
    rows,
    C,
    scale,
    a_offset: ins[0].offset,
    b_offset: ins[1]?.offset ?? 0,
    o_offset: outs[0].offset,
    o2_offset: outs[1]?.offset ?? 0,
  });
  runtime().dispatch(
    {
      key,
      bindings: [...ins.map(() => 'read' as const), ...outs.map(() => 'write' as const), 'uniform'],
      wgsl: () =>
        softmaxSource(
          kind,
          plan,
          sg,
          ins.map((v) => v.dtype),
          outs.map((v) => v.dtype),
        ),
    },
    [...ins.map((v) => v.buffer), ...outs.map((v) => v.buffer)],
    rowFrame(plan, sg).grid(rows),
    params,
  );
}

/**
 * The online (max, sum) update of onlineLogSumExp for one value `v`, as a statement. A NaN sets the
 * sum to NaN itself rather than through exp(NaN), and the sum then stays NaN.
 */
const ONLINE_UPDATE =
  'if (is_nan(v)) { s_t = f_nan(); } else if (v > m_t) { s_t = s_t * exp(m_t - v) + 1.0; m_t = v; } else if (m_t > -f_inf()) { s_t += exp(v - m_t); }';

/**
 * From the row's max `m` and its sum of exp(x - m), the `s` the kernels divide by: NaN where
 * float64 exp(x - max) / Σ is NaN everywhere: a NaN in the row, a +inf (inf - inf), every entry
 * -inf (0 / 0). The kernels then give NaN for the whole row instead of relying on exp(NaN), and a
 * NaN sum is not taken for an empty one.
 */
const lseSpecials = (sum: string) => `let s = select(${sum}, f_nan(), !(${sum} > 0.0) || m == f_inf());`;

/** Per-thread online max/sum of exp over the row of `a`, then combined across the workgroup. */
function onlineLogSumExp(args: string): string {
  return `var m_t = -f_inf();
  var s_t = 0.0;
  for (var j = lid; j < C; j += WG) {
    let v = f32(a[ra + j]);
    // While m_t is -inf, a -inf entry adds nothing (exp(-inf - -inf) would be NaN); NaN still propagates.
    ${ONLINE_UPDATE}
  }
  let m = wg_max(m_t, ${args});
  let s_sum = wg_sum(select(0.0, s_t * exp(m_t - m), s_t > 0.0 || is_nan(s_t)), ${args});
  ${lseSpecials('s_sum')}`;
}

/** Kinds with a vec4 variant (one row per invocation): those whose operands are all [rows, C]. */
const VEC4_KINDS = new Set<SoftmaxKind>(['softmax', 'logSoftmax', 'softmaxBackward', 'logSoftmaxBackward']);

/** The body of the vec4 variant (one row per invocation; see softmaxSource). */
function softmaxVec4Body(kind: SoftmaxKind, ot: DType): string {
  const a4 = 'vec4<f32>(a[ra4 + j])';
  const b4 = 'vec4<f32>(b[rb4 + j])';
  // The online update taken four values at a time: the running max moves to the max of the old one
  // and the vec4's, the sum is rescaled once and the vec4's four exps added. Per vec4 that is five
  // exps, not the one-value update's up to eight (on a SIMD CPU adapter both of its branches run),
  // and no per-value branch. While the max is still -inf the update is skipped (exp(-inf - -inf)
  // would be NaN); a NaN sets the sum to NaN explicitly; lseSpecials does the rest.
  const lse = `var m = -f_inf();
  var s_t = 0.0;
  for (var j = 0u; j < C4; j++) {
    let v4 = ${a4};
    let m_new = max(m, max(max(v4.x, v4.y), max(v4.z, v4.w)));
    if (m_new > -f_inf()) {
      s_t = s_t * exp(m - m_new) + dot(exp(v4 - vec4<f32>(m_new)), vec4<f32>(1.0));
      m = m_new;
    }
    s_t = select(s_t, f_nan(), any((bitcast<vec4<u32>>(v4) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u)));
  }
  ${lseSpecials('s_t')}`;
  switch (kind) {
    case 'softmax':
      return `${lse}
  let inv = 1.0 / s;
  for (var j = 0u; j < C4; j++) { o[ro4 + j] = vec4<${ot}>(exp(${a4} - vec4<f32>(m)) * inv); }`;
    case 'logSoftmax':
      return `${lse}
  let lse = m + log(s);
  for (var j = 0u; j < C4; j++) { o[ro4 + j] = vec4<${ot}>(${a4} - vec4<f32>(lse)); }`;
    case 'softmaxBackward':
      return `var d_t = 0.0;
  for (var j = 0u; j < C4; j++) { d_t += dot(${a4}, ${b4}); }
  for (var j = 0u; j < C4; j++) { o[ro4 + j] = vec4<${ot}>(${a4} * (${b4} - vec4<f32>(d_t))); }`;
    case 'logSoftmaxBackward':
      return `var d_t = vec4<f32>(0.0);
  for (var j = 0u; j < C4; j++) { d_t += ${b4}; }
  let total = d_t.x + d_t.y + d_t.z + d_t.w;
  for (var j = 0u; j < C4; j++) { o[ro4 + j] = vec4<${ot}>(${b4} - exp(${a4}) * total); }`;
    default:
      throw new Error(`softmax: no vec4 variant of ${kind}`);
  }
}

export function softmaxSource(kind: SoftmaxKind, plan: PlanArg, sg: SubgroupFlavour, inT: DType[], outT: DType[]): string {
  const v4 = asPlan(plan).vec4 === true;
  const f = rowFrame(asPlan(plan), v4 ? false : sg);
  const names = ['a', 'b'];
  const outNames = ['o', 'o2'];
  const elem = (t: DType) => (v4 ? `vec4<${t}>` : t);
  const decl = [
    ...inT.map((t, k) => `@group(0) @binding(${k}) var<storage, read> ${names[k]}: array<${elem(t)}>;`),
    ...outT.map((t, k) => `@group(0) @binding(${inT.length + k}) var<storage, read_write> ${outNames[k]}: array<${elem(t)}>;`),
    SOFTMAX_UNIFORMS.wgsl(inT.length + outT.length),
  ].join('\n');
  const args = f.args;
  const ot = outT[0];
  // One row per invocation with vec4 loads and stores: rows of C = 4·C4, offsets multiples of 4.
  const rowStart = v4
    ? `let C4 = params.C / 4u;
  let ra4 = params.a_offset / 4u + row * C4;
  let rb4 = params.b_offset / 4u + row * C4;
  let ro4 = params.o_offset / 4u + row * C4;`
    : `${f.setup}
  let C = params.C;
  let ra = params.a_offset + row * C;
  let rb = params.b_offset + row * C;
  let ro = params.o_offset + row * C;`;
  let body = '';
  if (v4) body = softmaxVec4Body(kind, ot);
  else
    switch (kind) {
      case 'softmax':
        body = `${onlineLogSumExp(args)}
  let inv = 1.0 / s;
  for (var j = lid; j < C; j += WG) { o[ro + j] = ${ot}(exp(f32(a[ra + j]) - m) * inv); }`;
        break;
      case 'logSoftmax':
        body = `${onlineLogSumExp(args)}
  let lse = m + log(s);
  for (var j = lid; j < C; j += WG) { o[ro + j] = ${ot}(f32(a[ra + j]) - lse); }`;
        break;
      case 'softmaxBackward':
        body = `var d_t = 0.0;
  for (var j = lid; j < C; j += WG) { d_t += f32(a[ra + j]) * f32(b[rb + j]); }
  let dot = wg_sum(d_t, ${args});
  for (var j = lid; j < C; j += WG) { let y = f32(a[ra + j]); o[ro + j] = ${ot}(y * (f32(b[rb + j]) - dot)); }`;
        break;
      case 'logSoftmaxBackward':
        body = `var d_t = 0.0;
  for (var j = lid; j < C; j += WG) { d_t += f32(b[rb + j]); }
  let total = wg_sum(d_t, ${args});
  for (var j = lid; j < C; j += WG) { o[ro + j] = ${ot}(f32(b[rb + j]) - exp(f32(a[ra + j])) * total); }`;
        break;
      case 'crossEntropy': {
        const logp =
          outT.length > 1
            ? `for (var j = lid; j < C; j += WG) { o2[params.o2_offset + row * C + j] = ${outT[1]}(f32(a[ra + j]) - lse); }`
            : '';
        body = `${onlineLogSumExp(args)}
  let lse = m + log(s);
  let label = b[params.b_offset + row];
  if (lid == 0u) {
    var loss = f_nan();
    if (label >= 0 && u32(label) < C) { loss = lse - f32(a[ra + u32(label)]); }
    o[params.o_offset + row] = ${ot}(loss);
  }
  ${logp}`;
        break;
      }
      case 'crossEntropyBackward':
        body = `${onlineLogSumExp(args)}
  let inv = 1.0 / s;
  let scale = params.scale;
  let label = b[params.b_offset + row];
  let valid = label >= 0 && u32(label) < C;
  for (var j = lid; j < C; j += WG) {
    let p = exp(f32(a[ra + j]) - m) * inv - select(0.0, 1.0, valid && u32(label) == j);
    o[ro + j] = ${ot}(select(f_nan(), p * scale, valid));
  }`;
        break;
    }
  return `${rowEnables([...inT, ...outT], v4 ? false : sg)}${decl}
${f.library}
@compute @workgroup_size(${f.workgroupSize})
fn main(${f.entryArgs}) {
  let row = ${f.rowIndex};
  if (row >= params.rows) { return; }
  ${rowStart}
  ${body}
}`;
}
