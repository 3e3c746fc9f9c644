#!/usr/bin/env node
/** `rae <command>`: info, demo, bench. */
import { runDemo } from './demo.js';
import { runInfo } from './info.js';

const USAGE = `usage: rae <command> [options]

commands:
  info     adapter, features, limits, and a kernel self-check against the CPU reference
  demo     the RAE pipeline end to end on CIFAR-10: encoder → decoder → DiT^DH → samples
           options: --quick --data PATH --out DIR --encoder HF_SNAPSHOT_DIR --per-class N
                    --decoder-steps N --dit-steps N --batch N --samples N --sample-steps N --cfg S --seed N
  help     this text`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'info':
      return runInfo(rest);
    case 'demo':
      return runDemo(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return cmd === undefined ? 1 : 0;
    default:
      console.error(`rae: unknown command '${cmd}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`rae: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
