/**
 * Copying values into an existing tensor's storage, so that code above the tensor layer (state
 * dicts, EMA, optimizers) never computes byte offsets. The destination keeps its storage: anything
 * that holds it (an optimizer, a view) sees the new values.
 */
import { runtime } from '../gpu/runtime.js';
import { mapInto } from '../kernels/elementwise.js';
import { tensor } from './creation.js';
import { byteSize, isFloat } from '../core/dtype.js';
import { fmt, shapesEqual } from '../core/shape.js';
import type { Tensor } from './tensor.js';

/**
 * dst ← src, element by element (same shape), converting dtype if they differ. Either may be a
 * strided view. Same-dtype dense copies are one buffer-to-buffer copy; everything else (other
 * dtypes, strided layouts, f16 ranges that are not 4-byte aligned) goes through the copy kernel,
 * so no byte beyond dst's elements is ever written.
 */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (!shapesEqual(dst.shape, src.shape))
    throw new RangeError(`copyInto: shapes differ: destination ${fmt(dst.shape)}, source ${fmt(src.shape)}`);
  if (dst.size === 0) return;
  if (dst.dtype === src.dtype && dst.isContiguous && src.isContiguous) {
    const unit = byteSize(dst.dtype);
    const bytes = dst.size * unit;
    const from = src.offset * unit;
    const to = dst.offset * unit;
    // copyBufferToBuffer needs 4-byte multiples (odd f16 ranges fall through to the kernel).
    if (bytes % 4 === 0 && from % 4 === 0 && to % 4 === 0) {
      runtime().copy(src.buffer, from, dst.buffer, to, bytes);
      return;
    }
  }
  const compute = isFloat(dst.dtype) ? 'f32' : dst.dtype;
  mapInto({ name: 'copy', expr: 'in0', compute: compute as 'f32' | 'i32' | 'u32' }, [src], dst);
}

/**
 * dst ← host values (row-major, dst.size of them), converted to dst's dtype the way `tensor()`
 * converts them (integers must be integers for i32/u32).
 */
export function writeHost(dst: Tensor, values: ArrayLike<number>): void {
  if (values.length !== dst.size)
    throw new RangeError(`writeHost: ${values.length} values for a tensor of shape ${fmt(dst.shape)} (${dst.size} elements)`);
  if (dst.size === 0) return;
  if (dst.dtype === 'f32' && dst.isContiguous) {
    // The common case (f32 checkpoints into f32 parameters): straight into place, no staging.
    runtime().upload(dst.buffer, values instanceof Float32Array ? values : Float32Array.from(values), dst.offset * byteSize('f32'));
    return;
  }
  const staged = tensor(values, [...dst.shape], { dtype: dst.dtype });
  try {
    copyInto(dst, staged);
  } finally {
    staged.dispose();
  }
}
