/**
 * conv2d with PyTorch's semantics (NCHW input, OIHW weight [Co, C/groups, KH, KW], optional
 * bias [Co]): forward and both operand gradients by the implicit-GEMM kernels of
 * kernels/conv.ts, the bias gradient as a sum of dy over (N, OH, OW).
 */
import {
  conv2dInputGradInto,
  conv2dInto,
  conv2dWeightGradInto,
  conv2dWeightGradSplits,
  convOutSize,
  type ConvActivation,
  type ConvGeometry,
} from '../../kernels/conv.js';
import { fmt } from '../../core/shape.js';
import { asShape } from '../../tensor/creation.js';
import { scope } from '../../tensor/scope.js';
import { empty, type Tensor } from '../../tensor/tensor.js';
import { isGradEnabled, record } from '../tape.js';
import { unary } from './elementwise.js';
import { sum } from './reduce.js';
import { assertFloat, assertTensor } from './util.js';

export type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

export function pair(v: Pair | undefined, dflt: number, op: string, what: string, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if ((typeof v === 'object' && v.length !== 2) || p.some((e) => !Number.isInteger(e) || e < min)) {
    throw new RangeError(`${op}: ${what} must be an integer ≥ ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

const contiguous = (t: Tensor) => (t.isContiguous ? t : asShape(t, t.shape));

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  return convForward(x, weight, bias, opts, 'none');
}

/**
 * relu(conv2d(x, weight, bias)) with the relu fused into the convolution's store (one pass over
 * the output instead of two): what an inference network of conv → (folded BN) → relu units runs.
 * When a gradient is being recorded it is the unfused pair, so backward is conv2d's and relu's.
 */
export function conv2dRelu(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  if (isGradEnabled() && [x, weight, bias].some((t) => t?.requiresGrad))
    return scope(() => unary('relu', convForward(x, weight, bias, opts, 'none')));
  return convForward(x, weight, bias, opts, 'relu');
}

function convForward(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: Conv2dOptions, activation: ConvActivation): Tensor {
  assertTensor(x, 'conv2d', 'input');
  assertTensor(weight, 'conv2d', 'weight');
  assertFloat(x, 'conv2d');
  assertFloat(weight, 'conv2d');
  if (bias) {
    assertTensor(bias, 'conv2d', 'bias');
    assertFloat(bias, 'conv2d');
  }
  if (x.rank !== 4) throw new RangeError(`conv2d: input must be [N, C, H, W], got ${fmt(x.shape)}`);
  if (weight.rank !== 4) throw new RangeError(`conv2d: weight must be [Co, C/groups, KH, KW], got ${fmt(weight.shape)}`);
  const stride = pair(opts.stride, 1, 'conv2d', 'stride', 1);
  const padding = pair(opts.padding, 0, 'conv2d', 'padding', 0);
  const dilation = pair(opts.dilation, 1, 'conv2d', 'dilation', 1);
  const groups = opts.groups ?? 1;
  const [N, C, H, W] = x.shape;
  const [Co, Cig, KH, KW] = weight.shape;
  if (!Number.isInteger(groups) || groups < 1 || C % groups || Co % groups) {
    throw new RangeError(
      `conv2d: groups = ${groups} must be a positive integer dividing the input channels ${C} and output channels ${Co}`,
    );
  }
  if (Cig * groups !== C)
    throw new RangeError(
      `conv2d: weight ${fmt(weight.shape)} expects ${Cig * groups} input channels (groups = ${groups}), input ${fmt(x.shape)} has ${C}`,
    );
  if (bias && (bias.rank !== 1 || bias.shape[0] !== Co)) throw new RangeError(`conv2d: bias must be [${Co}], got ${fmt(bias.shape)}`);
  if (KH === 0 || KW === 0 || Cig === 0) throw new RangeError(`conv2d: empty kernel ${fmt(weight.shape)}`);
  const OH = convOutSize(H, KH, stride[0], padding[0], dilation[0]);
  const OW = convOutSize(W, KW, stride[1], padding[1], dilation[1]);
  if (OH < 1 || OW < 1) {
    throw new RangeError(
      `conv2d: kernel ${KH}×${KW} (dilation ${dilation.join('×')}) does not fit input ${H}×${W} padded by ${padding.join('×')}`,
    );
  }
  const g: ConvGeometry = { N, C, H, W, Co, OH, OW, KH, KW, stride, padding, dilation, groups };
  return scope(() => {
    const xc = contiguous(x);
    const wc = contiguous(weight);
    const bc = bias ? contiguous(bias) : undefined;
    const y = empty([N, Co, OH, OW], 'f32');
    conv2dInto(xc, wc, bc, y, g, { activation });
    return record(
      'conv2d',
      y,
      [x, weight, bias ?? null],
      (dy, [xs, ws]) => {
        const dyc = contiguous(dy);
        let dx: Tensor | null = null;
        let dw: Tensor | null = null;
        if (x.requiresGrad) {
          dx = empty([N, C, H, W], 'f32');
          conv2dInputGradInto(dyc, ws, dx, g);
        }
        if (weight.requiresGrad) {
          const splits = conv2dWeightGradSplits(g);
          const partial = empty([splits, Co, Cig, KH, KW], 'f32');
          conv2dWeightGradInto(xs, dyc, partial, g, splits);
          dw = splits === 1 ? asShape(partial, weight.shape) : sum(partial, 0);
        }
        const db = bias?.requiresGrad ? sum(dyc, [0, 2, 3]) : null;
        return [dx, dw, db];
      },
      [xc, wc],
    );
  });
}
