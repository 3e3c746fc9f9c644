/**
 * The Node edge of the runtime: adapters through Dawn's bindings (discovery.ts) and the option
 * defaults Node users set in the environment. The core never reads `process.env`; init() loads
 * this module only when no other platform was given and there is no `navigator.gpu`.
 *
 *   RAE_ADAPTER=<name substring>   adapter to pick (Dawn's `adapter=` flag)
 *   RAE_BACKEND=vulkan|metal|…     Dawn backend
 *   RAE_EXPERIMENTAL=1             subgroup matrices, f16 on NVIDIA (unsafe instance toggles)
 *   RAE_DEBUG=1                    validate every dispatch synchronously
 *   RAE_PROFILE=1                  per-dispatch GPU times through timestamp queries
 *   RAE_MEMORY_LIMIT=8GiB|none     memory budget (default for software adapters: a share of host memory)
 *   RAE_DUMP_WGSL=dir              write every compiled kernel there; RAE_LOG_COMPILES=1 logs compiles
 *   RAE_TUNE=1                     autotune kernels; choices cached in $XDG_CACHE_HOME/rae-webgpu (or ~/.cache/rae-webgpu)
 *   RAE_QUIET_WAITS=0|1            poll Dawn's events every millisecond instead of spinning (default: software adapters)
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseByteSize } from './buffer-pool.js';
import { discoverAdapter, hostAvailableMemory } from './discovery.js';
import { throttleDawnPolling } from './event-polling.js';
import { kernelHooksFromEnv } from './kernel-dump.js';
import type { Platform, PlatformDefaults, TuningCacheStore } from './platform.js';

/** The RAE_* variables as init() options; unset variables give no default. */
export function envDefaults(env: Record<string, string | undefined> = process.env): PlatformDefaults {
  const flag = (v: string | undefined) => (v === undefined ? undefined : v === '1');
  const out: PlatformDefaults = {
    adapter: env.RAE_ADAPTER || undefined,
    backend: env.RAE_BACKEND || undefined,
    experimental: flag(env.RAE_EXPERIMENTAL),
    debug: flag(env.RAE_DEBUG),
    profile: flag(env.RAE_PROFILE),
    memoryLimit: env.RAE_MEMORY_LIMIT ? parseByteSize(env.RAE_MEMORY_LIMIT, 'RAE_MEMORY_LIMIT') : undefined,
    onKernelCompiled: kernelHooksFromEnv(env),
    tune: flag(env.RAE_TUNE),
    quietWaits: flag(env.RAE_QUIET_WAITS),
    tuningCache: fileTuningCache(join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rae-webgpu')),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as PlatformDefaults;
}

/** Tuning choices as JSON files in `dir`, one per key (named by a hash of it); written atomically. */
export function fileTuningCache(dir: string): TuningCacheStore {
  const file = (key: string) => join(dir, `tuning-${createHash('sha256').update(key).digest('hex').slice(0, 16)}.json`);
  return {
    where: file,
    read(key) {
      try {
        return readFileSync(file(key), 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    write(key, text) {
      mkdirSync(dir, { recursive: true });
      const tmp = `${file(key)}.${process.pid}.tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, file(key));
    },
  };
}

export const nodePlatform: Platform = {
  name: 'node (Dawn)',
  defaults: () => ({ hostAvailableMemory: hostAvailableMemory(), ...envDefaults() }),
  discover: (opts) => discoverAdapter(opts),
  quietWaits: throttleDawnPolling,
};
