/**
 * Typed adapter capabilities, read once when the runtime is created: what kernels may use
 * (subgroups and their size, f16, subgroup matrices) and what kind of adapter this is (its
 * names, and whether it is a software rasteriser), which is what the tuning table matches on.
 */

export type SoftwareAdapter = 'lavapipe' | 'swiftshader' | 'warp';

export interface AdapterCaps {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation of the API (Mesa lavapipe/llvmpipe, SwiftShader, WARP), or null. */
  software: SoftwareAdapter | null;
  /** The 'subgroups' feature is enabled on the device. */
  subgroups: boolean;
  /** Subgroup sizes the adapter may use (undefined when it does not say). */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  /** 'shader-f16' is enabled. */
  f16: boolean;
  /** 'chromium-experimental-subgroup-matrix' is enabled (opt-in, experimental). */
  subgroupMatrix: boolean;
  timestampQuery: boolean;
}

/** The adapter names joined and lower-cased, for matching (also for partial descriptions). */
export function adapterName(info: Partial<Pick<AdapterCaps, 'vendor' | 'architecture' | 'device' | 'description'>>): string {
  return [info.vendor, info.architecture, info.device, info.description].join(' ').toLowerCase();
}

export function softwareAdapter(name: string): SoftwareAdapter | null {
  if (/llvmpipe|lavapipe/.test(name)) return 'lavapipe';
  if (/swiftshader/.test(name)) return 'swiftshader';
  if (/microsoft basic render|\bwarp\b/.test(name)) return 'warp';
  return null;
}

/** Capabilities of an adapter and the features its device was created with. */
export function readCaps(info: GPUAdapterInfo, features: ReadonlySet<string>): AdapterCaps {
  const names = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description };
  return {
    ...names,
    software: softwareAdapter(adapterName(names)),
    subgroups: features.has('subgroups'),
    subgroupMinSize: info.subgroupMinSize,
    subgroupMaxSize: info.subgroupMaxSize,
    f16: features.has('shader-f16'),
    subgroupMatrix: features.has('chromium-experimental-subgroup-matrix'),
    timestampQuery: features.has('timestamp-query'),
  };
}
