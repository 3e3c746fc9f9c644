/**
 * Hands the differentiable ops to Tensor's methods (src/tensor/tensor.ts declares the methods;
 * their bodies call what is installed here, so src/tensor never imports autograd). Loaded by
 * src/autograd/ops/index.ts, hence by every entry that gives users ops.
 */
import { toArray } from '../tensor/creation.js';
import { installTensorOps } from '../tensor/tensor.js';
import { binary, cast, clamp, compare, neg, powScalar, unary } from './ops/elementwise.js';
import { matmul } from './ops/matmul.js';
import { logSoftmax, softmax } from './ops/nn.js';
import { argmax, argmin, max, mean, min, sum, variance } from './ops/reduce.js';
import { contiguous, detach, expand, flatten, narrow, permute, reshape, slice, squeeze, transpose, unsqueeze, view } from './ops/shape.js';
import { backward } from './tape.js';

const REDUCE = { sum, mean, max, min };

installTensorOps({
  // neg also negates integer tensors (without a gradient); the other table ops need floats.
  unary: (op, x) => (op === 'neg' ? neg(x) : unary(op, x)),
  binary: (op, a, b) => binary(op, a, b),
  compare: (op, a, b) => compare(op, a, b),
  pow: powScalar,
  clamp,
  gelu: (x, approximate) => unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu', x),
  matmul,
  reduce: (op, x, dims, opts) => REDUCE[op](x, dims, opts),
  variance,
  argReduce: (op, x, dim, opts) => (op === 'argmax' ? argmax(x, dim, opts) : argmin(x, dim, opts)),
  softmax: (x, dim, log) => (log ? logSoftmax(x, dim) : softmax(x, dim)),
  reshape: (x, shape, asView) => (asView ? view(x, shape) : reshape(x, shape)),
  flatten,
  permute,
  transpose,
  unsqueeze,
  squeeze,
  narrow,
  slice,
  expand,
  contiguous,
  detach,
  cast,
  backward,
  read: toArray,
});
