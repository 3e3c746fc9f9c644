#!/usr/bin/env node
/** `rae <command>`: info, demo, bench. */
import { runInfo } from './info.js';

const USAGE = `usage: rae <command> [options]

commands:
  info     adapter, features, limits, and a kernel self-check against the CPU reference
  help     this text`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'info':
      return runInfo(rest);
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
