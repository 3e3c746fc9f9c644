/** Convolution layers, PyTorch names and initialisation. */
import * as ops from '../autograd/ops/index.js';
import { uniform } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

export interface Conv2dLayerOptions extends ops.Conv2dOptions {
  bias?: boolean;
}

/**
 * y = conv2d(x, weight, bias) over NCHW; weight [out, in/groups, kh, kw]. PyTorch's default init:
 * U(±1/√fan_in) for weight and bias, fan_in = in/groups·kh·kw.
 */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: ops.Pair,
    readonly opts: Conv2dLayerOptions = {},
  ) {
    super();
    this.kernelSize = ops.pair(kernelSize, 1, 'Conv2d', 'kernelSize', 1);
    const groups = opts.groups ?? 1;
    if (!Number.isInteger(groups) || groups < 1 || inChannels % groups || outChannels % groups) {
      throw new RangeError(`Conv2d: groups = ${groups} must divide inChannels ${inChannels} and outChannels ${outChannels}`);
    }
    const fanIn = (inChannels / groups) * this.kernelSize[0] * this.kernelSize[1];
    const k = 1 / Math.sqrt(fanIn);
    this.weight = this.param('weight', uniform([outChannels, inChannels / groups, ...this.kernelSize], -k, k));
    this.bias = opts.bias === false ? null : this.param('bias', uniform([outChannels], -k, k));
  }
  forward(x: Tensor): Tensor {
    const { stride, padding, dilation, groups } = this.opts;
    return ops.conv2d(x, this.weight, this.bias, { stride, padding, dilation, groups });
  }
}
