/**
 * The four matmul kernel configurations (what each generator is specialised on) and their
 * cache-key fragments. Which one an adapter gets is in ../tuning.ts.
 */

export interface RegisterConfig {
  kind: 'register';
  /** Threads per workgroup along N (x) and M (y). */
  wgX: number;
  wgY: number;
  /** Outputs per thread along M and N (both multiples of 4). */
  rm: number;
  rn: number;
  /** Scalar loads and a K loop of step 1 (smaller code) instead of vec4 loads and step 4. */
  scalar?: boolean;
}

export interface SharedConfig {
  kind: 'shared';
  wgX: number;
  wgY: number;
  /** Outputs per thread (multiples of 4); the tile is (wgY·rm) × (wgX·rn). */
  rm: number;
  rn: number;
  /** K-depth of a staged tile. */
  tk: number;
}

/**
 * For products whose operands are both contiguous along K (x·Wᵀ): the `lanes` invocations of one
 * subgroup share an rm×rn output block and split K between them (lane l takes k ≡ l mod lanes),
 * so neighbouring lanes read neighbouring addresses of the same rows; subgroupAdd combines them.
 * Needs the 'subgroups' feature with a fixed subgroup size equal to `lanes`.
 */
export interface SplitKConfig {
  kind: 'splitk';
  lanes: number;
  /** Output blocks (subgroups) per workgroup, side by side along N. */
  wgY: number;
  rm: number;
  rn: number;
}

/**
 * For CPU adapters whose subgroup is the SIMD vector (lavapipe): a workgroup is one subgroup of
 * `lanes` invocations owning rm rows × lanes·rn columns; the lanes load A's rows once between them
 * and share them with subgroupBroadcast (matmul/broadcast.ts says why that pays). Needs the
 * 'subgroups' feature with a fixed subgroup size equal to `lanes`.
 */
export interface BroadcastConfig {
  kind: 'broadcast';
  lanes: number;
  /** Rows per workgroup (a multiple of lanes). */
  rm: number;
  /** Columns per lane (a multiple of 4). */
  rn: number;
}

export type MatmulConfig = RegisterConfig | SharedConfig | SplitKConfig | BroadcastConfig;

/** What the adapter table holds: a general kernel and, optionally, one for K-contiguous operands. */
export interface AdapterMatmulConfigs {
  general: RegisterConfig | SharedConfig;
  kContiguous?: SplitKConfig;
  /**
   * Preferred over `general` and `kContiguous` where the adapter's subgroups have exactly its lane
   * count (on lavapipe it beat split-K on x·Wᵀ too; split-K stays an autotuner candidate).
   */
  broadcast?: BroadcastConfig;
}

/** Everything a config contributes to the generated WGSL. */
export function configKey(c: MatmulConfig): string {
  switch (c.kind) {
    case 'register':
      return `reg${c.wgX}x${c.wgY}r${c.rm}x${c.rn}${c.scalar ? 's' : 'v'}`;
    case 'shared':
      return `sh${c.wgX}x${c.wgY}r${c.rm}x${c.rn}k${c.tk}`;
    case 'splitk':
      return `sk${c.lanes}x${c.wgY}r${c.rm}x${c.rn}`;
    case 'broadcast':
      return `bc${c.lanes}r${c.rm}x${c.rn}`;
  }
}
