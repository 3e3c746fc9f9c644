/**
 * Known limits of GPUs by adapter name: dense fp32 peak (non-tensor-core, boost clock) and memory
 * bandwidth. Sources: NVIDIA's product data sheets (H100 SXM5/PCIe, H200, A100 40/80 GB, L4, T4,
 * A10) and the Ada/Ampere architecture white papers (RTX 4090, RTX 3090); AMD's MI250X/MI300X
 * specification pages. Software adapters have none: there the copy bandwidth measured in the same
 * run is the only limit, and it is the limit for memory-bound cases on every adapter.
 */
export interface KnownLimits {
  name: string;
  fp32Tflops: number;
  bandwidthGBs: number;
}

/** Matched in order against the adapter's description/device (first match wins, so specific names first). */
const KNOWN: [RegExp, KnownLimits][] = [
  [/H200/i, { name: 'NVIDIA H200', fp32Tflops: 67, bandwidthGBs: 4800 }],
  [/H100.*PCIe/i, { name: 'NVIDIA H100 PCIe', fp32Tflops: 51, bandwidthGBs: 2000 }],
  [/H100/i, { name: 'NVIDIA H100 SXM', fp32Tflops: 67, bandwidthGBs: 3350 }],
  [/A100.*80/i, { name: 'NVIDIA A100 80GB', fp32Tflops: 19.5, bandwidthGBs: 2039 }],
  [/A100/i, { name: 'NVIDIA A100 40GB', fp32Tflops: 19.5, bandwidthGBs: 1555 }],
  [/RTX 4090/i, { name: 'NVIDIA GeForce RTX 4090', fp32Tflops: 82.6, bandwidthGBs: 1008 }],
  [/RTX 3090/i, { name: 'NVIDIA GeForce RTX 3090', fp32Tflops: 35.6, bandwidthGBs: 936 }],
  [/\bL4\b/i, { name: 'NVIDIA L4', fp32Tflops: 30.3, bandwidthGBs: 300 }],
  [/\bA10\b/i, { name: 'NVIDIA A10', fp32Tflops: 31.2, bandwidthGBs: 600 }],
  [/\bT4\b/i, { name: 'NVIDIA T4', fp32Tflops: 8.1, bandwidthGBs: 320 }],
  [/MI300X/i, { name: 'AMD Instinct MI300X', fp32Tflops: 81.7, bandwidthGBs: 5300 }],
  [/MI250X/i, { name: 'AMD Instinct MI250X', fp32Tflops: 47.9, bandwidthGBs: 3277 }],
];

export function knownLimits(adapterName: string): KnownLimits | null {
  for (const [re, l] of KNOWN) if (re.test(adapterName)) return l;
  return null;
}
