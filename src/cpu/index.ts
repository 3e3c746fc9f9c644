/**
 * Float64 CPU reference implementation of the engine's tensor ops: the oracle that GPU kernels
 * and gradients are tested against. Plain loops, contiguous row-major arrays, torch semantics.
 */
export * from './ndarray.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './linalg.js';
export * from './nn.js';
export * from './attention.js';
export * from './resample.js';
export * from './patch.js';
export * from './conv.js';
export * from './random.js';
export * from './finite-diff.js';
export * from './allclose.js';
