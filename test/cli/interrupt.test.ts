/**
 * Interrupting training (preset tiny, a checkpoint every step so kills land during writes):
 * - `kill -9` at random moments while checkpoints are being written always leaves the latest
 *   checkpoint complete and loadable, and the run resumes from it (taking over the dead
 *   process's stale lock);
 * - SIGINT finishes the step, writes a checkpoint and exits 0.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeRng } from '../../src/cpu/random.js';
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js';

const root = path.resolve(import.meta.dirname, '../..');
const viteNode = path.join(root, 'node_modules/.bin/vite-node');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function start(args: string[]) {
  const child = spawn(viteNode, [path.join(root, 'src/cli/main.ts'), ...args], {
    cwd: root,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, done, output: () => out };
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await sleep(20);
  }
}

const args = (dir: string) => [
  'train-decoder',
  '--run',
  dir,
  '--preset',
  'tiny',
  '--steps',
  '100000',
  '--checkpoint-every',
  '1',
  '--keep',
  '2',
];

describe('interrupting training', () => {
  it('kill -9 at random moments during checkpointing leaves a loadable latest checkpoint', async () => {
    const dir = fs.mkdtempSync(path.join(tmpdir(), 'rae-kill-'));
    const rng = makeRng(2026);
    let lastStep = 0;
    for (let round = 0; round < 4; round++) {
      const p = start(round === 0 ? args(dir) : [...args(dir), '--resume']);
      // Once this process has written its first checkpoint, it writes one every step.
      await waitFor(
        () =>
          (listCheckpoints(dir, 'decoder').at(-1) ?? '') > `${path.join(dir, 'checkpoints')}/decoder-${String(lastStep).padStart(8, '0')}`,
        120_000,
      );
      await sleep(rng() * 1500);
      p.child.kill('SIGKILL');
      const { signal } = await p.done;
      expect(signal, p.output()).toBe('SIGKILL');
      const latest = listCheckpoints(dir, 'decoder').at(-1)!;
      const ck = readCheckpoint(latest); // throws on a torn file
      expect(ck.state.step).toBeGreaterThan(lastStep);
      expect(ck.model.size).toBeGreaterThan(0);
      lastStep = ck.state.step;
    }
  }, 400_000);

  it('SIGINT finishes the step, writes a checkpoint and exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(tmpdir(), 'rae-sigint-'));
    const p = start(['train-decoder', '--run', dir, '--preset', 'tiny', '--steps', '100000']);
    await waitFor(() => fs.existsSync(path.join(dir, 'metrics.jsonl')), 120_000);
    p.child.kill('SIGINT');
    const { code } = await p.done;
    expect(code, p.output()).toBe(0);
    const m = /stopped at step (\d+)/.exec(p.output());
    expect(m, p.output()).not.toBeNull();
    expect(readCheckpoint(listCheckpoints(dir, 'decoder').at(-1)!).state.step).toBe(Number(m![1]));
    expect(p.output()).toMatch(/--resume/);
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(false);
  }, 120_000);
});
