/**
 * The benchmark suite's machinery on one tiny case, without peers: the result's shape, and that
 * the correctness check fails on a wrong result (an engine that corrupts one output element).
 * No timing assertions: times only have to be positive numbers.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../bench/suite/engine.js';
import { oursEngine } from '../../bench/suite/ours.js';
import { expectedMatmul, expectedRows } from '../../bench/suite/reference.js';
import { toMarkdown, type SuiteResults } from '../../bench/suite/report.js';
import { runCases } from '../../bench/suite/runner.js';
import { type BenchCase, input, type Op } from '../../bench/suite/spec.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const op: Extract<Op, { kind: 'matmul' }> = { kind: 'matmul', M: 24, K: 40, N: 36, transB: true };
const tiny: BenchCase = {
  name: 'tiny matmul',
  suite: 'matmul',
  shape: '24×40×36 Bᵀ',
  op,
  unit: 'GFLOP/s',
  work: 2 * 24 * 40 * 36,
  limit: 'fp32',
  quick: true,
  inputs: () => [input('A', [24, 40], 1), input('B', [36, 40], 2)],
  expected: (ins) => expectedMatmul(op, ins),
};

/** Ours, with one element of the checked output changed by 1 %. */
function corrupted(): Engine {
  const ours = oursEngine();
  return {
    name: 'corrupted',
    async prepare(c, inputs) {
      const p = await ours.prepare(c, inputs);
      return {
        ...p,
        read: async (o) => {
          const out = (await p.read(o)).slice();
          out[5 * 36 + 7] *= 1.01;
          return out;
        },
      };
    },
  };
}

const plan = { repeats: 3, targetMs: 1, maxCalls: 2 };

describe('bench suite machinery', () => {
  it('times and checks one case, and reports a peer that computes a wrong result', async () => {
    const run = await runCases([tiny], oursEngine(), [corrupted()], { adapterName: 'test adapter', plan });
    expect(run.cases).toHaveLength(1);
    const r = run.cases[0];
    expect(r).toMatchObject({ name: 'tiny matmul', suite: 'matmul', shape: '24×40×36 Bᵀ', metric: 'GFLOP/s', unit: 'ms' });
    expect(r.error).toBeUndefined();
    expect(r.correctness?.pass).toBe(true);
    for (const k of ['median', 'min', 'max', 'rate'] as const) expect(r[k]).toBeGreaterThan(0);
    expect(r.min!).toBeLessThanOrEqual(r.median!);
    expect(r.median!).toBeLessThanOrEqual(r.max!);
    // No known fp32 peak for 'test adapter': no fraction, rather than a made-up one.
    expect(r.fractionOfLimit).toBeNull();
    const peer = r.peers.corrupted;
    expect(peer.correctness?.pass).toBe(false);
    expect(peer.correctness?.detail).toMatch(/index 187/);
    expect(peer.ratio).toBeGreaterThan(0);

    const results: SuiteResults = {
      schema: 'rae-webgpu-bench/1',
      adapter: { description: 'test adapter', vendor: '', architecture: '', device: '', backend: '' },
      toggles: [],
      commit: 'abc',
      date: new Date(0).toISOString(),
      command: 'test',
      quick: true,
      loadAverage: { start: 0, end: 0 },
      durationSeconds: 0,
      copyBandwidthGBs: run.copyBandwidthGBs,
      knownLimits: run.knownLimits,
      peers: { corrupted: 'ours with one wrong element' },
      cases: run.cases,
    };
    const json = JSON.parse(JSON.stringify(results));
    expect(Object.keys(json.cases[0].peers.corrupted)).toEqual(expect.arrayContaining(['median', 'min', 'max', 'ratio', 'correctness']));
    const md = toMarkdown(results);
    expect(md).toMatch(/\| tiny matmul \| 24×40×36 Bᵀ \| .* \| pass \| .*wrong result/);
  });

  it('measures a memory-bound case against a copy of its own input timed in the same rounds', async () => {
    const rows: Extract<Op, { kind: 'layerNorm' | 'rmsNorm' | 'softmax' }> = { kind: 'softmax', T: 16, W: 32 };
    const c: BenchCase = {
      name: 'tiny softmax',
      suite: 'rows',
      shape: '[16, 32]',
      op: rows,
      unit: 'GB/s',
      work: 2 * 4 * 16 * 32,
      limit: 'copy',
      quick: true,
      inputs: () => [input('x', [16, 32], 3)],
      expected: (ins) => expectedRows(rows, ins),
    };
    const run = await runCases([c], oursEngine(), [], { adapterName: 'test adapter', plan });
    const r = run.cases[0];
    expect(r.correctness?.pass).toBe(true);
    expect(r.copyReferenceGBs).toBeGreaterThan(0);
    // The fraction is the case's rate over that copy's, whatever the suite's own copy case measured.
    expect(r.fractionOfLimit).toBeCloseTo(r.rate! / r.copyReferenceGBs!, 12);
    expect(r.limit).toMatch(/copy of the same \[512\] f32 values, timed in the same rounds/);
    expect(run.copyBandwidthGBs).toBeNull(); // no copy case in this run
    expect(Object.keys(r.peers)).toEqual([]); // the reference copy is not reported as a peer
  });

  it('reports an engine that throws in its cell and goes on', async () => {
    const broken: Engine = {
      name: 'broken',
      prepare: async () => {
        throw new Error('cannot load');
      },
    };
    const run = await runCases([tiny], oursEngine(), [broken], { adapterName: 'test adapter', plan });
    expect(run.cases[0].peers.broken.error).toBe('failed to prepare: cannot load');
    expect(run.cases[0].correctness?.pass).toBe(true);
  });
});
