/**
 * The standard FID Inception network (the TensorFlow 2015-12-05 graph ported to PyTorch by
 * pytorch-fid: torchvision's InceptionV3 module names, 1008-class head) as a safetensors
 * state dict, and a loader that checks a user's file against that layout before any of it is
 * used: a missing, unexpected or mis-shaped tensor is named, never silently skipped.
 *
 * Every convolution is a BasicConv2d: `<name>.conv.weight` [out, in, kh, kw] (no bias) and a
 * batch norm (eps 0.001) `<name>.bn.{weight,bias,running_mean,running_var}` [out].
 */
import { openSafetensors } from '../io/index.js';
import type { NamedTensor } from './inception-weights.js';

export interface ExpectedTensor {
  name: string;
  shape: number[];
}

type Conv = [name: string, cin: number, cout: number, kh: number, kw: number];

function blockA(p: string, cin: number, pool: number): Conv[] {
  return [
    [`${p}.branch1x1`, cin, 64, 1, 1],
    [`${p}.branch5x5_1`, cin, 48, 1, 1],
    [`${p}.branch5x5_2`, 48, 64, 5, 5],
    [`${p}.branch3x3dbl_1`, cin, 64, 1, 1],
    [`${p}.branch3x3dbl_2`, 64, 96, 3, 3],
    [`${p}.branch3x3dbl_3`, 96, 96, 3, 3],
    [`${p}.branch_pool`, cin, pool, 1, 1],
  ];
}

function blockB(p: string, cin: number): Conv[] {
  return [
    [`${p}.branch3x3`, cin, 384, 3, 3],
    [`${p}.branch3x3dbl_1`, cin, 64, 1, 1],
    [`${p}.branch3x3dbl_2`, 64, 96, 3, 3],
    [`${p}.branch3x3dbl_3`, 96, 96, 3, 3],
  ];
}

function blockC(p: string, c7: number): Conv[] {
  return [
    [`${p}.branch1x1`, 768, 192, 1, 1],
    [`${p}.branch7x7_1`, 768, c7, 1, 1],
    [`${p}.branch7x7_2`, c7, c7, 1, 7],
    [`${p}.branch7x7_3`, c7, 192, 7, 1],
    [`${p}.branch7x7dbl_1`, 768, c7, 1, 1],
    [`${p}.branch7x7dbl_2`, c7, c7, 7, 1],
    [`${p}.branch7x7dbl_3`, c7, c7, 1, 7],
    [`${p}.branch7x7dbl_4`, c7, c7, 7, 1],
    [`${p}.branch7x7dbl_5`, c7, 192, 1, 7],
    [`${p}.branch_pool`, 768, 192, 1, 1],
  ];
}

function blockD(p: string): Conv[] {
  return [
    [`${p}.branch3x3_1`, 768, 192, 1, 1],
    [`${p}.branch3x3_2`, 192, 320, 3, 3],
    [`${p}.branch7x7x3_1`, 768, 192, 1, 1],
    [`${p}.branch7x7x3_2`, 192, 192, 1, 7],
    [`${p}.branch7x7x3_3`, 192, 192, 7, 1],
    [`${p}.branch7x7x3_4`, 192, 192, 3, 3],
  ];
}

function blockE(p: string, cin: number): Conv[] {
  return [
    [`${p}.branch1x1`, cin, 320, 1, 1],
    [`${p}.branch3x3_1`, cin, 384, 1, 1],
    [`${p}.branch3x3_2a`, 384, 384, 1, 3],
    [`${p}.branch3x3_2b`, 384, 384, 3, 1],
    [`${p}.branch3x3dbl_1`, cin, 448, 1, 1],
    [`${p}.branch3x3dbl_2`, 448, 384, 3, 3],
    [`${p}.branch3x3dbl_3a`, 384, 384, 1, 3],
    [`${p}.branch3x3dbl_3b`, 384, 384, 3, 1],
    [`${p}.branch_pool`, cin, 192, 1, 1],
  ];
}

const CONVS: Conv[] = [
  ['Conv2d_1a_3x3', 3, 32, 3, 3],
  ['Conv2d_2a_3x3', 32, 32, 3, 3],
  ['Conv2d_2b_3x3', 32, 64, 3, 3],
  ['Conv2d_3b_1x1', 64, 80, 1, 1],
  ['Conv2d_4a_3x3', 80, 192, 3, 3],
  ...blockA('Mixed_5b', 192, 32),
  ...blockA('Mixed_5c', 256, 64),
  ...blockA('Mixed_5d', 288, 64),
  ...blockB('Mixed_6a', 288),
  ...blockC('Mixed_6b', 128),
  ...blockC('Mixed_6c', 160),
  ...blockC('Mixed_6d', 160),
  ...blockC('Mixed_6e', 192),
  ...blockD('Mixed_7a'),
  ...blockE('Mixed_7b', 1280),
  ...blockE('Mixed_7c', 2048),
];

/** Tensors the 2048-d pool features need (94 convolutions, each with its batch norm). */
export const FID_INCEPTION_REQUIRED: readonly ExpectedTensor[] = CONVS.flatMap(([name, cin, cout, kh, kw]) => [
  { name: `${name}.conv.weight`, shape: [cout, cin, kh, kw] },
  ...['weight', 'bias', 'running_mean', 'running_var'].map((p) => ({ name: `${name}.bn.${p}`, shape: [cout] })),
]);

/** The 1008-way logits head: checked when present, not needed for features. */
export const FID_INCEPTION_OPTIONAL: readonly ExpectedTensor[] = [
  { name: 'fc.weight', shape: [1008, 2048] },
  { name: 'fc.bias', shape: [1008] },
];

/** PyTorch bookkeeping that a state dict may carry and features never use. */
const IGNORED = /\.num_batches_tracked$/;

export class FidInceptionLayoutError extends Error {
  constructor(file: string, problems: string[]) {
    const shown = problems.slice(0, 12);
    const more = problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : '';
    super(`${file}: not the FID InceptionV3 layout (pytorch-fid / torchvision names):\n  ${shown.join('\n  ')}${more}`);
    this.name = 'FidInceptionLayoutError';
  }
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Reads a safetensors file of the FID Inception weights; throws naming every layout problem. */
export function loadFidInceptionSafetensors(file: string): Map<string, NamedTensor> {
  const st = openSafetensors(file);
  try {
    const problems: string[] = [];
    const expected = new Map<string, number[]>();
    for (const t of [...FID_INCEPTION_REQUIRED, ...FID_INCEPTION_OPTIONAL]) expected.set(t.name, t.shape);
    for (const t of FID_INCEPTION_REQUIRED) if (!st.has(t.name)) problems.push(`missing tensor ${t.name} (shape [${t.shape.join(', ')}])`);
    for (const name of st.keys()) {
      if (IGNORED.test(name)) continue;
      const want = expected.get(name);
      if (!want) {
        problems.push(`unexpected tensor ${name}`);
        continue;
      }
      const info = st.info(name);
      if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i])) {
        problems.push(`tensor ${name} has shape [${info.shape.join(', ')}], expected [${want.join(', ')}]`);
      }
      if (!FLOAT_DTYPES.has(info.dtype)) problems.push(`tensor ${name} has dtype ${info.dtype}, expected a float type`);
    }
    if (problems.length) throw new FidInceptionLayoutError(file, problems);
    const out = new Map<string, NamedTensor>();
    for (const name of st.keys()) {
      if (IGNORED.test(name)) continue;
      const t = st.read(name);
      const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i]))
          throw new FidInceptionLayoutError(file, [`tensor ${name} has a non-finite value (${data[i]}) at index ${i}`]);
      }
      out.set(name, { shape: t.shape, data });
    }
    return out;
  } finally {
    st.close();
  }
}
