/**
 * The CLI as a user runs it (child processes through vite-node): `rae info`, every command's
 * --help, one-line user errors, and the training commands at preset tiny — a resumed run logs
 * bitwise the same losses as an uninterrupted one, a forced NaN stops with the step named and
 * the last good checkpoint kept, SIGINT checkpoints and exits 0.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSafetensors, openSafetensors } from '../../src/io/safetensors.js';
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js';
import { readMetrics } from '../../src/train/run-folder.js';
import { ownLines, rae, type Ran } from '../helpers/cli.js';

const tmp = () => fs.mkdtempSync(path.join(tmpdir(), 'rae-cli-'));

/** A user error: exactly one line on stderr, starting "rae:" or "error:", no stack. */
function expectOneLineError(r: Ran, pattern: RegExp): void {
  expect(r.status, r.stdout + r.stderr).not.toBe(0);
  const lines = ownLines(r.stderr);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

describe('rae info', () => {
  it('finds an adapter with VK_ICD_FILENAMES unset and the self-check passes', async () => {
    const r = await rae(['info', '--json'], { VK_ICD_FILENAMES: undefined });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    expect(report.selfCheck.ok).toBe(true);
    expect(report.adapter.attempts.length).toBeGreaterThan(0);
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it('a pinned ICD that does not exist gives one clear error listing what was tried', async () => {
    const r = await rae(['info'], { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no WebGPU adapter found/);
    expect(r.stderr).toMatch(/VK_ICD_FILENAMES=\/nonexistent\/icd.json/);
    expect(r.stderr).toMatch(/bookworm-backports/);
  });
});

describe('help and user errors', () => {
  it('every command has --help naming its options', async () => {
    const expected: Record<string, RegExp[]> = {
      'train-decoder': [/--run <dir>/, /--preset <name>/, /--resume/, /--tau/, /LPIPS/, /--checkpoint-every/],
      'train-dit': [/--model <kind>/, /--no-shift/, /--allow-narrow/, /--time-dist/, /--steps/],
      sample: [/--sampler <kind>/, /--guidance <kind>/, /--guide <checkpoint>/, /--interval/],
      report: [/--run <dir>/],
      demo: [/--preset <name>/, /--data <path>/],
    };
    for (const [cmd, patterns] of Object.entries(expected)) {
      const r = await rae([cmd, '--help']);
      expect(r.status, r.stderr).toBe(0);
      for (const p of patterns) expect(r.stdout, `${cmd}: ${p}`).toMatch(p);
      expect(r.stdout).not.toMatch(/debug-nan/);
    }
    const top = await rae(['--help']);
    for (const c of Object.keys(expected)) expect(top.stdout).toContain(c);
  });

  it('bad input is one line on stderr and a non-zero exit', async () => {
    const dir = tmp();
    expectOneLineError(
      await rae(['train-decoder', '--run', dir, '--preset', 'tiny', '--data', '/nonexistent/images']),
      /not found: \/nonexistent\/images/,
    );
    expectOneLineError(await rae(['train-decoder', '--run', dir, '--bogus']), /unknown option '--bogus'/);
    expectOneLineError(await rae(['train-decoder', '--run', dir, '--steps', 'many']), /--steps must be a non-negative integer/);
    expectOneLineError(
      await rae(['train-decoder', '--run', dir, '--preset', 'tiny', '--batch', '100000000']),
      /needs .* MiB in one buffer.*lower --batch/,
    );
    expectOneLineError(
      await rae(['train-dit', '--run', dir, '--preset', 'tiny', '--hidden', '16,8']),
      /head width 8 is below the token dimension 16.*§4\.1.*--allow-narrow/,
    );
    expectOneLineError(await rae(['sample', '--run', tmp()]), /run\.json does not name the data's classes|no DiT checkpoint/);
  }, 120_000);
});

describe('training at preset tiny', () => {
  it('a run stopped and resumed logs bitwise the same losses as an uninterrupted one (both stages)', async () => {
    const [a, b] = [tmp(), tmp()];
    const ok = (r: Ran) => expect(r.status, r.stdout + r.stderr).toBe(0);
    ok(await rae(['train-decoder', '--run', a, '--preset', 'tiny']));
    ok(await rae(['train-decoder', '--run', b, '--preset', 'tiny', '--debug-stop-at-step', '3']));
    expect(listCheckpoints(b, 'decoder').map((d) => path.basename(d))).toEqual(['decoder-00000002', 'decoder-00000003']);
    const resumed = await rae(['train-decoder', '--run', b, '--resume']);
    ok(resumed);
    expect(resumed.stdout).toMatch(/resuming decoder from decoder-00000003: 3 steps to go/);
    ok(await rae(['train-dit', '--run', a]));
    ok(await rae(['train-dit', '--run', b, '--debug-stop-at-step', '4']));
    ok(await rae(['train-dit', '--run', b, '--resume']));
    for (const stage of ['decoder', 'dit'] as const) {
      const losses = (dir: string) =>
        readMetrics(dir)
          .filter((m) => m.stage === stage)
          .map((m) => [m.step, m.loss]);
      expect(losses(a)).toHaveLength(6);
      expect(losses(b), stage).toEqual(losses(a));
    }
    // Without --resume an existing stage is not overwritten.
    expectOneLineError(await rae(['train-dit', '--run', b]), /already has dit checkpoints.*--resume/);
    // A checkpoint from another model configuration is refused, naming the field.
    expectOneLineError(
      await rae(['train-dit', '--run', b, '--resume', '--hidden', '16,24']),
      /another model configuration: dit\.hidden: checkpoint \[16,16\] ≠ now \[16,24\]/,
    );
    // Sampling with Heun and AutoGuidance by an earlier checkpoint of the same run.
    const guide = path.join(a, 'checkpoints', 'dit-00000002');
    ok(await rae(['sample', '--run', a, '--sampler', 'heun', '--guidance', 'auto', '--guide', guide, '--count', '6', '--tag', 'ag']));
    const meta = JSON.parse(fs.readFileSync(path.join(a, 'samples/ag/samples.json'), 'utf8'));
    expect(meta).toMatchObject({ sampler: 'heun', step: 6, guidance: { kind: 'auto', guide } });
    const saved = loadSafetensors(path.join(a, 'samples/ag/samples.safetensors'));
    expect(saved.get('images')?.shape).toEqual([6, 3, 16, 16]);
    const file = openSafetensors(path.join(a, 'samples/ag/samples.safetensors'));
    expect([file.info('images').dtype, file.info('labels').dtype]).toEqual(['U8', 'I32']);
    file.close();
    expect(new Set(saved.get('labels')?.data).size).toBe(6);
  }, 240_000);

  it('a NaN loss stops with the step named, keeping the last good checkpoint', async () => {
    const dir = tmp();
    const r = await rae(['train-decoder', '--run', dir, '--preset', 'tiny', '--debug-nan-at-step', '3']);
    expectOneLineError(r, /decoder loss is NaN at step 3; stopped without saving.*decoder-00000002/);
    expect(listCheckpoints(dir, 'decoder').map((d) => path.basename(d))).toEqual(['decoder-00000002']);
    expect(readCheckpoint(listCheckpoints(dir, 'decoder')[0]).state.step).toBe(2);
    expect(readMetrics(dir).map((m) => m.step)).toEqual([1, 2]);
    // The lock was released on the way out.
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(false);
  }, 120_000);

  it('rae demo runs MAE pretraining, stage 1, stage 2, sampling, the probe, the evaluation and the report in one run folder', async () => {
    const dir = tmp();
    const r = await rae(['demo', '--preset', 'tiny', '--run', dir]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
    expect(info.commands.map((c: { command: string }) => c.command)).toEqual([
      'demo',
      'pretrain-encoder',
      'train-decoder',
      'train-dit',
      'sample',
      'probe',
      'eval',
    ]);
    // The probe of the demo's encoder and of its random-initialised twin, on 100 / 50 images.
    for (const f of ['probe.json', 'probe-random.json']) {
      const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      expect([p.trainImages, p.testImages], f).toEqual([100, 50]);
      expect(p.accuracy, f).toBeGreaterThanOrEqual(0);
      expect(p.accuracy, f).toBeLessThanOrEqual(1);
    }
    const ev = JSON.parse(fs.readFileSync(path.join(dir, 'eval.json'), 'utf8'));
    expect(ev.counts).toEqual({ reconstructions: 2, samples: 2, reference: 4 });
    expect(Number.isFinite(ev.rfid) && Number.isFinite(ev.gfid) && Number.isFinite(ev.kid), JSON.stringify(ev).slice(0, 400)).toBe(true);
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(html).toMatch(/linear probe/i);
    expect(html).toMatch(/rFID/);
    expect(r.stdout).toContain(`open ${path.join(dir, 'report.html')}`);
    const tags = fs.readdirSync(path.join(dir, 'samples'));
    expect(tags).toHaveLength(1);
    for (const f of ['grid.png', 'samples.safetensors', 'samples.json'])
      expect(fs.existsSync(path.join(dir, 'samples', tags[0], f)), f).toBe(true);
    for (const f of ['config.json', 'run.json', 'latent-stats.safetensors', 'report.html'])
      expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
    expect(new Set(readMetrics(dir).map((m) => m.stage))).toEqual(new Set(['decoder', 'dit']));
    const report = await rae(['report', '--run', dir]);
    expect(report.status, report.stderr).toBe(0);
    expect(report.stdout.trim()).toBe(path.join(dir, 'report.html'));
  }, 400_000);
});
