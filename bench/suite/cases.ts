/** The suite's cases (issue #10, item 1), grouped in suites selectable with --suite. */
import { ADAM, BLOCK_PARAMS, expectedAdamw, expectedAttention, expectedBlockLoss, expectedMatmul, expectedRows } from './reference.js';
import { type BenchCase, type Input, input, type Op } from './spec.js';

export const SUITES = ['copy', 'matmul', 'linear', 'attention', 'rows', 'adamw', 'block', 'ditdh'] as const;
export type SuiteName = (typeof SUITES)[number];

export interface CaseOptions {
  /** A software adapter (lavapipe, SwiftShader): square matmul stops at 1024, AdamW over 4 M instead of 100 M. */
  software: boolean;
}

function matmulCase(suite: string, name: string, op: Extract<Op, { kind: 'matmul' }>, quick: boolean): BenchCase {
  const { M, K, N } = op;
  return {
    name,
    suite,
    shape: `${M}×${K}×${N}${op.transA ? ' Aᵀ' : ''}${op.transB ? ' Bᵀ' : ''}`,
    op,
    unit: 'GFLOP/s',
    work: 2 * M * N * K,
    limit: 'fp32',
    quick,
    inputs: () => [input('A', op.transA ? [K, M] : [M, K], 1), input('B', op.transB ? [N, K] : [K, N], 2)],
    expected: (ins) => expectedMatmul(op, ins),
  };
}

/** DiT widths (hidden, MLP ratio 4) and the DDT head's 2048; linear layers at 256 tokens. */
const WIDTHS: [string, number][] = [
  ['DiT-S', 384],
  ['DiT-B', 768],
  ['DiT-XL', 1152],
  ['DDT head 2048', 2048],
];
const TOKENS = 256;

function linearCases(): BenchCase[] {
  const out: BenchCase[] = [];
  for (const [model, d] of WIDTHS) {
    const layers: [string, number, number][] = [
      ['qkv', d, 3 * d],
      ['proj', d, d],
      ['fc1', d, 4 * d],
      ['fc2', 4 * d, d],
    ];
    for (const [layer, inF, outF] of layers) {
      // --quick: DiT-S qkv's three products and DiT-XL fc1 forward.
      const q = (model === 'DiT-S' && layer === 'qkv') || (layer === 'fc1' && model === 'DiT-XL');
      // y = x·Wᵀ (W stored [out, in]); dX = dY·W; dW = dYᵀ·X.
      out.push(matmulCase('linear', `${model} ${layer} forward`, { kind: 'matmul', M: TOKENS, K: inF, N: outF, transB: true }, q));
      out.push(matmulCase('linear', `${model} ${layer} dX`, { kind: 'matmul', M: TOKENS, K: outF, N: inF }, q && model === 'DiT-S'));
      out.push(
        matmulCase('linear', `${model} ${layer} dW`, { kind: 'matmul', M: outF, K: TOKENS, N: inF, transA: true }, q && model === 'DiT-S'),
      );
    }
  }
  return out;
}

function attentionCases(): BenchCase[] {
  const shapes: [number, number, number, number, boolean][] = [
    [4, 6, 256, 64, true],
    [8, 16, 256, 72, true],
    [4, 16, 1024, 128, false],
  ];
  return shapes.flatMap(([B, H, N, D, quick]) =>
    [false, true].map((backward): BenchCase => {
      const op: Op = { kind: 'attention', B, H, N, D, backward };
      return {
        name: `attention ${backward ? 'forward+backward' : 'forward'}`,
        suite: 'attention',
        shape: `(${B}, ${H}, ${N}, ${D})`,
        op,
        unit: 'GFLOP/s',
        // flash-attention accounting: forward 4·B·H·N²·D, backward 10·B·H·N²·D.
        work: (backward ? 14 : 4) * B * H * N * N * D,
        limit: 'fp32',
        quick: quick && H === 6,
        inputs: () => ['q', 'k', 'v', ...(backward ? ['g'] : [])].map((n, i) => input(n, [B, H, N, D], 10 + i)),
        expected: (ins) => expectedAttention(op, ins),
      };
    }),
  );
}

function rowCases(): BenchCase[] {
  const shapes: [number, number, boolean][] = [
    [4096, 384, true],
    [4096, 256, true],
    [1024, 1152, false],
    [256, 2048, false],
  ];
  const out: BenchCase[] = [];
  for (const kind of ['layerNorm', 'rmsNorm', 'softmax'] as const) {
    for (const [T, W, quick] of shapes) {
      const op: Op = { kind, T, W };
      out.push({
        name: kind,
        suite: 'rows',
        shape: `[${T}, ${W}]`,
        op,
        unit: 'GB/s',
        work: 2 * 4 * T * W,
        limit: 'copy',
        quick: quick && (kind === 'softmax' ? W === 256 : W === 384),
        inputs: () => {
          const x = input('x', [T, W], 20);
          // Affine parameters near 1 and 0, so that a wrong broadcast shows in the check.
          const w: Input = { name: 'weight', shape: [W], data: Float32Array.from(input('w', [W], 21, 0.1).data, (v) => 1 + v) };
          const b = input('bias', [W], 22, 0.1);
          return kind === 'softmax' ? [x] : kind === 'rmsNorm' ? [x, w] : [x, w, b];
        },
        expected: (ins) => expectedRows(op, ins),
      });
    }
  }
  return out;
}

export function buildCases(opts: CaseOptions): BenchCase[] {
  const squares = opts.software ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096];
  const P = opts.software ? 4 << 20 : 100 << 20;
  const adamOp: Op = { kind: 'adamw', P };
  const block: Op = { kind: 'block-train', B: 1, N: 256, D: 384, H: 6 };
  const { D } = block;
  const blockShapes: Record<string, number[]> = {
    'ln1.w': [D],
    'ln1.b': [D],
    'qkv.w': [3 * D, D],
    'qkv.b': [3 * D],
    'proj.w': [D, D],
    'proj.b': [D],
    'ln2.w': [D],
    'ln2.b': [D],
    'fc1.w': [4 * D, D],
    'fc1.b': [4 * D],
    'fc2.w': [D, 4 * D],
    'fc2.b': [D],
  };
  return [
    {
      name: 'elementwise copy',
      suite: 'copy',
      shape: `[${opts.software ? 4 << 20 : 64 << 20}]`,
      op: { kind: 'copy', n: opts.software ? 4 << 20 : 64 << 20 },
      unit: 'GB/s',
      work: 2 * 4 * (opts.software ? 4 << 20 : 64 << 20),
      limit: null,
      quick: true,
      inputs: () => [input('x', [opts.software ? 4 << 20 : 64 << 20], 5)],
      expected: null,
    },
    ...squares.map((n) => matmulCase('matmul', 'square matmul', { kind: 'matmul', M: n, K: n, N: n }, n === 1024 || n === 4096)),
    ...linearCases(),
    ...attentionCases(),
    ...rowCases(),
    {
      name: 'AdamW step',
      suite: 'adamw',
      shape: `${P / (1 << 20)} M params`,
      op: adamOp,
      unit: 'GB/s',
      // Reads p, g, m, v; writes p, m, v.
      work: 7 * 4 * P,
      limit: 'copy',
      quick: true,
      inputs: () => [input('param', [P], 30), input('grad', [P], 31, 0.01)],
      expected: (ins) => expectedAdamw(adamOp, ins),
    },
    {
      name: 'pre-LN transformer block train step',
      suite: 'block',
      shape: `B${block.B} N${block.N} D${D} H${block.H}`,
      op: block,
      unit: 'ms',
      work: 0,
      limit: null,
      quick: true,
      inputs: () => [
        input('x', [block.B, block.N, D], 40),
        ...BLOCK_PARAMS.map((n, i): Input => {
          const shape = blockShapes[n];
          if (n.endsWith('.w') && shape.length === 1) return { name: n, shape, data: new Float32Array(D).fill(1) };
          return input(n, shape, 41 + i, n.endsWith('.b') ? 0.01 : 0.02);
        }),
      ],
      expected: (ins) => expectedBlockLoss(block, ins),
    },
    {
      name: 'DiT^DH train step',
      suite: 'ditdh',
      shape: 'body 96×2, head 128×1, [16, 64, 8, 8]',
      op: { kind: 'ditdh-train' },
      unit: 'ms',
      work: 0,
      limit: null,
      quick: true,
      inputs: () => [],
      expected: null,
    },
  ];
}

export { ADAM };
