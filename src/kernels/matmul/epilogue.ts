/**
 * What the three matmul generators share: the kernel spec, the named parameters, bindings, the
 * fused epilogue (alpha, bias, activation, residual, accumulate) and the guarded stores.
 */
import type { DType } from '../../core/dtype.js';
import { enables } from '../common.js';
import { uniforms } from '../uniforms.js';
import { MATH_WGSL } from '../wgsl-math.js';
import type { MatmulConfig } from './configs.js';

export type MatmulActivation = 'none' | 'gelu' | 'gelu_tanh' | 'silu' | 'relu';

/** How an operand is read: vec4 along K, vec4 along its other dim (M of A, N of B), or scalars. */
export type LoadMode = 'k4' | 'o4' | 'k1' | 'o1' | 's';

/** Everything the generated WGSL depends on (all of it is in the pipeline key). */
export interface KernelSpec {
  cfg: MatmulConfig;
  aMode: LoadMode;
  bMode: LoadMode;
  aT: DType;
  bT: DType;
  oT: DType;
  biasT?: DType;
  resT?: DType;
  act: MatmulActivation;
  accumulate: boolean;
  batchRank: number;
}

/** Batch dims the kernels decode (more are peeled off into separate dispatches). */
export const MAX_BATCH_RANK = 4;

/**
 * Parameters: sizes, the element strides of the M/N/K dims (`a_sk4`, `b_sk4`: the K stride in
 * vec4s, for vec4 loads along the other dim), offsets, alpha, and per batch dim its size and the
 * batch stride of every operand. `batch_start` is the first flat batch index of this dispatch.
 */
function layoutFor(batchRank: number) {
  return uniforms({
    M: 'u32',
    N: 'u32',
    K: 'u32',
    batch_start: 'u32',
    a_sm: 'u32',
    a_sk: 'u32',
    b_sk: 'u32',
    b_sn: 'u32',
    o_sm: 'u32',
    o_sn: 'u32',
    bias_sn: 'u32',
    res_sm: 'u32',
    res_sn: 'u32',
    alpha: 'f32',
    a_offset: 'u32',
    b_offset: 'u32',
    o_offset: 'u32',
    bias_offset: 'u32',
    res_offset: 'u32',
    a_sk4: 'u32',
    b_sk4: 'u32',
    batch_shape: ['u32', batchRank],
    a_batch_stride: ['u32', batchRank],
    b_batch_stride: ['u32', batchRank],
    o_batch_stride: ['u32', batchRank],
    res_batch_stride: ['u32', batchRank],
  } as const);
}
export type MatmulUniforms = ReturnType<typeof layoutFor>;

const layouts: MatmulUniforms[] = [];
export function matmulUniforms(batchRank: number): MatmulUniforms {
  return (layouts[batchRank] ??= layoutFor(batchRank));
}

/** Activations, by name of the shared math library's functions. */
const ACT_FN: Record<MatmulActivation, string> = {
  none: 'x',
  relu: 'relu_f32(x)',
  silu: 'silu_f32(x)',
  gelu_tanh: 'gelu_tanh(x)',
  gelu: 'gelu_erf(x)',
};

export const vecT = (t: DType, v: boolean) => (v ? `vec4<${t}>` : t);
export const comp = (j: number) => 'xyzw'[j];

/** Bindings, params, activation and the epilogue shared by all kernels. */
export function preamble(s: KernelSpec): string {
  const vecA = s.aMode === 'k4' || s.aMode === 'o4';
  const vecB = s.bMode === 'k4' || s.bMode === 'o4';
  const dtypes = [s.aT, s.bT, s.oT, ...(s.biasT ? [s.biasT] : []), ...(s.resT ? [s.resT] : [])];
  let bind = 0;
  const decl = (name: string, type: string, rw = false) =>
    `@group(0) @binding(${bind++}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<${type}>;`;
  const lines = [decl('A', vecT(s.aT, vecA)), decl('B', vecT(s.bT, vecB))];
  if (s.biasT) lines.push(decl('BIAS', s.biasT));
  if (s.resT) lines.push(decl('RES', s.resT));
  lines.push(decl('O', s.oT, true));
  const epilogue = [
    'var v = acc * params.alpha;',
    s.biasT ? 'v += f32(BIAS[params.bias_offset + col * params.bias_sn]);' : '',
    'v = mm_act(v);',
    s.resT ? 'v += f32(RES[ridx]);' : '',
    s.accumulate ? 'v += f32(O[oidx]);' : '',
    `O[oidx] = ${s.oT}(v);`,
  ].filter((l) => l !== '');
  return `${enables(dtypes)}${lines.join('\n')}
${matmulUniforms(s.batchRank).wgsl(bind)}
${s.act === 'none' ? '' : MATH_WGSL}
fn mm_act(x: f32) -> f32 { return ${ACT_FN[s.act]}; }
fn mm_store(acc: f32, col: u32, ridx: u32, oidx: u32) {
  ${epilogue.join('\n  ')}
}`;
}

/** Element offsets of this workgroup's batch entry in A, B, out and the residual. */
export function batchDecode(rank: number, z: string): string {
  const lines = ['var aB = params.a_offset; var bB = params.b_offset; var oB = params.o_offset; var rB = params.res_offset;'];
  if (rank > 0) lines.push(`var rem = ${z} + params.batch_start;`);
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`{ let sz = params.batch_shape_${d}; let c = rem % sz; rem = rem / sz;
    aB += c * params.a_batch_stride_${d}; bB += c * params.b_batch_stride_${d}; oB += c * params.o_batch_stride_${d}; rB += c * params.res_batch_stride_${d}; }`);
  }
  return lines.join('\n  ');
}

/**
 * Guarded epilogue stores of the RM×RN accumulators (acc{r}_{g}, vec4 over columns 4g..4g+3).
 * Written as loops over a private copy, not unrolled: the epilogue (GELU especially) is large,
 * and unrolling it per output multiplied shader compile time on lavapipe for no runtime gain.
 */
export function stores(RM: number, RN: number, row: (r: string) => string, col: (j: string) => string): string {
  const G = RN / 4;
  const accs: string[] = [];
  for (let r = 0; r < RM; r++) for (let g = 0; g < G; g++) accs.push(`acc${r}_${g}`);
  return `var accs = array<vec4<f32>, ${RM * G}>(${accs.join(', ')});
  ${storeLoop(RM, RN, row, col, (r, j) => `accs[${r} * ${G}u + ${j} / 4u][${j} % 4u]`)}`;
}

export function storeLoop(
  RM: number,
  RN: number,
  row: (r: string) => string,
  col: (j: string) => string,
  value: (r: string, j: string) => string,
  first = '0u',
  step = '1u',
): string {
  return `for (var i = ${first}; i < ${RM * RN}u; i += ${step}) {
    let r = i / ${RN}u; let j = i % ${RN}u;
    let row = ${row('r')}; let col = ${col('j')};
    if (row < M && col < N) {
      mm_store(${value('r', 'j')}, col, rB + row * params.res_sm + col * params.res_sn, oB + row * params.o_sm + col * params.o_sn);
    }
  }`;
}
