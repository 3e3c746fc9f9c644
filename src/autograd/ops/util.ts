/** Small helpers shared by the differentiable ops. */
import { isFloat, type DType } from '../../core/dtype.js';
import { fmt } from '../../core/shape.js';
import { Tensor } from '../../tensor/tensor.js';

export function assertTensor(x: unknown, op: string, what = 'argument'): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: ${what} must be a Tensor, got ${x === null ? 'null' : typeof x}`);
  x.storage; // throws a clear error when disposed
  return x;
}

/** Result dtype of a binary op: floats win; f16 only when both are f16. */
export function promote(a: DType, b: DType, op: string): DType {
  if (a === b) return a;
  if (isFloat(a) || isFloat(b)) return 'f32';
  throw new TypeError(`${op}: cannot combine dtypes ${a} and ${b}`);
}

export function computeType(d: DType): 'f32' | 'i32' | 'u32' {
  return d === 'f16' ? 'f32' : d;
}

export function assertFloat(t: Tensor, op: string): void {
  if (!isFloat(t.dtype)) throw new TypeError(`${op}: expected a floating tensor (f32/f16), got ${t.dtype} of shape ${fmt(t.shape)}`);
}
