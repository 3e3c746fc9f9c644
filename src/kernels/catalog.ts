/**
 * Representative specialisations of the core kernels, rendered to WGSL by the same generators the
 * kernels dispatch. The files in wgsl/ are these, committed so that a reader can open a kernel
 * like any shader and a kernel change shows up in a diff as WGSL; `npm run wgsl:snapshots`
 * rewrites them and test/kernels/wgsl-snapshots.test.ts fails when they are stale.
 *
 * Generation is pure (no device): each entry names its configuration explicitly instead of
 * asking the adapter's tuning table, so the files are the same on every machine.
 */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import type { DType } from '../core/dtype.js';
import { bind, vec4Able, type AttentionConfig, type BoundOperand } from './attention/codegen.js';
import { deltaSource, dkdvSource, dqSource, forwardSource } from './attention/sources.js';
import { materializedGradSource, materializedSoftmaxSource } from './attention/materialized.js';
import { mapSource } from './elementwise.js';
import type { MatmulConfig } from './matmul/configs.js';
import type { KernelSpec } from './matmul/epilogue.js';
import { matmulSource } from './matmul/source.js';
import { columnSumsSource, layerNormSource, normGradSource, operands, rmsNormSource } from './norm.js';
import { adamwSource } from './optim.js';
import { softmaxSource } from './softmax.js';
import { tuningFor } from './tuning.js';
import type { View } from './view.js';
import { MATH_WGSL } from './wgsl-math.js';

export interface KernelSnapshot {
  /** File name under wgsl/. */
  file: string;
  /** Which generator, with which configuration (goes into the file's header comment). */
  title: string;
  generator: string;
  config: string;
  source: string;
}

/** Generation never touches the buffer; views only need distinct buffer identities. */
function placeholder(label: string): PooledBuffer {
  return { buffer: { label } as GPUBuffer, size: 0, usage: 0 };
}

function contiguous(label: string, shape: number[], dtype: DType = 'f32'): View {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return { buffer: placeholder(label), dtype, shape, strides, offset: 0 };
}

const LAVAPIPE = tuningFor({ description: 'llvmpipe' });
const NVIDIA = tuningFor({ vendor: 'nvidia' });

function matmul(file: string, title: string, cfg: MatmulConfig, spec: Omit<KernelSpec, 'cfg'>): KernelSnapshot {
  const s = { ...spec, cfg };
  const source = matmulSource(s);
  const config = `${JSON.stringify(cfg)}; A ${spec.aMode} ${spec.aT}, B ${spec.bMode} ${spec.bT}, out ${spec.oT}, bias ${spec.biasT ?? 'none'}, residual ${spec.resT ?? 'none'}, activation ${spec.act}, batch rank ${spec.batchRank}`;
  return { file, title, generator: `src/kernels/matmul/${cfg.kind}.ts`, config, source };
}

/** q, k, v, o [B=2, H=4, N=256, D=64] contiguous, lse/delta [2, 4, 256]. */
function attentionOperands() {
  const row = (name: string) => contiguous(name, [2, 4, 256, 64]);
  const R = (name: string, view: View, v4 = vec4Able(view)): BoundOperand => ({ name, view, access: 'read', v4, buf: '', binding: 0 });
  const W = (name: string, view: View, v4 = vec4Able(view)): BoundOperand => ({ name, view, access: 'write', v4, buf: '', binding: 0 });
  const [q, k, v, o, dO, dq, dk, dv] = ['q', 'k', 'v', 'o', 'dO', 'dq', 'dk', 'dv'].map(row);
  const lse = contiguous('lse', [2, 4, 256]);
  const delta = contiguous('delta', [2, 4, 256]);
  return {
    forward: bind('snapshot', [R('q', q), R('k', k), R('v', v), W('o', o), W('lse', lse, false)]),
    delta: bind('snapshot', [R('o', o, false), R('dO', dO, false), W('delta', delta, false)]),
    dq: bind('snapshot', [R('q', q), R('k', k), R('v', v), R('dO', dO), R('lse', lse, false), R('delta', delta, false), W('dq', dq)]),
    dkdv: bind('snapshot', [
      R('q', q),
      R('k', k),
      R('v', v),
      R('dO', dO),
      R('lse', lse, false),
      R('delta', delta, false),
      W('dk', dk),
      W('dv', dv),
    ]),
  };
}

function attention(file: string, title: string, kernel: 'forward' | 'dq' | 'dkdv', cfg: AttentionConfig): KernelSnapshot {
  const ops = attentionOperands()[kernel];
  const gen = kernel === 'forward' ? forwardSource : kernel === 'dq' ? dqSource : dkdvSource;
  return {
    file,
    title,
    generator: 'src/kernels/attention/sources.ts',
    config: `head dim 64, ${JSON.stringify(cfg)}, f32 operands, contiguous [B, H, N, D]`,
    source: gen(64, cfg, ops),
  };
}

/** Every snapshot, in the order of wgsl/README.md. */
export function kernelSnapshots(): KernelSnapshot[] {
  const rowsD = [1024, 384];
  const x = contiguous('x', rowsD);
  const w = contiguous('w', [384]);
  const b = contiguous('b', [384]);
  const y = contiguous('y', rowsD);
  const dy = contiguous('dy', rowsD);
  const dx = contiguous('dx', rowsD);
  const stat = (n: string) => contiguous(n, [1024]);
  const ROW_WG = 64;
  const rowCfg = `rows of 384 (workgroup ${ROW_WG}), tree reductions (no subgroups), f32`;
  const ROW_THREAD = { perThread: true, wg: 64 };
  const ROW_THREAD_V4 = { ...ROW_THREAD, vec4: true };
  const rowThreadCfg = `rows of 384, one row per invocation, ${ROW_THREAD.wg} invocations per workgroup, f32`;
  const attnAtt = attentionOperands();
  const fp = { aT: 'f32', bT: 'f32', oT: 'f32', accumulate: false } as const;
  return [
    matmul('matmul-broadcast.wgsl', "matmul, subgroup broadcast (lavapipe's kernel): x·W + bias, exact GELU", LAVAPIPE.matmul.broadcast!, {
      ...fp,
      aMode: 'k1',
      bMode: 'o4',
      biasT: 'f32',
      act: 'gelu',
      batchRank: 0,
    }),
    matmul(
      'matmul-register.wgsl',
      'matmul, register-blocked (the CPU fallback without 8-lane subgroups): x·W + bias, exact GELU',
      LAVAPIPE.matmul.general,
      { ...fp, aMode: 'k1', bMode: 'o1', biasT: 'f32', act: 'gelu', batchRank: 0 },
    ),
    matmul(
      'matmul-register-vec4.wgsl',
      'matmul, register-blocked with vec4 loads: batched A·B',
      { kind: 'register', wgX: 8, wgY: 8, rm: 4, rn: 4 },
      { ...fp, aMode: 'k4', bMode: 'o4', act: 'none', batchRank: 1 },
    ),
    matmul('matmul-splitk.wgsl', 'matmul, split-K over subgroup lanes (lavapipe, K-contiguous x·Wᵀ) + bias', LAVAPIPE.matmul.kContiguous!, {
      ...fp,
      aMode: 'k1',
      bMode: 'k1',
      biasT: 'f32',
      act: 'none',
      batchRank: 0,
    }),
    matmul('matmul-shared.wgsl', 'matmul, workgroup-memory tiles (the NVIDIA entry) + residual', NVIDIA.matmul.general, {
      ...fp,
      aMode: 'k4',
      bMode: 'o4',
      resT: 'f32',
      act: 'none',
      batchRank: 0,
    }),
    attention(
      'attention-forward.wgsl',
      'attention forward (online softmax; lavapipe configuration: loops over D)',
      'forward',
      LAVAPIPE.attention.forward,
    ),
    attention(
      'attention-forward-staged.wgsl',
      'attention forward (GPU configuration: staged tiles, unrolled over D)',
      'forward',
      NVIDIA.attention.forward,
    ),
    {
      file: 'attention-backward-delta.wgsl',
      title: 'attention backward, delta = rowsum(dO ∘ O)',
      generator: 'src/kernels/attention/sources.ts',
      config: 'head dim 64, f32, contiguous',
      source: deltaSource(64, attnAtt.delta),
    },
    attention('attention-backward-dq.wgsl', 'attention backward, dQ (lavapipe configuration)', 'dq', LAVAPIPE.attention.backward),
    attention(
      'attention-backward-dkdv.wgsl',
      'attention backward, dK and dV (lavapipe configuration)',
      'dkdv',
      LAVAPIPE.attention.backward,
    ),
    {
      file: 'attention-materialized-softmax.wgsl',
      title: 'attention through the score matrix, forward: P = softmax(S) in place and lse (one row per invocation)',
      generator: 'src/kernels/attention/materialized.ts',
      config: 'rows of a multiple of 4 keys (vec4 loads); sizes are parameters',
      source: materializedSoftmaxSource(),
    },
    {
      file: 'attention-materialized-grad.wgsl',
      title: 'attention through the score matrix, backward: P = exp(S − lse), dS = scale·P∘(dP − Σ P∘dP) in place',
      generator: 'src/kernels/attention/materialized.ts',
      config: 'rows of a multiple of 4 keys (vec4 loads); sizes are parameters',
      source: materializedGradSource(),
    },
    {
      file: 'layernorm-forward.wgsl',
      title: 'LayerNorm forward with weight and bias',
      generator: 'src/kernels/norm.ts',
      config: rowCfg,
      source: layerNormSource(operands({ x }, { w, b }, { y, mean: stat('mean'), rstd: stat('rstd') }), ROW_WG, false),
    },
    {
      file: 'layernorm-backward.wgsl',
      title: 'LayerNorm backward, input gradient',
      generator: 'src/kernels/norm.ts',
      config: rowCfg,
      source: normGradSource(true, operands({ x, dy, rstd: stat('rstd') }, { w, mean: stat('mean') }, { dx }), ROW_WG, false),
    },
    {
      file: 'layernorm-backward-params.wgsl',
      title: 'LayerNorm backward, dweight and dbias column partial sums',
      generator: 'src/kernels/norm.ts',
      config: 'rows of 384, f32',
      source: columnSumsSource(true, operands({ x, dy, rstd: stat('rstd') }, { mean: stat('mean') }, { dw: w, db: b })),
    },
    {
      file: 'rmsnorm-forward.wgsl',
      title: 'RMSNorm forward with weight',
      generator: 'src/kernels/norm.ts',
      config: rowCfg,
      source: rmsNormSource(operands({ x }, { w }, { y, rstd: stat('rstd') }), ROW_WG, false),
    },
    {
      file: 'rmsnorm-backward.wgsl',
      title: 'RMSNorm backward, input gradient',
      generator: 'src/kernels/norm.ts',
      config: rowCfg,
      source: normGradSource(false, operands({ x, dy, rstd: stat('rstd') }, { w }, { dx }), ROW_WG, false),
    },
    {
      file: 'softmax.wgsl',
      title: 'softmax over the last dim',
      generator: 'src/kernels/softmax.ts',
      config: rowCfg,
      source: softmaxSource('softmax', ROW_WG, false, ['f32'], ['f32']),
    },
    {
      file: 'softmax-backward.wgsl',
      title: 'softmax backward',
      generator: 'src/kernels/softmax.ts',
      config: rowCfg,
      source: softmaxSource('softmaxBackward', ROW_WG, false, ['f32', 'f32'], ['f32']),
    },
    {
      file: 'layernorm-forward-per-thread.wgsl',
      title: 'LayerNorm forward with weight and bias, one row per invocation, vec4 access, weights shared by subgroup broadcast (lavapipe)',
      generator: 'src/kernels/norm.ts',
      config: `${rowThreadCfg}, row length and offsets multiples of 4, subgroups of 8`,
      source: layerNormSource(
        operands({ x }, { w, b }, { y, mean: stat('mean'), rstd: stat('rstd') }),
        { ...ROW_THREAD_V4, lanes: 8 },
        false,
      ),
    },
    {
      file: 'rmsnorm-forward-per-thread.wgsl',
      title:
        'RMSNorm forward with weight, one row per invocation, vec4 access, weight shared by subgroup broadcast, launch and row tiled exactly (no guards; lavapipe)',
      generator: 'src/kernels/norm.ts',
      config: `${rowThreadCfg}, rows a multiple of 64, row length a multiple of 32, offsets multiples of 4, subgroups of 8`,
      source: rmsNormSource(
        operands({ x }, { w }, { y, rstd: stat('rstd') }),
        { ...ROW_THREAD_V4, lanes: 8, rowsExact: true, stepsExact: true },
        false,
      ),
    },
    {
      file: 'layernorm-forward-per-thread-scalar.wgsl',
      title: 'LayerNorm forward with weight and bias, one row per invocation, scalar access (rows not vec4-aligned)',
      generator: 'src/kernels/norm.ts',
      config: rowThreadCfg,
      source: layerNormSource(operands({ x }, { w, b }, { y, mean: stat('mean'), rstd: stat('rstd') }), ROW_THREAD, false),
    },
    {
      file: 'rmsnorm-backward-per-thread.wgsl',
      title: 'RMSNorm backward, input gradient, one row per invocation, vec4 access',
      generator: 'src/kernels/norm.ts',
      config: `${rowThreadCfg}, row length and offsets multiples of 4`,
      source: normGradSource(false, operands({ x, dy, rstd: stat('rstd') }, { w }, { dx }), ROW_THREAD_V4, false),
    },
    {
      file: 'softmax-per-thread.wgsl',
      title: 'softmax over the last dim, one row per invocation, vec4 access (short rows on CPU adapters)',
      generator: 'src/kernels/softmax.ts',
      config: `${rowThreadCfg}, row length and offsets multiples of 4`,
      source: softmaxSource('softmax', ROW_THREAD_V4, false, ['f32'], ['f32']),
    },
    {
      file: 'elementwise-add.wgsl',
      title: 'elementwise map: a + b, contiguous (merged to rank 1), one element per step (length or offsets not multiples of 4)',
      generator: 'src/kernels/elementwise.ts',
      config: 'expr in0 + in1, f32, rank 1',
      source: mapSource({ name: 'add', expr: 'in0 + in1', compute: 'f32' }, ['f32', 'f32', 'f32'], 1, 2),
    },
    {
      file: 'elementwise-axpy-vec4.wgsl',
      title: 'elementwise map: a + s0 * b with b one broadcast element, contiguous, vec4 access',
      generator: 'src/kernels/elementwise.ts',
      config: 'expr in0 + s0 * in1, f32, rank 1, length and offsets multiples of 4, in1 of stride 0',
      source: mapSource({ name: 'axpy', expr: 'in0 + s0 * in1', compute: 'f32' }, ['f32', 'f32', 'f32'], 1, 2, [true, false]),
    },
    {
      file: 'elementwise-bias-add-vec4.wgsl',
      title: 'elementwise map: x + bias over rows (rank 2, the bias broadcast along rows), vec4 along the row',
      generator: 'src/kernels/elementwise.ts',
      config: 'expr in0 + in1, f32, rank 2, row length, offsets and row strides multiples of 4',
      source: mapSource({ name: 'add', expr: 'in0 + in1', compute: 'f32' }, ['f32', 'f32', 'f32'], 2, 2, [true, true]),
    },
    {
      file: 'elementwise-gelu-strided.wgsl',
      title: 'elementwise map: exact GELU of a strided view (rank 3)',
      generator: 'src/kernels/elementwise.ts',
      config: 'expr gelu_erf(in0), f32, rank 3',
      source: mapSource({ name: 'gelu', expr: 'gelu_erf(in0)', compute: 'f32', helpers: MATH_WGSL }, ['f32', 'f32'], 3, 1),
    },
    {
      file: 'adamw.wgsl',
      title: 'AdamW, multi-tensor: 2 parameter groups per dispatch, GPU grad-scale (clipping) buffer',
      generator: 'src/kernels/optim.ts',
      config: '2 groups, scaled',
      source: adamwSource(2, true),
    },
  ];
}

/** The file's text: a header naming the kernel, its configuration and how to regenerate it. */
export function renderSnapshot(s: KernelSnapshot): string {
  return `// ${s.title}
// Generated by ${s.generator} for: ${s.config}
// Do not edit: \`npm run wgsl:snapshots\` regenerates every file in wgsl/ (src/kernels/catalog.ts).
${s.source.trimEnd()}
`;
}
