/** Every differentiable op. */
export * from './attention.js';
export * from './elementwise.js';
export * from './indexing.js';
export * from './matmul.js';
export * from './nn.js';
export * from './reduce.js';
export * from './shape.js';
