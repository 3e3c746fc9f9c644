/**
 * Seeing compiled kernels: the onKernelCompiled hook fires once per key, RAE_DUMP_WGSL's hook
 * writes each kernel under a file-safe unique name with its key in a header, and with key
 * checking on (debug mode) a key that maps to a second source is an error.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { dumpWgslHook, kernelFileName, kernelHooksFromEnv } from '../../src/gpu/kernel-dump.js';
import { PipelineCache } from '../../src/gpu/pipeline-cache.js';
import { init, runtime } from '../../src/gpu/runtime.js';

beforeAll(async () => {
  await init();
});

const kernel = (value: number) => `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() { out[0] = ${value.toFixed(1)}; }`;

describe('kernel compile hooks', () => {
  it('file names are file-safe, bounded and distinct for distinct keys', () => {
    const a = kernelFileName('matmul|reg8x4r12x16s|Ak1:f32|Bo1:f32|Of32|bias:-|res:-|gelu|set|br0');
    const b = kernelFileName('matmul|reg8x4r12x16s|Ak1:f32|Bo1:f32|Of32|bias:-|res:-|gelu|set|br1');
    expect(a).toMatch(/^[A-Za-z0-9._-]+\.wgsl$/);
    expect(a).not.toBe(b);
    expect(kernelFileName('x'.repeat(1000)).length).toBeLessThan(140);
  });

  it('the dump hook writes every compiled kernel once, with its cache key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rae-wgsl-'));
    try {
      const cache = new PipelineCache(runtime().device, { onKernelCompiled: dumpWgslHook(dir) });
      cache.get({ key: 'test|dump|a', bindings: ['write'], wgsl: () => kernel(1) });
      cache.get({ key: 'test|dump|a', bindings: ['write'], wgsl: () => kernel(1) });
      cache.get({ key: 'test|dump|b', bindings: ['write'], wgsl: () => kernel(2) });
      const files = readdirSync(dir).sort();
      expect(files).toEqual([kernelFileName('test|dump|a'), kernelFileName('test|dump|b')].sort());
      expect(readFileSync(join(dir, kernelFileName('test|dump|b')), 'utf8')).toBe(`// cache key: test|dump|b\n${kernel(2)}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads RAE_DUMP_WGSL and RAE_LOG_COMPILES from the environment it is given', () => {
    expect(kernelHooksFromEnv({})).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'rae-wgsl-'));
    try {
      const hook = kernelHooksFromEnv({ RAE_DUMP_WGSL: dir });
      hook?.({ key: 'k', source: 'fn f() {}', compileMs: 1 });
      expect(readdirSync(dir)).toEqual([kernelFileName('k')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with key checking, a key that maps to two different sources throws; the same source does not', () => {
    const cache = new PipelineCache(runtime().device, { checkKeys: true });
    cache.get({ key: 'test|check', bindings: ['write'], wgsl: () => kernel(1) });
    expect(() => cache.get({ key: 'test|check', bindings: ['write'], wgsl: () => kernel(1) })).not.toThrow();
    expect(() => cache.get({ key: 'test|check', bindings: ['write'], wgsl: () => kernel(3) })).toThrow(
      /key 'test\|check' maps to two different WGSL sources \(first difference at line 3/,
    );
    // Without checking (the default), the cached pipeline is returned as before.
    const plain = new PipelineCache(runtime().device);
    const k = plain.get({ key: 'test|check', bindings: ['write'], wgsl: () => kernel(1) });
    expect(plain.get({ key: 'test|check', bindings: ['write'], wgsl: () => kernel(3) })).toBe(k);
  });
});
