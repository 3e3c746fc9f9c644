/**
 * `rae probe` as a user runs it (child processes through vite-node) on a tiny IDX data set with
 * a test split: --random-init with --json; --run DIR writes DIR/probe.json (the run's own
 * encoder, saved once) and a report with the probe section; a data set without labels is a
 * one-line error; a missing encoder or a folder that is not a run is refused before any work;
 * probeIntoRun (the demo's step) in-process.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeConfig } from '../../src/cli/options.js';
import { probeCommand, probeIntoRun } from '../../src/cli/probe-command.js';
import { loadEncoder } from '../../src/train/context.js';
import { closeSharedDecodePools } from '../../src/train/data/index.js';
import { useGpu } from '../helpers/setup.js';
import { presetConfig } from '../../src/train/config.js';
import { removeTempDirs, tempDir, writeFolder, writeIdx } from '../data/fixtures.js';
import { ownLines, rae, type Ran } from '../helpers/cli.js';

useGpu();
afterAll(async () => {
  removeTempDirs();
  await closeSharedDecodePools();
});

function expectOneLineError(r: Ran, pattern: RegExp): void {
  expect(r.status, r.stdout + r.stderr).not.toBe(0);
  const lines = ownLines(r.stderr);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

function idxData(): string {
  const dir = tempDir('probe-cli');
  writeIdx(
    dir,
    'train',
    Array.from({ length: 30 }, (_, i) => i % 3),
    8,
    8,
    false,
  );
  writeIdx(
    dir,
    't10k',
    Array.from({ length: 9 }, (_, i) => i % 3),
    8,
    8,
    false,
  );
  return dir;
}

const small = ['--train-images', '24', '--test-images', '9', '--epochs', '5'];

describe('rae probe', () => {
  it('--random-init --json writes the result', async () => {
    const data = idxData();
    const out = path.join(fs.mkdtempSync(path.join(tmpdir(), 'rae-probe-')), 'probe.json');
    const r = await rae(['probe', '--preset', 'tiny', '--random-init', '--data', data, ...small, '--json', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/probe: top-1 \d+\.\d% on 9 test-split images/);
    const j = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(j).toMatchObject({ classes: 3, trainImages: 24, testImages: 9, featureDim: 16, randomInit: true, split: 'test' });
    for (const k of ['accuracy', 'trainAccuracy', 'seconds']) expect(typeof j[k]).toBe('number');
    expect(j.encoder).toMatch(/randomly initialised/);
  });

  it('--run DIR probes the run’s encoder and adds the result to its report', async () => {
    const data = idxData();
    const run = tempDir('probe-run');
    const c = presetConfig('tiny');
    c.data.source = data;
    writeConfig(run, c);
    const r = await rae(['probe', '--run', run, ...small]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(run, 'encoder.safetensors'))).toBe(true);
    const j = JSON.parse(fs.readFileSync(path.join(run, 'probe.json'), 'utf8'));
    expect(j.randomInit).toBe(false);
    const r2 = await rae(['probe', '--run', run, '--random-init', ...small]);
    expect(r2.status, r2.stderr).toBe(0);
    expect(fs.existsSync(path.join(run, 'probe-random.json'))).toBe(true);
    const report = fs.readFileSync(path.join(run, 'report.html'), 'utf8');
    expect(report).toContain('id="probe"');
    expect(report).toContain('random initialisation');
    expect(report).toContain(`${(100 * j.accuracy).toFixed(1)}%`);
  });

  it('--help names the options; a user error is one line', async () => {
    const help = await rae(['probe', '--help']);
    expect(help.status, help.stderr).toBe(0);
    for (const o of ['--encoder <dir>', '--run <dir>', '--random-init', '--train-images', '--test-images', '--epochs', '--json <file>'])
      expect(help.stdout).toContain(o);
    const flat = tempDir('probe-flat');
    await writeFolder(flat, 'only', { pics: 6 });
    expectOneLineError(
      await rae(['probe', '--preset', 'tiny', '--random-init', '--data', path.join(flat, 'only', 'pics'), '--test-images', '2']),
      /rae: the data set has 1 class \('pics'\): a probe needs labels/,
    );
  });

  it('probeIntoRun (the demo step) probes the encoder it is given, keeps DIR/probe.json and leaves the encoder usable', async () => {
    const run = tempDir('probe-into');
    const c = presetConfig('tiny');
    c.data.source = idxData();
    const enc = await loadEncoder(run, c);
    const lines: string[] = [];
    const r = await probeIntoRun(run, c, { enc, trainImages: 24, testImages: 9, epochs: 3, workers: 0, log: (l) => lines.push(l) });
    expect(JSON.parse(fs.readFileSync(path.join(run, 'probe.json'), 'utf8')).accuracy).toBe(r.accuracy);
    expect(lines.at(-1)).toMatch(/^probe: top-1 /);
    expect(enc.encoder.parameters()[0].isDisposed).toBe(false);
    enc.encoder.dispose();
  });

  it('refuses to start without an encoder or with a folder that is not a run (in-process)', async () => {
    await expect(probeCommand({ data: '/nonexistent' })).rejects.toThrow(
      /rae probe needs an encoder: --encoder DIR, --run DIR, or --random-init/,
    );
    await expect(probeCommand({ run: tmpdir() })).rejects.toThrow(/no config\.json \(not a run folder\)/);
  });
});
