/** Helpers shared by kernel generators: operands, launch geometry, WGSL snippets. */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import type { View } from './view.js';

export const WG = 256;

/** A kernel operand: the name its WGSL uses, the view it reads or writes, and which of the two. */
export interface Operand {
  name: string;
  view: View;
  access: 'read' | 'write';
}

/** `enable f16;` when any operand is f16. */
export function enables(dtypes: DType[]): string {
  return dtypes.includes('f16') ? 'enable f16;\n' : '';
}

/** A 1-D launch of `n` threads over at most 65535 workgroups per dimension. */
export function grid1d(n: number, wg = WG): [number, number] {
  const groups = Math.ceil(n / wg);
  const max = runtime().limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/** WGSL for the flat thread index of a grid1d launch. */
export const FLAT_INDEX = `gid.x + gid.y * (nwg.x * WG)`;

/**
 * The device's subgroup size when it is fixed (min == max; lavapipe: 8, its SIMD width), else
 * undefined. The kernels that share loads across a subgroup's lanes (matmul/broadcast.ts, split-K,
 * the norms' shared weights, the convolution's shared weight rows) need exactly that size.
 */
export function fixedSubgroupSize(): number | undefined {
  const caps = runtime().caps;
  return caps.subgroups && caps.subgroupMinSize !== undefined && caps.subgroupMinSize === caps.subgroupMaxSize
    ? caps.subgroupMinSize
    : undefined;
}
