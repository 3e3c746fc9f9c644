/** The tile of the implicit-GEMM convolution kernels (conv.ts), chosen per adapter in tuning.ts. */
export interface ConvConfig {
  /** Workgroup size along columns (output pixels, or weight taps for the weight gradient). */
  wgX: number;
  /** Workgroup size along rows (channels). */
  wgY: number;
  /** Rows (channels) per thread. */
  rm: number;
  /** Columns per thread. */
  rn: number;
  /**
   * Forward only, where the subgroup size is fixed and equals wgX (lavapipe: 8): the lanes of a
   * subgroup (one row of the workgroup) share their rm weight rows, so lane l loads rows l,
   * l + lanes, … and subgroupBroadcast hands each to every lane, instead of every lane loading
   * all rm (see matmul/broadcast.ts for why loads are what costs on llvmpipe). rm % lanes == 0.
   */
  lanes?: number;
}
