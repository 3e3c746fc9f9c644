/**
 * What the runtime needs from its host, so that src/gpu/runtime.ts stays platform-neutral: a way
 * to find an adapter, and the defaults the host supplies for init()'s options. Node's (Dawn,
 * RAE_* environment variables) is src/gpu/node.ts; a browser's is `navigator.gpu`.
 */
import { NoAdapterError } from './errors.js';
import type { KernelCompiledHook } from './pipeline-cache.js';

export interface DiscoveryOptions {
  /** Substring of the adapter name, as Dawn's `adapter=` flag takes it. Node env: RAE_ADAPTER. */
  adapter?: string;
  /** Dawn backend: 'vulkan', 'metal', 'd3d12', … Node env: RAE_BACKEND. */
  backend?: string;
  powerPreference?: GPUPowerPreference;
  /** Instance toggles (e.g. allow_unsafe_apis, vulkan_enable_f16_on_nvidia). */
  enableToggles?: string[];
}

export interface Discovered {
  gpu: GPU;
  adapter: GPUAdapter;
  /** The backend to report when the adapter's info does not name one. */
  backend: string;
  /** What was tried, in order, for the record in `rae info`. */
  attempts: string[];
  icd?: string;
}

export interface Platform {
  readonly name: string;
  /** Finds an adapter (the returned `gpu` must outlive the device). */
  discover(opts: DiscoveryOptions): Promise<Discovered>;
  /** Option defaults from the host (explicit init() options override them). */
  defaults(): PlatformDefaults;
  /**
   * Makes the host's waits for GPU events light on the CPU (Node: Dawn's event polling, see
   * event-polling.ts); returns the undo. The runtime asks for it on software adapters, whose
   * worker threads share the CPU with the waiting thread.
   */
  quietWaits?(): () => void;
}

/**
 * Where the autotuner keeps its choices, one text file per key (adapter, driver, library version).
 * Node: a directory under XDG_CACHE_HOME or ~/.cache (src/gpu/node.ts).
 */
export interface TuningCacheStore {
  read(key: string): string | undefined;
  write(key: string, text: string): void;
  /** Where the key's file is, for messages. */
  where(key: string): string;
}

/** The init() options a host may default; a subset of InitOptions, named here to keep runtime.ts a leaf of this file. */
export interface PlatformDefaults extends DiscoveryOptions {
  experimental?: boolean;
  debug?: boolean;
  profile?: boolean;
  /** Memory budget in bytes. Node env: RAE_MEMORY_LIMIT (e.g. 8GiB, or none). */
  memoryLimit?: number;
  /** Host memory available at start: the software adapter's default budget is a fraction of it. */
  hostAvailableMemory?: number;
  /** Called as each kernel compiles. Node env: RAE_DUMP_WGSL=dir, RAE_LOG_COMPILES=1. */
  onKernelCompiled?: KernelCompiledHook;
  /** Use (and fill) the autotuner's cache of measured kernel choices. Node env: RAE_TUNE=1. */
  tune?: boolean;
  /**
   * Waits for the GPU without keeping a CPU core busy (Platform.quietWaits). Default: on for
   * software adapters, off for hardware ones (each wait may take up to ~1 ms longer). Node env:
   * RAE_QUIET_WAITS=0|1.
   */
  quietWaits?: boolean;
  /** Where tuned choices are cached (Node: XDG_CACHE_HOME or ~/.cache/rae-webgpu). */
  tuningCache?: TuningCacheStore;
}

/** A host that already has a `GPU` object (a browser's `navigator.gpu`, or one a caller made). */
export function browserPlatform(gpu: GPU): Platform {
  return {
    name: 'navigator.gpu',
    defaults: () => ({}),
    async discover(opts) {
      const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
      if (!adapter) throw new NoAdapterError(['navigator.gpu.requestAdapter(): no adapter']);
      return { gpu, adapter, backend: 'webgpu', attempts: ['navigator.gpu.requestAdapter(): adapter found'] };
    },
  };
}
