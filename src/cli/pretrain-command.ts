/**
 * `rae pretrain-encoder --run DIR`: MAE pretraining of an encoder of our own. The run folder is
 * like the training commands' (config.json, run.json, metrics.jsonl, checkpoints/, --resume); at
 * the end DIR/encoder/ holds the encoder, and `--encoder DIR` of the RAE commands accepts DIR.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { init, shutdown } from '../gpu/runtime.js';
import { closeSharedDecodePools, defaultDataSource } from '../train/data/index.js';
import { pretrainMaeStage } from '../train/mae-stage.js';
import { acquireLock } from '../train/run-folder.js';
import { beginCommand, recordAdapter, refreshReport, type StageFlags, stageMessage, withResumeHint } from './commands.js';
import { addCommonOptions, intArg, numArg, resolveConfig, writeConfig } from './options.js';

interface PretrainFlags extends StageFlags {
  maskRatio?: number;
  patch?: number;
  hidden?: number;
  layers?: number;
  heads?: number;
  weightDecay?: number;
}

export async function pretrainEncoderCommand(flags: PretrainFlags): Promise<number> {
  const runDir = flags.run;
  const config = resolveConfig(
    runDir,
    flags,
    {
      mae: {
        steps: flags.steps,
        batch: flags.batch,
        lr: flags.lr,
        checkpointEvery: flags.checkpointEvery,
        keep: flags.keep,
        maskRatio: flags.maskRatio,
        patch: flags.patch,
        hidden: flags.hidden,
        layers: flags.layers,
        heads: flags.heads,
        weightDecay: flags.weightDecay,
      },
    },
    () => defaultDataSource().source,
  );
  fs.mkdirSync(runDir, { recursive: true });
  const release = acquireLock(runDir, 'rae pretrain-encoder');
  writeConfig(runDir, config);
  const rt = await init();
  try {
    recordAdapter(runDir, rt);
    const end = beginCommand(runDir, 'pretrain-encoder');
    try {
      const r = await pretrainMaeStage({
        runDir,
        config,
        resume: Boolean(flags.resume),
        debugNanAtStep: flags.debugNanAtStep,
        debugStopAtStep: flags.debugStopAtStep,
        debugLoseDeviceAtStep: flags.debugLoseDeviceAtStep,
      });
      end({ steps: r.done, imagesPerSecond: r.imagesPerSecond, exit: r.interrupted ? 'interrupted' : 'ok' });
      stageMessage('MAE pretraining', runDir, r, 'pretrain-encoder');
      if (r.encoderDir)
        console.log(`encoder → ${path.relative(process.cwd(), r.encoderDir) || r.encoderDir}; use it with --encoder ${runDir}`);
    } catch (e) {
      end({ exit: `error: ${e instanceof Error ? e.message : e}` });
      throw withResumeHint(e, 'pretrain-encoder', runDir);
    }
    await refreshReport(runDir);
    return 0;
  } finally {
    release();
    await closeSharedDecodePools();
    shutdown();
  }
}

export function addPretrainCommand(program: Command): void {
  addCommonOptions(
    program
      .command('pretrain-encoder')
      .description(
        'pretrain a ViT encoder as a masked autoencoder (75% masking, per-patch-normalised pixel loss); DIR/encoder/ is then usable as --encoder DIR',
      ),
    { runRequired: true, stageFlags: true },
  )
    .option('--mask-ratio <r>', 'fraction of patches masked (0 < r < 1)', numArg('--mask-ratio'))
    .option('--patch <n>', 'patch size', intArg('--patch'))
    .option('--hidden <n>', 'encoder width', intArg('--hidden'))
    .option('--layers <n>', 'encoder depth', intArg('--layers'))
    .option('--heads <n>', 'encoder attention heads', intArg('--heads'))
    .option('--weight-decay <x>', 'AdamW weight decay', numArg('--weight-decay'))
    .action(async (o) => {
      process.exitCode = await pretrainEncoderCommand(o);
    });
}
