/**
 * Per-dispatch GPU time from timestamp queries. Each profiled dispatch gets its own compute pass
 * with beginning/end writes; results are resolved at submit and read back asynchronously.
 */
export interface OpTiming {
  label: string;
  calls: number;
  totalMs: number;
}

export class Profiler {
  private querySet: GPUQuerySet;
  private resolveBuf: GPUBuffer;
  private labels: string[] = [];
  private inflight: Promise<void>[] = [];
  private totals = new Map<string, OpTiming>();

  constructor(
    private device: GPUDevice,
    private capacity: number,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * capacity });
    this.resolveBuf = device.createBuffer({ size: 16 * capacity, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  }

  nextWrites(label: string): GPUComputePassTimestampWrites | undefined {
    if (this.labels.length >= this.capacity) return undefined;
    const i = this.labels.length;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  private readBuf: GPUBuffer | null = null;
  private readLabels: string[] = [];

  resolve(encoder: GPUCommandEncoder): void {
    if (this.labels.length === 0) return;
    const n = this.labels.length;
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuf, 0);
    this.readBuf = this.device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, 16 * n);
    this.readLabels = this.labels;
    this.labels = [];
  }

  afterSubmit(): void {
    const buf = this.readBuf;
    const labels = this.readLabels;
    if (!buf) return;
    this.readBuf = null;
    this.inflight.push(
      buf.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigUint64Array(buf.getMappedRange());
        labels.forEach((label, i) => {
          const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
          const op = label.split('|')[0];
          const e = this.totals.get(op) ?? { label: op, calls: 0, totalMs: 0 };
          e.calls++;
          e.totalMs += ms > 0 && ms < 1e6 ? ms : 0;
          this.totals.set(op, e);
        });
        buf.unmap();
        buf.destroy();
      }),
    );
  }

  /** Waits for outstanding timings; returns them sorted by total time. */
  async report(): Promise<OpTiming[]> {
    await Promise.all(this.inflight.splice(0));
    return [...this.totals.values()].sort((a, b) => b.totalMs - a.totalMs);
  }

  reset(): void {
    this.totals.clear();
  }
}
