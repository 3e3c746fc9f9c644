/**
 * rae-webgpu: a WebGPU tensor engine (Dawn in Node.js) with autograd, and RAE diffusion models
 * built on it. Start with `await init()`.
 */
export { init, runtime, shutdown, type InitOptions, type Runtime } from './gpu/runtime.js';
export { tune, tunePending, type TuneCases, type TuneOptions } from './kernels/autotune.js';
export { GpuError, NoAdapterError, DeviceLostError, GpuOutOfMemoryError, InFlightLimitError } from './gpu/errors.js';
export { Tensor } from './tensor/tensor.js';
export type { DType } from './core/dtype.js';
export {
  tensor,
  zeros,
  ones,
  full,
  arange,
  rand,
  randn,
  randint,
  uniform,
  bernoulli,
  manualSeed,
  toArray,
} from './tensor/creation.js';
export { scope, scopeAsync, memoryStats, type MemoryStats } from './tensor/scope.js';
export { noGrad, isGradEnabled, backward } from './autograd/tape.js';
export { cat, stack, where, matmul, cast, expand, permute, reshape, narrow, slice, pad } from './autograd/ops/index.js';
export { F } from './nn/functional.js';
export * as optim from './nn/optim.js';
export * as nn from './nn/index.js';
export * as models from './models/index.js';
export * as diffusion from './diffusion/flow.js';
export * as io from './io/index.js';
export * as ops from './autograd/ops/index.js';
