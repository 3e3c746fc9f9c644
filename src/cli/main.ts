#!/usr/bin/env node
/** `rae <command>`: info, train-decoder, train-dit, sample, probe, report, demo. */
import { Command, Option } from 'commander';
import { demoCommand, reportCommand, sampleCommand, trainDecoderCommand, trainDiTCommand } from './commands.js';
import { registerEvalCommand } from './eval-command.js';
import { runInfo } from './info.js';
import { addCommonOptions, intArg, intPairArg, listArg, numArg, pairArg } from './options.js';
import { addPretrainCommand } from './pretrain-command.js';
import { registerProbeCommand } from './probe-command.js';

function build(): Command {
  const program = new Command('rae')
    .description('Representation-Autoencoder diffusion on WebGPU (Node + Dawn): train, sample, report')
    .configureOutput({ outputError: (s, write) => write(`${s.trim().split('\n')[0]}\n`) });

  program
    .command('info')
    .description('adapter, features, limits, and a kernel self-check against the CPU reference')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      process.exitCode = await runInfo(o.json ? ['--json'] : []);
    });

  addCommonOptions(
    program
      .command('train-decoder')
      .description('stage 1: train the RAE decoder on frozen-encoder tokens (noise-augmented), logging held-out PSNR/SSIM'),
    { runRequired: true, stageFlags: true },
  )
    .option('--tau <x>', 'noise augmentation strength τ (0 = off)', numArg('--tau'))
    .addOption(
      new Option('--noise <kind>', "σ per sample: 'uniform' = τ·U(0,1) (reference code), 'half-normal' = |N(0,τ²)| (paper)").choices([
        'uniform',
        'half-normal',
      ]),
    )
    .addOption(
      new Option(
        '--perceptual <kind>',
        'add a feature loss through the frozen encoder (L2 or cosine between its tokens of the reconstruction and of the original); LPIPS needs VGG weights that cannot be obtained offline, so it is not offered',
      ).choices(['none', 'l2', 'cosine']),
    )
    .option('--perceptual-weight <x>', 'weight of the feature loss', numArg('--perceptual-weight'))
    .option('--ema <d>', 'decoder EMA decay', numArg('--ema'))
    .option('--eval-every <n>', 'held-out PSNR/SSIM and a reconstruction strip every n steps', intArg('--eval-every'))
    .action(async (o) => {
      process.exitCode = await trainDecoderCommand(o);
    });

  addCommonOptions(
    program
      .command('train-dit')
      .description('stage 2: train a DiT or DiT^DH with shifted flow matching on normalised latents (latent statistics computed once)'),
    { runRequired: true, stageFlags: true },
  )
    .addOption(new Option('--model <kind>', 'DiT (LightningDiT) or DiT^DH (DiT body + wide DDT head)').choices(['dit', 'ditdh']))
    .option('--hidden <w[,h]>', 'width (DiT) or body,head widths (DiT^DH)', listArg('--hidden'))
    .option('--depth <d[,h]>', 'depth (DiT) or body,head depths', listArg('--depth'))
    .option('--heads <n[,h]>', 'attention heads (DiT) or body,head heads', listArg('--heads'))
    .option('--allow-narrow', 'build a model narrower than the token dimension anyway (the paper §4.1 shows it cannot fit; for ablations)')
    .addOption(new Option('--time-dist <kind>', 'training time distribution').choices(['uniform', 'logit-normal']))
    .option('--no-shift', 'switch the dimension-dependent time shift off (ablation)')
    .option(
      '--no-token-cache',
      "encode every batch with the frozen encoder instead of caching the training set's tokens once in DIR/token-cache",
    )
    .option('--shift-base <n>', 'base dimension n of the shift α = √(m/n)', numArg('--shift-base'))
    .option('--label-dropout <p>', 'label dropout probability (CFG null class)', numArg('--label-dropout'))
    .option('--clip <x>', 'gradient-norm clipping (0 = off)', numArg('--clip'))
    .option('--ema <d>', 'EMA decay', numArg('--ema'))
    .action(async (o) => {
      process.exitCode = await trainDiTCommand(o);
    });

  addPretrainCommand(program);

  program
    .command('sample')
    .description('images from a trained run: Euler or Heun on the shifted grid, CFG or AutoGuidance, PNG grids + raw samples')
    .requiredOption('--run <dir>', 'the run folder')
    .option('--config <file>', "JSON configuration overriding the run's config.json")
    .addOption(new Option('--sampler <kind>', 'ODE solver').choices(['euler', 'heun']))
    .option('--steps <n>', 'integration steps', intArg('--steps'))
    .option('--count <n>', 'images (class-balanced labels)', intArg('--count'))
    .addOption(
      new Option('--guidance <kind>', 'none, classifier-free (cfg) or AutoGuidance (auto, needs --guide)').choices(['none', 'cfg', 'auto']),
    )
    .option('--scale <s>', 'guidance scale', numArg('--scale'))
    .option('--interval <lo,hi>', 'guide only for t in [lo, hi]', pairArg('--interval'))
    .option('--guide <checkpoint>', 'AutoGuidance: a weaker DiT checkpoint folder, e.g. DIR/checkpoints/dit-00000050')
    .option('--checkpoint <dir>', "DiT checkpoint folder to sample from (default: the run's latest)")
    .option('--tag <name>', 'output folder name under DIR/samples/')
    .option('--raw-weights', 'use the trained weights instead of their EMA')
    .option('--seed <n>', 'sampling seed', intArg('--seed'))
    .action(async (o) => {
      process.exitCode = await sampleCommand(o);
    });

  registerProbeCommand(program);

  program
    .command('report')
    .description("(re)write the run's self-contained report.html")
    .requiredOption('--run <dir>', 'the run folder')
    .action(async (o) => {
      process.exitCode = await reportCommand(o);
    });

  addCommonOptions(
    program
      .command('demo')
      .description(
        'the whole pipeline in one run folder: MAE encoder pretraining (cached in encoders/ next to the run folder), stage 1, stage 2, sampling, report (preset cpu on a software adapter, gpu-s on a GPU)',
      )
      .option('--run <dir>', 'run folder (default runs/demo-<time>)'),
    { runRequired: false, stageFlags: false },
  )
    .option('--steps <n>', 'steps of each stage', intArg('--steps'))
    .option('--decoder-steps <n>', 'stage 1 steps', intArg('--decoder-steps'))
    .option('--dit-steps <n>', 'stage 2 steps', intArg('--dit-steps'))
    .option('--batch <n>', 'batch size of both stages', intArg('--batch'))
    .option('--resume', 'continue an interrupted demo in --run')
    .option('--no-probe', "skip the encoder's linear probe (pretrained and random-initialised)")
    .option(
      '--probe-images <train,test>',
      'linear-probe training and test images (default 2000,1000; preset tiny 100,50)',
      intPairArg('--probe-images'),
    )
    .option('--no-eval', 'skip rFID / gFID / KID / precision / recall')
    .option(
      '--eval-images <n>',
      'reconstructions and samples evaluated (default 24 on a software adapter, 1000 on a GPU, 2 with preset tiny)',
      intArg('--eval-images'),
    )
    .action(async (o) => {
      process.exitCode = await demoCommand(o);
    });

  registerEvalCommand(program);
  return program;
}

/** A user error is one line; RAE_DEBUG=1 adds the stack for bug reports. */
function fail(err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err);
  console.error(`rae: ${msg.split('\n').join('; ')}`);
  if (process.env.RAE_DEBUG && err instanceof Error) console.error(err.stack);
  process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
}

build().parseAsync(process.argv).catch(fail);
