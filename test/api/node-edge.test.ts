/** The Node edge turns RAE_* environment variables into init() defaults; the core never reads them. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envDefaults } from '../../src/gpu/node.js';

/** The options that come from variables; the tuning cache store is always there (checked below). */
const fromVariables = (env: Record<string, string | undefined>) => {
  const { tuningCache: _store, ...rest } = envDefaults(env);
  return rest;
};

describe('envDefaults', () => {
  it('maps each variable to its option, and unset ones to no option at all', () => {
    expect(fromVariables({})).toEqual({});
    expect(
      fromVariables({ RAE_ADAPTER: 'llvmpipe', RAE_BACKEND: 'vulkan', RAE_DEBUG: '1', RAE_EXPERIMENTAL: '0', RAE_PROFILE: '1' }),
    ).toEqual({
      adapter: 'llvmpipe',
      backend: 'vulkan',
      debug: true,
      experimental: false,
      profile: true,
    });
  });

  it('treats empty names as unset', () => {
    expect(fromVariables({ RAE_ADAPTER: '', RAE_BACKEND: '' })).toEqual({});
  });

  it('keeps the autotuner cache under $XDG_CACHE_HOME/rae-webgpu, one file per key', () => {
    const store = envDefaults({ XDG_CACHE_HOME: '/somewhere/cache' }).tuningCache;
    expect(store).toBeDefined();
    const a = store!.where('adapter A|driver 1|0.1.0');
    expect(path.dirname(a)).toBe('/somewhere/cache/rae-webgpu');
    expect(path.basename(a)).toMatch(/^tuning-[0-9a-f]{16}\.json$/);
    expect(store!.where('adapter B|driver 1|0.1.0')).not.toBe(a);
  });
});
