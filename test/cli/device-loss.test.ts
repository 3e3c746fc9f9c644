/**
 * The GPU device lost in the middle of training (forced with the hidden --debug-lose-device-at-step,
 * which destroys the device as a driver reset would): the command exits non-zero with one line
 * naming the loss, the step and the exact resume command, writes nothing with the dead device,
 * keeps the last checkpoint loadable, and `--resume` in a new process finishes the stage. Both
 * stages, preset tiny, a checkpoint every step.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.js';
import { ownLines, rae } from '../helpers/cli.js';

/** RAE_DEBUG would add the stack this test checks is absent. */
const NO_DEBUG = { RAE_DEBUG: undefined };

const stepOf = (dir: string) => path.basename(dir).replace(/^\D+-0*/, '');

async function loseAndResume(command: 'train-decoder' | 'train-dit', stage: 'decoder' | 'dit', dir: string): Promise<void> {
  const args = [command, '--run', dir, '--preset', 'tiny', '--steps', '4', '--checkpoint-every', '1'];
  const lost = await rae([...args, '--debug-lose-device-at-step', '3'], NO_DEBUG);
  expect(lost.status, lost.stdout + lost.stderr).not.toBe(0);
  const lines = ownLines(lost.stderr);
  expect(lines, lost.stderr).toHaveLength(1);
  const escapedDir = dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  expect(lines[0]).toMatch(
    new RegExp(
      `^rae: the GPU device was lost at ${stage} step 3 \\(destroyed: .+\\); stopped without saving\\. ` +
        `The last good checkpoint ${stage}-00000002 is kept\\. Continue with: rae ${command} --run ${escapedDir} --resume$`,
    ),
  );
  expect(lost.stderr).not.toMatch(/^\s+at /m);
  expect(lost.stderr).not.toMatch(/DeviceLost\w*Error/);

  // Steps 1 and 2 were saved; nothing was written for step 3 (no checkpoint, no half-written folder).
  const cks = listCheckpoints(dir, stage);
  expect(cks.map(stepOf)).toEqual(['1', '2']);
  expect(fs.readdirSync(path.join(dir, 'checkpoints')).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  const ck = readCheckpoint(cks.at(-1)!); // throws on a torn file
  expect(ck.state.step).toBe(2);
  expect(ck.model.size).toBeGreaterThan(0);

  const resumed = await rae([command, '--run', dir, '--resume'], NO_DEBUG);
  expect(resumed.status, resumed.stdout + resumed.stderr).toBe(0);
  expect(resumed.stdout).toMatch(new RegExp(`resuming ${stage} from ${stage}-00000002: 2 steps to go`));
  const latest = readCheckpoint(listCheckpoints(dir, stage).at(-1)!);
  expect(latest.state.step).toBe(4);
}

describe('losing the GPU device during training', () => {
  it('stops with one line naming the step and how to resume; --resume finishes the stage (both stages)', async () => {
    const dir = fs.mkdtempSync(path.join(tmpdir(), 'rae-devloss-'));
    await loseAndResume('train-decoder', 'decoder', dir);
    await loseAndResume('train-dit', 'dit', dir);
  }, 180_000);
});
