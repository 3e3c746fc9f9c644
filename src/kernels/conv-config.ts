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
}
