/**
 * The WGSL in wgsl/ is what the generators produce today (run `npm run wgsl:snapshots` after a
 * kernel change and commit the diff), every snapshot is valid WGSL for this device's compiler,
 * and the folder holds no stale kernel.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { init, runtime } from '../../src/gpu/runtime.js';
import { kernelSnapshots, renderSnapshot } from '../../src/kernels/catalog.js';

const dir = new URL('../../wgsl/', import.meta.url);
const snapshots = kernelSnapshots();

beforeAll(async () => {
  await init();
});

describe('wgsl/ snapshots', () => {
  it('covers the core kernels and nothing stale', () => {
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.wgsl'))
      .sort();
    expect(files).toEqual(snapshots.map((s) => s.file).sort());
    for (const prefix of [
      'matmul-register',
      'matmul-splitk',
      'attention-forward',
      'attention-backward-dq',
      'attention-backward-dkdv',
      'layernorm-forward',
      'layernorm-backward',
      'rmsnorm-forward',
      'rmsnorm-backward',
      'softmax',
      'elementwise',
      'adamw',
    ]) {
      expect(
        files.some((f) => f.startsWith(prefix)),
        prefix,
      ).toBe(true);
    }
  });

  for (const s of snapshots) {
    it(`${s.file} matches its generator (else: npm run wgsl:snapshots)`, () => {
      expect(readFileSync(new URL(s.file, dir), 'utf8')).toBe(renderSnapshot(s));
    });
  }

  it('every snapshot is valid WGSL (shader modules compile without errors)', async () => {
    const device = runtime().device;
    const caps = runtime().caps;
    // A kernel that enables a feature this adapter lacks cannot be checked here (none today on lavapipe).
    const checkable = snapshots.filter(
      (s) => (caps.f16 || !/enable f16;/.test(s.source)) && (caps.subgroups || !/enable subgroups;/.test(s.source)),
    );
    expect(checkable.length).toBeGreaterThan(snapshots.length / 2);
    for (const s of checkable) {
      device.pushErrorScope('validation');
      const module = device.createShaderModule({ label: s.file, code: s.source });
      const info = await module.getCompilationInfo();
      const error = await device.popErrorScope();
      const messages = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
      expect({ file: s.file, messages, error: error?.message }).toEqual({ file: s.file, messages: [], error: undefined });
    }
  });
});
