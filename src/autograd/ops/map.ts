/** The one fused-map entry the differentiable ops build on (forward and gradient kernels alike). */
import type { DType } from '../../core/dtype.js';
import { broadcastShapes } from '../../core/shape.js';
import { mapInto, type MapSpec } from '../../kernels/elementwise.js';
import { empty, type Tensor } from '../../tensor/tensor.js';
import { computeType, promote } from './util.js';

/** Runs a fused map over tensors into a new tensor of the broadcast shape. */
export function map(
  name: string,
  inputs: Tensor[],
  expr: string,
  opts: { dtype?: DType; scalars?: number[]; helpers?: string; shape?: readonly number[] } = {},
): Tensor {
  let shape = opts.shape ?? inputs[0].shape;
  if (!opts.shape) for (const t of inputs.slice(1)) shape = broadcastShapes(shape, t.shape, name);
  const dtype = opts.dtype ?? inputs.reduce<DType>((d, t) => promote(d, t.dtype, name), inputs[0].dtype);
  const out = empty(shape, dtype);
  const spec: MapSpec = { name, expr, compute: computeType(dtype), scalars: opts.scalars, helpers: opts.helpers };
  mapInto(spec, inputs, out);
  return out;
}
