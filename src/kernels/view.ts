/** What a kernel needs to know about an operand: where its elements live and how to index them. */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import type { DType } from '../core/dtype.js';

export interface View {
  readonly buffer: PooledBuffer;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** In elements. */
  readonly strides: readonly number[];
  /** In elements. */
  readonly offset: number;
}

export function isContiguous(v: Pick<View, 'shape' | 'strides'>): boolean {
  let expected = 1;
  for (let i = v.shape.length - 1; i >= 0; i--) {
    if (v.shape[i] !== 1 && v.strides[i] !== expected) return false;
    expected *= v.shape[i];
  }
  return true;
}
