/**
 * Bounds the GPU work that is submitted but not yet known to be finished.
 *
 * Dawn frees what a finished submit held (command buffers, bind groups, staging memory) only
 * when the instance processes events. Its Node binding calls ProcessEvents from a setImmediate
 * callback, and schedules that callback only while some asynchronous operation (mapAsync,
 * onSubmittedWorkDone, popErrorScope, …) is pending. Measured on lavapipe: a loop that records
 * and submits without awaiting grows ~55 MB per 10,000 dispatches and segfaults near 61,000
 * dispatches whatever the submit size; yielding to the event loop alone does not help (nothing is
 * pending, so nothing is processed), but yielding while one onSubmittedWorkDone is pending keeps
 * RSS flat.
 *
 * So the tracker keeps one completion marker pending whenever work is in flight — any turn of the
 * event loop then lets Dawn reclaim — and counts commands and upload bytes submitted after the
 * last marker that resolved. Synchronous code cannot be made to wait, so the runtime refuses to
 * record beyond the bound (InFlightLimitError) instead of letting the process crash.
 */
export class InFlightTracker {
  private submittedCommands = 0;
  private submittedBytes = 0;
  private completedCommands = 0;
  private completedBytes = 0;
  private marker: Promise<void> | null = null;
  /** The submitted counts the pending marker covers. */
  private markerUpTo: [number, number] = [0, 0];
  private stopped = false;

  constructor(
    private readonly queue: GPUQueue,
    /** Commands (dispatches, copies, uploads) allowed in flight. */
    readonly maxCommands: number,
    /** Upload bytes allowed in flight (Dawn stages them until the submit finishes). */
    readonly maxBytes: number,
  ) {}

  get commands(): number {
    return this.submittedCommands - this.completedCommands;
  }

  get bytes(): number {
    return this.submittedBytes - this.completedBytes;
  }

  /** Records a submit and makes sure a completion marker is pending behind it. */
  onSubmit(commands: number, bytes: number): void {
    this.submittedCommands += commands;
    this.submittedBytes += bytes;
    if (!this.marker) this.arm();
  }

  /** Everything submitted so far is known to be finished (a sync or a read-back resolved). */
  allDone(): void {
    this.completedCommands = this.submittedCommands;
    this.completedBytes = this.submittedBytes;
  }

  /** Snapshot to pass to doneUpTo() once a later wait resolves. */
  snapshot(): [number, number] {
    return [this.submittedCommands, this.submittedBytes];
  }

  doneUpTo([commands, bytes]: [number, number]): void {
    this.completedCommands = Math.max(this.completedCommands, commands);
    this.completedBytes = Math.max(this.completedBytes, bytes);
  }

  /** Waits (letting the event loop run) until at most `commands` and `bytes` are in flight. */
  async drainTo(commands: number, bytes: number): Promise<void> {
    while ((this.commands > commands || this.bytes > bytes) && this.marker) await this.marker;
  }

  /**
   * Waits until everything submitted so far has finished. Reuses the pending marker when it
   * already covers all submitted work (the usual case right after a submit): a second
   * onSubmittedWorkDone per sync doubled the cost of a submit-and-wait on lavapipe.
   */
  async waitAll(): Promise<void> {
    const upTo = this.snapshot();
    const covered = this.marker && this.markerUpTo[0] === upTo[0] && this.markerUpTo[1] === upTo[1];
    if (covered) await this.marker;
    else await this.queue.onSubmittedWorkDone();
    this.doneUpTo(upTo);
  }

  /** Stops re-arming markers (the device is being destroyed). */
  stop(): void {
    this.stopped = true;
  }

  private arm(): void {
    if (this.stopped) return;
    const upTo = this.snapshot();
    this.markerUpTo = upTo;
    this.marker = this.queue.onSubmittedWorkDone().then(
      () => {
        this.marker = null;
        this.doneUpTo(upTo);
        if (this.commands > 0 || this.bytes > 0) this.arm();
      },
      () => {
        // Device lost or destroyed: the runtime reports that on its next call.
        this.marker = null;
      },
    );
  }
}
