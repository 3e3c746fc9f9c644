/** Errors raised by the GPU runtime. Each names the operation that caused it. */

export class GpuError extends Error {
  constructor(
    message: string,
    readonly op?: string,
  ) {
    super(op ? `${op}: ${message}` : message);
    this.name = 'GpuError';
  }
}

/** No WebGPU adapter could be found; the message lists everything tried. */
export class NoAdapterError extends GpuError {
  constructor(readonly attempts: string[]) {
    super(
      [
        'no WebGPU adapter found. Tried:',
        ...attempts.map((a) => `  - ${a}`),
        'To run without a GPU install Mesa lavapipe (software Vulkan). On Debian 12:',
        '  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list',
        '  apt-get update && apt-get install -y libvulkan1 && apt-get install -y -t bookworm-backports mesa-vulkan-drivers',
        "(Debian 12's own Mesa 22.x lavapipe is rejected by Dawn; `npm run setup` does this for you.)",
        'Or pick an adapter explicitly with init({ adapter }) / RAE_ADAPTER, or an ICD with VK_ICD_FILENAMES.',
      ].join('\n'),
    );
    this.name = 'NoAdapterError';
  }
}

export class DeviceLostError extends GpuError {
  /** `reason` and `detail` are Dawn's GPUDeviceLostInfo.reason and .message. */
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`device lost (${reason}): ${detail}`);
    this.name = 'DeviceLostError';
  }
}

/** Live buffers of one label and size, as named in an out-of-memory report. */
export interface LiveAllocation {
  label: string;
  /** Bytes of each buffer. */
  bytes: number;
  count: number;
}

/** What an out-of-memory report names: the request, the budget and where the memory is. */
export interface OutOfMemoryReport {
  /** Bytes asked for (before rounding up to the pool's bucket). */
  requestedBytes: number;
  label?: string;
  /** The memory budget in bytes (Infinity when none is set). */
  limit: number;
  liveBytes: number;
  liveBuffers: number;
  /** Free buffers the pool still held when the error was raised (after releasing what it could). */
  cachedBytes: number;
  /** The largest live allocations (grouped by label and size), most bytes first. */
  largest: LiveAllocation[];
  /** Where the refusal came from: the runtime's budget or the WebGPU device itself. */
  source: 'budget' | 'device';
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return 'unlimited';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/**
 * An allocation the memory budget (or the device) refused. The pool's cached free buffers were
 * released and the allocation retried once before this was raised.
 */
export class GpuOutOfMemoryError extends GpuError {
  readonly requestedBytes: number;
  readonly label?: string;
  readonly limit: number;
  readonly liveBytes: number;
  readonly liveBuffers: number;
  readonly cachedBytes: number;
  readonly largest: LiveAllocation[];
  readonly source: 'budget' | 'device';

  constructor(r: OutOfMemoryReport) {
    const budget = Number.isFinite(r.limit) ? `; budget ${formatBytes(r.limit)}` : '';
    const what =
      r.source === 'budget'
        ? `allocating ${formatBytes(r.requestedBytes)} (${r.requestedBytes} bytes)${r.label ? ` for '${r.label}'` : ''} would exceed the memory budget of ${formatBytes(r.limit)}`
        : r.requestedBytes > 0
          ? `the WebGPU device refused ${formatBytes(r.requestedBytes)} (${r.requestedBytes} bytes)${r.label ? ` for '${r.label}'` : ''}${budget}`
          : `the WebGPU device reported ${r.label ?? 'an out-of-memory error'}${budget}`;
    const largest = r.largest.length
      ? `; largest live: ${r.largest.map((a) => `${a.label} ${formatBytes(a.bytes)}${a.count > 1 ? ` × ${a.count}` : ''}`).join(', ')}`
      : '';
    super(
      `out of GPU memory: ${what}. Live: ${formatBytes(r.liveBytes)} in ${r.liveBuffers} buffers; ` +
        `cached free in the pool: ${formatBytes(r.cachedBytes)} (cached buffers were released before failing)${largest}. ` +
        'Dispose tensors you no longer need (or run the work in scope()), use smaller batches, or set the budget with init({ memoryLimit }) / RAE_MEMORY_LIMIT.',
      'allocate',
    );
    this.name = 'GpuOutOfMemoryError';
    this.requestedBytes = r.requestedBytes;
    this.label = r.label;
    this.limit = r.limit;
    this.liveBytes = r.liveBytes;
    this.liveBuffers = r.liveBuffers;
    this.cachedBytes = r.cachedBytes;
    this.largest = r.largest;
    this.source = r.source;
  }
}

/**
 * Too much GPU work was queued without the JavaScript event loop getting a turn. Dawn's Node
 * binding reclaims finished work only while an asynchronous operation is pending and the event
 * loop runs, so a loop that never awaits would grow memory until the process crashes.
 */
export class InFlightLimitError extends GpuError {
  constructor(
    readonly inFlight: number,
    readonly limit: number,
    what: string,
    op?: string,
  ) {
    super(
      `${what} submitted but not yet known to be finished (bound: ${limit}). Dawn reclaims finished GPU work only while ` +
        'JavaScript awaits, so a loop that records GPU work without awaiting grows memory until the process crashes. ' +
        'In such a loop, `await runtime().yieldIfBusy()` once per iteration (it returns at once unless the queue is deep), ' +
        'or await a read-back (`await t.toArray()`) or `await runtime().sync()` every few iterations.',
      op,
    );
    this.name = 'InFlightLimitError';
  }
}
