/**
 * The per-adapter tuning table and typed capabilities: every adapter family gets the
 * configurations it had before the table was unified (matmul's table, attention's rule,
 * row-kernel sizes), and runtime().caps describes this adapter.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { softwareAdapter } from '../../src/gpu/caps.js';
import { init, runtime } from '../../src/gpu/runtime.js';
import { chooseAttentionConfig } from '../../src/kernels/attention.js';
import { chooseMatmulConfig } from '../../src/kernels/matmul.js';
import { rowPlan, rowWorkgroupSize, tablePlan, tuningFor } from '../../src/kernels/tuning.js';

beforeAll(async () => {
  await init();
});

describe('tuning table', () => {
  it('matmul: lavapipe, SwiftShader, NVIDIA and the default row', () => {
    const lavapipe = chooseMatmulConfig({ description: 'llvmpipe (LLVM 15.0.6, 256 bits)' });
    expect(lavapipe).toEqual({
      general: { kind: 'register', wgX: 8, wgY: 4, rm: 12, rn: 16, scalar: true },
      kContiguous: { kind: 'splitk', lanes: 8, wgY: 4, rm: 12, rn: 16 },
      broadcast: { kind: 'broadcast', lanes: 8, rm: 32, rn: 8 },
    });
    expect(chooseMatmulConfig({ device: 'SwiftShader Device (Subzero)' })).toEqual({
      general: { kind: 'register', wgX: 8, wgY: 4, rm: 12, rn: 16, scalar: true },
    });
    expect(chooseMatmulConfig({ vendor: 'nvidia', device: 'NVIDIA H200' })).toEqual({
      general: { kind: 'shared', wgX: 16, wgY: 16, rm: 8, rn: 8, tk: 16 },
    });
    expect(chooseMatmulConfig({ vendor: 'amd', description: 'Radeon' })).toEqual({
      general: { kind: 'shared', wgX: 16, wgY: 16, rm: 4, rn: 4, tk: 16 },
    });
  });

  it('attention: loops over D on CPU adapters, staged unrolled tiles elsewhere', () => {
    for (const d of [{ description: 'llvmpipe' }, { device: 'swiftshader' }]) {
      expect(tuningFor(d).attention).toEqual({
        forward: { rows: 32, perThread: 4, unroll: 4, stage: 0, loops: true },
        backward: { rows: 32, perThread: 2, unroll: 4, stage: 0, loops: true },
        materializeBytes: 64 * 2 ** 20,
        groupBytes: 64 * 2 ** 20,
      });
    }
    expect(tuningFor({ vendor: 'nvidia' }).attention.forward).toEqual({ rows: 64, perThread: 1, unroll: 4, stage: 32, loops: false });
  });

  it('chooses for this adapter what its row says; staged tiles shrink to the workgroup memory', () => {
    const rt = runtime();
    const row = tuningFor(rt.caps);
    for (const pass of ['forward', 'backward'] as const) {
      for (const d of [16, 64, 256]) {
        const cfg = chooseAttentionConfig(d, pass);
        expect({ ...cfg, stage: 0 }).toEqual({ ...row.attention[pass], stage: 0 });
        expect(cfg.stage).toBeLessThanOrEqual(row.attention[pass].stage);
        if (cfg.stage > cfg.unroll)
          expect(cfg.stage * (2 * Math.ceil(d / 4) * 16 + 8)).toBeLessThanOrEqual(rt.limits.maxComputeWorkgroupStorageSize);
      }
    }
  });

  it('row kernels: small rows get small workgroups, never below the subgroup size', () => {
    const sub = runtime().caps.subgroupMaxSize ?? 32;
    expect(rowWorkgroupSize(96)).toBe(Math.max(16, sub));
    expect(rowWorkgroupSize(200)).toBe(Math.max(32, sub));
    expect(rowWorkgroupSize(500)).toBe(Math.max(64, sub));
    expect(rowWorkgroupSize(4096)).toBe(256);
  });

  it("row kernels: one row per invocation up to the row's maxD on CPU adapters, never on the GPU rows; the plan follows the table", () => {
    expect(tuningFor({ description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }).rowThread).toEqual({ maxD: 2048, wg: 64 });
    expect(tuningFor({ vendor: 'nvidia', device: 'NVIDIA H200' }).rowThread.maxD).toBe(0);
    expect(tuningFor({ vendor: 'amd' }).rowThread.maxD).toBe(0);
    const t = tuningFor(runtime().caps).rowThread;
    for (const D of [1, 96, 2048, 2049, 8192]) {
      const plan = tablePlan(D);
      expect(plan).toEqual(D <= t.maxD ? { perThread: true, wg: t.wg } : { perThread: false, wg: rowWorkgroupSize(D) });
      expect(rowPlan('softmax', 100, D)).toEqual(plan);
    }
  });
});

describe('adapter capabilities', () => {
  it('are read once into runtime().caps, consistent with the device features', () => {
    const rt = runtime();
    const c = rt.caps;
    expect(c.subgroups).toBe(rt.features.has('subgroups'));
    expect(c.f16).toBe(rt.features.has('shader-f16'));
    expect(c.timestampQuery).toBe(rt.features.has('timestamp-query'));
    expect(c.software).toBe(softwareAdapter([c.vendor, c.architecture, c.device, c.description].join(' ').toLowerCase()));
    if (c.subgroupMinSize !== undefined && c.subgroupMaxSize !== undefined)
      expect(c.subgroupMinSize).toBeLessThanOrEqual(c.subgroupMaxSize);
  });

  it('recognise software adapters by name', () => {
    expect(softwareAdapter('mesa llvmpipe (llvm 15.0.6, 256 bits)')).toBe('lavapipe');
    expect(softwareAdapter('google swiftshader device')).toBe('swiftshader');
    expect(softwareAdapter('microsoft basic render driver')).toBe('warp');
    expect(softwareAdapter('nvidia h200')).toBeNull();
  });
});
