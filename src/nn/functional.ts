/** The functional API's pieces; `F` below collects them with the table's pointwise ops. */
import * as ops from '../autograd/ops/index.js';
import { scope } from '../tensor/scope.js';
import { UNARY_FUNCTIONALS, type UnaryFunctional } from '../core/pointwise.js';
import type { Tensor } from '../tensor/tensor.js';

export const linear = ops.linear;
export const softmax = ops.softmax;
export const logSoftmax = ops.logSoftmax;
export const crossEntropy = ops.crossEntropy;
export const layerNorm = ops.layerNorm;
export const rmsNorm = ops.rmsNorm;
export const scaledDotProductAttention = ops.scaledDotProductAttention;
export const rope = ops.rope;
export const embedding = ops.embedding;
export const interpolate = ops.interpolate;
export const dropout = ops.dropout;
export const patchify = ops.patchify;
export const unpatchify = ops.unpatchify;
export const pad = ops.pad;
export const conv2d = ops.conv2d;
export const maxPool2d = ops.maxPool2d;
export const avgPool2d = ops.avgPool2d;
export const batchNorm = ops.batchNorm;

export function gelu(x: Tensor, opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  return ops.unary(opts.approximate === 'tanh' ? 'gelu_tanh' : 'gelu', x);
}

/** Mean squared error (mean over all elements). */
export function mseLoss(a: Tensor, b: Tensor): Tensor {
  return scope(() => {
    const d = ops.sub(a, b);
    return ops.mean(ops.mul(d, d));
  });
}

/** Mean absolute error (mean over all elements). */
export function l1Loss(a: Tensor, b: Tensor): Tensor {
  return scope(() => ops.mean(ops.unary('abs', ops.sub(a, b))));
}

/** One function per entry of the pointwise table (src/core/pointwise.ts) flagged `functional`. */
const pointwise = Object.fromEntries(UNARY_FUNCTIONALS.map((op) => [op, (x: Tensor) => ops.unary(op, x)])) as {
  readonly [K in UnaryFunctional]: (x: Tensor) => Tensor;
};

/** `F`: the functional API, PyTorch names and argument orders. */
export const F = Object.freeze({
  ...pointwise,
  linear,
  softmax,
  logSoftmax,
  crossEntropy,
  layerNorm,
  rmsNorm,
  scaledDotProductAttention,
  rope,
  embedding,
  interpolate,
  dropout,
  patchify,
  unpatchify,
  pad,
  conv2d,
  maxPool2d,
  avgPool2d,
  batchNorm,
  gelu,
  mseLoss,
  l1Loss,
});
