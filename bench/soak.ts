/**
 * `npm run soak -- --minutes N [--json FILE]`: runs the soak loop (bench/soak-loop.ts) for N
 * minutes, printing resident memory, live GPU bytes and tensors and the pool's cached bytes
 * every ~10 s, then a table (after warm-up / end / max) and one verdict line. Exits 1 when memory
 * grew beyond the tolerances after warm-up, 2 on bad arguments, 130 when interrupted (Ctrl-C
 * stops at the end of the current cycle and still prints the table so far).
 */
import { writeFileSync } from 'node:fs';
import { init, runtime, shutdown } from '../src/gpu/runtime.js';
import { runSoak, type SoakResult, type SoakSample } from './soak-loop.js';

interface Args {
  minutes: number;
  json?: string;
  every: number;
  maxInFlight?: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { minutes: 2, every: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--minutes') args.minutes = Number(value());
    else if (a === '--json') args.json = value();
    else if (a === '--every') args.every = Number(value());
    else if (a === '--max-in-flight') args.maxInFlight = Number(value());
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: npm run soak -- [--minutes N (default 2)] [--json FILE] [--every SECONDS between progress lines (default 10)] [--max-in-flight COMMANDS (init option; default 32768)]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (try --help)`);
  }
  if (!(args.minutes > 0)) throw new Error(`--minutes must be a positive number, got ${args.minutes}`);
  if (args.maxInFlight !== undefined && !(Number.isInteger(args.maxInFlight) && args.maxInFlight > 0))
    throw new Error(`--max-in-flight must be a positive integer, got ${args.maxInFlight}`);
  if (!(args.every > 0)) throw new Error(`--every must be a positive number of seconds, got ${args.every}`);
  return args;
}

const mb = (b: number) => (b / 2 ** 20).toFixed(1);

function progressLine(s: SoakSample, dps: number): string {
  return [
    `${s.seconds.toFixed(0).padStart(5)} s`,
    `cycle ${String(s.cycle).padStart(5)}`,
    `rss ${mb(s.rssBytes).padStart(7)} MB (js ${mb(s.heapBytes)})`,
    `live ${mb(s.liveBytes).padStart(6)} MB / ${s.liveTensors} tensors`,
    `pool ${mb(s.pooledBytes).padStart(6)} MB`,
    `${dps.toFixed(0)} dispatches/s`,
    s.warm ? '' : '(warm-up)',
  ].join('  ');
}

function table(r: SoakResult): string {
  if (!r.samples.length) return '(no cycle finished)';
  // Interrupted during warm-up: show the whole series so far.
  const from = Math.max(r.baseline, 0);
  const after = r.samples.slice(from);
  const b = after[0];
  const e = after[after.length - 1];
  const rows: [string, (s: SoakSample) => number, (v: number) => string][] = [
    ['RSS (MB)', (s) => s.rssBytes, mb],
    ['JS heap (MB)', (s) => s.heapBytes, mb],
    ['live GPU (MB)', (s) => s.liveBytes, mb],
    ['live tensors', (s) => s.liveTensors, String],
    ['pool cached (MB)', (s) => s.pooledBytes, mb],
    ['buffers created', (s) => s.buffersCreated, String],
  ];
  const cells = [['', r.baseline < 0 ? 'first (warm-up)' : 'after warm-up', 'end', 'max', 'end - start']];
  for (const [name, get, fmt] of rows) {
    const max = Math.max(...after.map(get));
    cells.push([name, fmt(get(b)), fmt(get(e)), fmt(max), fmt(get(e) - get(b))]);
  }
  const widths = cells[0].map((_, j) => Math.max(...cells.map((row) => row[j].length)));
  const lines = cells.map((row) => row.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  '));
  const warm =
    r.baseline < 0
      ? 'still warming up'
      : `${after.length} after warm-up at ${b.seconds.toFixed(0)} s, ${r.dispatchesPerSecond.toFixed(0)} dispatches/s since`;
  lines.push(`cycles ${r.cycles} (${warm})`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`soak: ${(e as Error).message}`);
    return 2;
  }
  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130); // a second Ctrl-C does not wait for the cycle
    interrupted = true;
    console.log('\nsoak: interrupted; stopping after this cycle (Ctrl-C again to quit at once)');
  });
  await init(args.maxInFlight ? { maxInFlight: args.maxInFlight } : {});
  const rt = runtime();
  const s = rt.adapterSummary;
  console.log(
    `soak: ${args.minutes} min on ${s.description || s.device} (${s.backend}); memory budget ${rt.pool.limit === Infinity ? 'none' : `${mb(rt.pool.limit)} MB`}, in-flight bound ${rt.inFlight.maxCommands} commands`,
  );
  const tty = process.stdout.isTTY;
  let lastPrint = -Infinity;
  let lastLine: SoakSample | undefined;
  const result = await runSoak({
    seconds: args.minutes * 60,
    shouldStop: () => interrupted,
    onSample: (smp) => {
      // Dispatches per second since the previous printed line.
      const dps = (smp.dispatches - (lastLine?.dispatches ?? 0)) / (smp.seconds - (lastLine?.seconds ?? 0));
      if (smp.seconds - lastPrint >= args.every || (lastLine && !lastLine.warm && smp.warm)) {
        if (tty) process.stdout.write('\r\x1b[K');
        console.log(progressLine(smp, dps));
        lastPrint = smp.seconds;
        lastLine = smp;
      } else if (tty) process.stdout.write(`\r\x1b[K  cycle ${smp.cycle} at ${smp.seconds.toFixed(0)} s`);
    },
  });
  if (tty) process.stdout.write('\r\x1b[K');
  console.log(`\n${table(result)}`);
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify({ adapter: s, minutes: args.minutes, ...result }, null, 1)}\n`);
    console.log(`series written to ${args.json}`);
  }
  shutdown();
  if (result.stopped) {
    console.log(`soak: INTERRUPTED after ${result.cycles} cycles; so far ${result.verdict}`);
    return 130;
  }
  console.log(`soak: ${result.verdict}`);
  return result.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    console.log(`soak: FAIL: ${(e as Error)?.message ?? e}`.split('\n')[0]);
    process.exit(1);
  },
);
