/** Every differentiable op. */
import '../methods.js';
export * from './attention.js';
export * from './conv.js';
export * from './pool.js';
export * from './elementwise.js';
export * from './indexing.js';
export * from './map.js';
export * from './matmul.js';
export * from './nn.js';
export * from './reduce.js';
export * from './shape.js';
