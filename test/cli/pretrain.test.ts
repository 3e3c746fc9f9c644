/**
 * `rae pretrain-encoder` as a user runs it (vite-node child processes, preset tiny): a stopped and
 * resumed run logs bitwise the same losses, the encoder is exported to DIR/encoder/, train-decoder
 * runs on it with --encoder DIR, and a folder that is no encoder is one clear error.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSafetensors } from '../../src/io/safetensors.js';
import { listCheckpoints } from '../../src/train/checkpoint.js';
import { readMetrics } from '../../src/train/run-folder.js';
import { ownLines, rae, type Ran, repoRoot } from '../helpers/cli.js';

const _root = repoRoot;

const tmp = () => fs.mkdtempSync(path.join(tmpdir(), 'rae-pretrain-'));
const ok = (r: Ran) => expect(r.status, r.stdout + r.stderr).toBe(0);

describe('rae pretrain-encoder', () => {
  it('--help names its options and hides the debug ones', async () => {
    const r = await rae(['pretrain-encoder', '--help']);
    ok(r);
    for (const p of [/--run <dir>/, /--preset <name>/, /--resume/, /--mask-ratio/, /--weight-decay/, /--checkpoint-every/])
      expect(r.stdout).toMatch(p);
    expect(r.stdout).not.toMatch(/debug-nan/);
  });

  it('resumes bitwise, exports DIR/encoder/, and train-decoder runs on it with --encoder DIR', async () => {
    const [a, b, dec] = [tmp(), tmp(), tmp()];
    ok(await rae(['pretrain-encoder', '--run', a, '--preset', 'tiny']));
    ok(await rae(['pretrain-encoder', '--run', b, '--preset', 'tiny', '--debug-stop-at-step', '3']));
    expect(listCheckpoints(b, 'mae').map((d) => path.basename(d))).toEqual(['mae-00000002', 'mae-00000003']);
    expect(fs.existsSync(path.join(b, 'encoder'))).toBe(false);
    const resumed = await rae(['pretrain-encoder', '--run', b, '--resume']);
    ok(resumed);
    expect(resumed.stdout).toMatch(/resuming mae from mae-00000003: 3 steps to go/);
    const losses = (dir: string) =>
      readMetrics(dir)
        .filter((m) => m.stage === 'mae')
        .map((m) => [m.step, m.loss]);
    expect(losses(a)).toHaveLength(6);
    expect(losses(b)).toEqual(losses(a));

    const cfg = JSON.parse(fs.readFileSync(path.join(a, 'encoder', 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      model_type: 'mae-vit',
      image_size: 16,
      patch_size: 4,
      hidden_size: 16,
      latent: { drop_prefix_tokens: 1, grid: 4 },
    });
    const st = openSafetensors(path.join(a, 'encoder', 'model.safetensors'));
    expect([...st.keys()]).toContain('patch_embed.weight');
    expect([...st.keys()].some((k) => k.startsWith('decoder'))).toBe(false);
    st.close();

    const r = await rae(['train-decoder', '--run', dec, '--preset', 'tiny', '--encoder', a, '--steps', '2']);
    ok(r);
    expect(r.stdout).toMatch(/stage 1: 2 steps/);
    expect(readMetrics(dec).filter((m) => m.stage === 'decoder')).toHaveLength(2);
  }, 300_000);

  it('rae demo pretrains its MAE into encoders/ next to the run, trains on it, and finds it complete next time', async () => {
    const parent = tmp();
    const run = path.join(parent, 'demo');
    const r = await rae(['demo', '--preset', 'tiny', '--run', run, '--no-probe', '--no-eval']);
    ok(r);
    expect(r.stdout).toMatch(/MAE pretraining: 6 steps/);
    const config = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
    expect(config.encoder.path).toMatch(new RegExp(`^${path.join(parent, 'encoders', 'mae-tiny-')}[0-9a-f]{16}$`));
    expect(fs.existsSync(path.join(config.encoder.path, 'encoder', 'config.json'))).toBe(true);
    expect(r.stdout).toMatch(/encoder: MAE-pretrained \(6 steps\) ViT/);
    const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    expect(info.commands.map((c: { command: string }) => c.command)).toEqual([
      'demo',
      'pretrain-encoder',
      'train-decoder',
      'train-dit',
      'sample',
    ]);
    const { ensureCachedMae } = await import('../../src/cli/mae-cache.js');
    const { presetConfig } = await import('../../src/train/config.js');
    const c = presetConfig('tiny');
    c.data.source = config.data.source;
    expect(await ensureCachedMae(c, { root: path.join(parent, 'encoders') })).toEqual({ dir: config.encoder.path, reused: true });
  }, 300_000);

  it('--encoder naming a folder that is neither kind, or an unfinished MAE run, is one clear error', async () => {
    const empty = tmp();
    const r = await rae(['train-decoder', '--run', tmp(), '--preset', 'tiny', '--encoder', empty, '--steps', '1']);
    expect(r.status).not.toBe(0);
    const lines = ownLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^rae: --encoder .*: neither config\.json nor encoder\/config\.json found \(expected .*dinov2.* or an MAE run folder/,
    );
  }, 120_000);
});
