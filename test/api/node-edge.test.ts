/** The Node edge turns RAE_* environment variables into init() defaults; the core never reads them. */
import { describe, expect, it } from 'vitest';
import { envDefaults } from '../../src/gpu/node.js';

describe('envDefaults', () => {
  it('maps each variable to its option, and unset ones to no option at all', () => {
    expect(envDefaults({})).toEqual({});
    expect(
      envDefaults({ RAE_ADAPTER: 'llvmpipe', RAE_BACKEND: 'vulkan', RAE_DEBUG: '1', RAE_EXPERIMENTAL: '0', RAE_PROFILE: '1' }),
    ).toEqual({
      adapter: 'llvmpipe',
      backend: 'vulkan',
      debug: true,
      experimental: false,
      profile: true,
    });
  });

  it('treats empty names as unset', () => {
    expect(envDefaults({ RAE_ADAPTER: '', RAE_BACKEND: '' })).toEqual({});
  });
});
