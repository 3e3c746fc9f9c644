/** A one-line progress report for long loops: step/total, rate, ETA and the latest metrics. */

export class Progress {
  private start = performance.now();
  private lastPrint = 0;
  constructor(
    readonly label: string,
    readonly total: number,
    private out: (line: string) => void = (l) => process.stdout.write(l),
    private minIntervalMs = 1000,
  ) {}

  update(step: number, metrics: Record<string, number | string> = {}, force = false): void {
    const now = performance.now();
    if (!force && step < this.total && now - this.lastPrint < this.minIntervalMs) return;
    this.lastPrint = now;
    const secs = (now - this.start) / 1000;
    const rate = step / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (this.total - step) / rate : 0;
    const m = Object.entries(metrics)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(3) : v.toFixed(4)) : v}`)
      .join('  ');
    const tty = process.stdout.isTTY;
    this.out(
      `${tty ? '\r' : ''}${this.label} ${step}/${this.total}  ${rate.toFixed(2)} it/s  eta ${eta.toFixed(0)}s  ${m}${tty && step < this.total ? '' : '\n'}`,
    );
  }

  elapsedSeconds(): number {
    return (performance.now() - this.start) / 1000;
  }
}
