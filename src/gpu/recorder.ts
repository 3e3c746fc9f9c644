/**
 * Recording a step once and replaying it. While a Recorder is attached, the runtime reports every
 * command it records (dispatch, copy) and the pool every buffer it hands out or takes back, so
 * each command's operands can be named by *value* (one lifetime of a buffer) rather than by the
 * buffer, which the pool reuses. finish() turns the recording into a ReplayProgram:
 *
 * - values created and released inside the step (intermediates) get storage planned by liveness:
 *   two values share a buffer when their first-to-last-use ranges do not overlap;
 * - declared inputs get buffers of their own that a replay copies the new inputs into;
 * - everything else (parameters, optimizer state, outputs) stays in the buffer it was in;
 * - bind groups and one uniform buffer with every dispatch's parameters are built once.
 *
 * A replay records only setPipeline / setBindGroup / dispatch (and the recorded copies), after
 * running the replay hooks (host state that a step advances: the generator's stream, the
 * optimizer's step count) and patching the uniform words marked dynamic from their callbacks.
 */
import type { PooledBuffer } from './buffer-pool.js';
import { GpuError } from './errors.js';
import type { CompiledKernel, KernelSource } from './pipeline-cache.js';
import type { Profiler } from './profiler.js';

/** A uniform word whose value changes between replays: `value()` gives its 32 bits then. */
export interface DynamicWord {
  /** Index of the 32-bit word in the dispatch's parameters. */
  word: number;
  value: () => number;
}

/** GPUBufferUsage.UNIFORM | COPY_DST (spec values; the globals may not exist before Dawn loads). */
const UNIFORM_COPY_DST = 0x0040 | 0x0008;

type ValueKind = 'external' | 'temp' | 'input';

interface Value {
  kind: ValueKind;
  /** The buffer the value lived in while recording. */
  buffer: PooledBuffer;
  /** Commands that use it first and last (−1: never used). */
  first: number;
  last: number;
  /** temp only: released before the recording ended. */
  released: boolean;
  /** input only: its index. */
  input?: number;
  /** Why it cannot be replayed, when found (an external value released by the step after use). */
  problem?: string;
}

/** A recorded dispatch; a fusion pass may make new ones (kernel null: compiled when the program is built). */
export interface DispatchCmd {
  kind: 'dispatch';
  kernel: CompiledKernel | null;
  src: KernelSource;
  key: string;
  values: number[];
  workgroups: [number, number, number];
  params: Uint8Array | null;
  dynamic: readonly DynamicWord[] | null;
}

export interface CopyCmd {
  kind: 'copy';
  src: number;
  srcOffset: number;
  dst: number;
  dstOffset: number;
  bytes: number;
}

export type Cmd = DispatchCmd | CopyCmd;

/** What a fusion pass may know of a value: whether it lives only inside the step. */
export interface ValueInfo {
  /** Created and released inside the step: no one outside sees it. */
  intermediate: boolean;
}

/**
 * Rewrites the recorded commands (e.g. fusing chains of elementwise maps: src/kernels/fusion.ts).
 * It may drop dispatches whose results only feed others it replaces, never change what the
 * values that outlive the step end up holding.
 */
export type FusionPass = (cmds: readonly Cmd[], values: readonly ValueInfo[]) => Cmd[];

/** What finish() needs from the runtime to build and run a program. */
export interface ReplayHost {
  readonly device: GPUDevice;
  readonly uniformSlot: number;
  /** Compiles (or finds) the pipeline of a kernel a fusion pass generated. */
  kernel(src: KernelSource): CompiledKernel;
  allocate(bytes: number, label: string): PooledBuffer;
  release(b: PooledBuffer): void;
  /** Pins buffers: `onLost` runs when one is released or destroyed while pinned. */
  pin(buffers: Iterable<PooledBuffer>, onLost: (b: PooledBuffer) => void): () => void;
  /** Submits the open eager batch, then the given commands, accounting for them. */
  submitReplay(encode: (enc: GPUCommandEncoder) => number): void;
  /** Per-dispatch GPU timing (RAE_PROFILE=1): a replay then gives each dispatch a pass with timestamps. */
  readonly profiler?: Profiler | null;
}

export class Recorder {
  private readonly values: Value[] = [];
  private readonly current = new Map<PooledBuffer, number>();
  private readonly cmds: Cmd[] = [];
  private readonly hooks: (() => void)[] = [];
  private readonly problems: string[] = [];
  private inputCount = 0;

  /** Declares `b` as input `i` (its content is replaced at each replay). */
  declareInput(b: PooledBuffer): number {
    if (this.current.has(b)) throw new GpuError('an input buffer was declared twice (two inputs share storage)', 'compileStep');
    const i = this.inputCount++;
    this.current.set(b, this.newValue('input', b, i));
    return i;
  }

  /** Runs `fn` at each replay, in recording order, before dynamic words are read. */
  onReplay(fn: () => void): void {
    this.hooks.push(fn);
  }

  /** Reports something the step did that a replay could not repeat; finish() throws it. */
  refuse(what: string): void {
    this.problems.push(what);
  }

  acquired(b: PooledBuffer): void {
    this.current.set(b, this.newValue('temp', b));
  }

  released(b: PooledBuffer): void {
    const id = this.current.get(b);
    if (id === undefined) return; // an external buffer the step never used: nothing recorded reads it
    const v = this.values[id];
    this.current.delete(b);
    if (v.kind === 'temp') v.released = true;
    else if (v.kind === 'external')
      v.problem = `the step released a buffer it used that was allocated before it (${b.label ?? 'unlabelled'}, ${b.size} bytes): pass that tensor as an input, or dispose it outside the step`;
  }

  dispatch(
    kernel: CompiledKernel,
    src: KernelSource,
    buffers: PooledBuffer[],
    workgroups: [number, number, number],
    params: ArrayBufferView | undefined,
    dynamic: readonly DynamicWord[] | undefined,
  ): void {
    const n = this.cmds.length;
    const bytes = params ? new Uint8Array(params.buffer, params.byteOffset, params.byteLength).slice() : null;
    if (dynamic && bytes) {
      // The callbacks must give what was packed now, or a replay would compute something else.
      const words = new Uint32Array(bytes.buffer);
      for (const d of dynamic) {
        const v = d.value() >>> 0;
        if (words[d.word] !== v)
          throw new GpuError(`dynamic uniform word ${d.word} gives ${v} but ${words[d.word]} was packed (internal error)`, src.key);
      }
    }
    this.cmds.push({
      kind: 'dispatch',
      kernel,
      src,
      key: src.key,
      values: buffers.map((b) => this.use(b, n)),
      workgroups,
      params: bytes,
      dynamic: dynamic?.length ? dynamic : null,
    });
  }

  copy(src: PooledBuffer, srcOffset: number, dst: PooledBuffer, dstOffset: number, bytes: number): void {
    const n = this.cmds.length;
    this.cmds.push({ kind: 'copy', src: this.use(src, n), srcOffset, dst: this.use(dst, n), dstOffset, bytes });
  }

  private newValue(kind: ValueKind, buffer: PooledBuffer, input?: number): number {
    this.values.push({ kind, buffer, first: -1, last: -1, released: false, input });
    return this.values.length - 1;
  }

  private use(b: PooledBuffer, cmd: number): number {
    let id = this.current.get(b);
    if (id === undefined) {
      id = this.newValue('external', b);
      this.current.set(b, id);
    }
    const v = this.values[id];
    if (v.first < 0) v.first = cmd;
    v.last = cmd;
    return id;
  }

  /** Builds the program; throws naming what the step did that cannot be replayed. */
  finish(host: ReplayHost, fusion?: FusionPass): ReplayProgram {
    const problems = [...this.problems, ...this.values.flatMap((v) => (v.problem && v.first >= 0 ? [v.problem] : []))];
    if (problems.length) throw new GpuError(`this step cannot be replayed:\n  ${problems.join('\n  ')}`, 'compileStep');
    let cmds = this.cmds;
    if (fusion) {
      cmds = fusion(
        cmds,
        this.values.map((v) => ({ intermediate: v.kind === 'temp' && v.released })),
      );
      for (const c of cmds) if (c.kind === 'dispatch' && !c.kernel) c.kernel = host.kernel(c.src);
      // Lifetimes follow the rewritten list.
      for (const v of this.values) v.first = v.last = -1;
      cmds.forEach((c, n) => {
        const ids = c.kind === 'dispatch' ? c.values : [c.src, c.dst];
        for (const id of ids) {
          const v = this.values[id];
          if (v.first < 0) v.first = n;
          v.last = n;
        }
      });
    }
    return new ReplayProgram(host, this.values, cmds, this.hooks, this.inputCount);
  }
}

/** Planned storage: which buffer each value uses during a replay. */
interface Plan {
  physical: PooledBuffer[];
  /** Buffers the program allocated (intermediates and inputs), released by dispose(). */
  owned: PooledBuffer[];
  /** Bytes of the owned buffers (the planned intermediates and input slots). */
  plannedBytes: number;
  /** Bytes the intermediates would take without sharing. */
  unplannedBytes: number;
}

function planStorage(host: ReplayHost, values: Value[]): Plan {
  const physical: PooledBuffer[] = new Array(values.length);
  const owned: PooledBuffer[] = [];
  let unplannedBytes = 0;
  // Intermediates by first use; a buffer is free again after the last use of its last value.
  const temps = values.map((v, i) => ({ v, i })).filter(({ v }) => v.kind === 'temp' && v.released && v.first >= 0);
  temps.sort((a, b) => a.v.first - b.v.first);
  const pool: { buffer: PooledBuffer; freeAfter: number }[] = [];
  for (const { v, i } of temps) {
    unplannedBytes += v.buffer.size;
    let best = -1;
    for (let k = 0; k < pool.length; k++) {
      const p = pool[k];
      // Strictly after: a command that reads one value and writes another must not alias them.
      if (p.freeAfter < v.first && p.buffer.size >= v.buffer.size && (best < 0 || p.buffer.size < pool[best].buffer.size)) best = k;
    }
    if (best < 0) {
      const b = host.allocate(v.buffer.size, 'compiled step: intermediate');
      owned.push(b);
      pool.push({ buffer: b, freeAfter: v.last });
      best = pool.length - 1;
    }
    pool[best].freeAfter = v.last;
    physical[i] = pool[best].buffer;
  }
  values.forEach((v, i) => {
    if (physical[i]) return;
    if (v.kind === 'input') {
      const b = host.allocate(v.buffer.size, `compiled step: input ${v.input}`);
      owned.push(b);
      physical[i] = b;
    } else physical[i] = v.buffer;
  });
  return { physical, owned, plannedBytes: owned.reduce((s, b) => s + b.size, 0), unplannedBytes };
}

export interface ReplayStats {
  dispatches: number;
  copies: number;
  /** Bytes of buffers the program owns: planned intermediates and input slots. */
  plannedBytes: number;
  /** What the intermediates alone would take with one buffer each. */
  unplannedBytes: number;
  /** Uniform words patched per replay. */
  dynamicWords: number;
}

let livePlannedBytes = 0;
/** Bytes planned by the replay programs alive now (intermediates and input slots). */
export function plannedBytes(): number {
  return livePlannedBytes;
}

export class ReplayProgram {
  private readonly plan: Plan;
  private readonly uniformCpu: Uint8Array;
  private readonly uniformGpu: GPUBuffer;
  /** Bytes at the start of the uniform buffer holding the dispatches with dynamic words. */
  private readonly dynamicBytes: number;
  private readonly patches: { byte: number; value: () => number }[] = [];
  private readonly ops: (
    | { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; offsets: number[] | null; wg: [number, number, number]; label: string }
    | CopyOp
  )[] = [];
  private readonly inputSlots: PooledBuffer[] = [];
  private unpin: () => void;
  private lost: string | null = null;
  private disposed = false;
  readonly stats: ReplayStats;
  /** Bytes of the buffers a replay binds that the program does not own (parameters, state, outputs). */
  readonly pinnedBytes: number;

  constructor(
    private readonly host: ReplayHost,
    values: Value[],
    cmds: Cmd[],
    private readonly hooks: (() => void)[],
    inputCount: number,
  ) {
    this.plan = planStorage(host, values);
    const slot = host.uniformSlot;
    const dispatches = cmds.filter((c): c is DispatchCmd => c.kind === 'dispatch');
    // Dispatches with dynamic words first, so a replay rewrites one contiguous range.
    const order = [...dispatches.filter((d) => d.dynamic), ...dispatches.filter((d) => !d.dynamic && d.params)];
    const offsets = new Map<DispatchCmd, number>();
    order.forEach((d, i) => offsets.set(d, i * slot));
    this.dynamicBytes = dispatches.filter((d) => d.dynamic).length * slot;
    this.uniformCpu = new Uint8Array(Math.max(order.length, 1) * slot);
    for (const d of order) this.uniformCpu.set(d.params!, offsets.get(d)!);
    this.uniformGpu = host.device.createBuffer({
      label: 'compiled-step-uniforms',
      size: this.uniformCpu.byteLength,
      usage: UNIFORM_COPY_DST,
    });
    host.device.queue.writeBuffer(this.uniformGpu, 0, this.uniformCpu);
    const phys = this.plan.physical;
    for (const c of cmds) {
      if (c.kind === 'copy') {
        this.ops.push({
          copy: true,
          src: phys[c.src].buffer,
          srcOffset: c.srcOffset,
          dst: phys[c.dst].buffer,
          dstOffset: c.dstOffset,
          bytes: c.bytes,
        });
        continue;
      }
      const entries: GPUBindGroupEntry[] = c.values.map((id, binding) => ({ binding, resource: { buffer: phys[id].buffer } }));
      let dynamicOffsets: number[] | null = null;
      if (c.params) {
        const offset = offsets.get(c)!;
        // The layouts give the uniform a dynamic offset (pipeline-cache.ts).
        entries.push({ binding: entries.length, resource: { buffer: this.uniformGpu, offset: 0, size: slot } });
        dynamicOffsets = [offset];
        for (const w of c.dynamic ?? []) this.patches.push({ byte: offset + 4 * w.word, value: w.value });
      }
      const kernel = c.kernel!;
      const bindGroup = host.device.createBindGroup({ label: c.key, layout: kernel.layout, entries });
      this.ops.push({ pipeline: kernel.pipeline, bindGroup, offsets: dynamicOffsets, wg: c.workgroups, label: c.key });
    }
    for (let i = 0; i < inputCount; i++) {
      const id = values.findIndex((v) => v.kind === 'input' && v.input === i);
      this.inputSlots.push(phys[id]);
    }
    // Buffers the program does not own must outlive it: their release makes replays refuse.
    const pinned = new Set<PooledBuffer>();
    values.forEach((v, i) => {
      if (v.first >= 0 && (v.kind === 'external' || (v.kind === 'temp' && !v.released))) pinned.add(phys[i]);
    });
    let outside = 0;
    for (const b of pinned) outside += b.size;
    this.pinnedBytes = outside;
    for (const b of this.plan.owned) pinned.add(b);
    livePlannedBytes += this.plan.plannedBytes;
    this.unpin = host.pin(pinned, (b) => {
      this.lost ??= `a buffer the compiled step uses was released or destroyed (${b.label ?? 'unlabelled'}, ${b.size} bytes)`;
    });
    this.stats = {
      dispatches: dispatches.length,
      copies: cmds.length - dispatches.length,
      plannedBytes: this.plan.plannedBytes,
      unplannedBytes: this.plan.unplannedBytes,
      dynamicWords: this.patches.length,
    };
  }

  /** The buffer a replay reads input `i` from (copy the new input there before replay()). */
  inputBuffer(i: number): PooledBuffer {
    return this.inputSlots[i];
  }

  private words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

  /**
   * Replays the step. `copies` are recorded first (new inputs into their slots).
   */
  replay(copies: { src: PooledBuffer; srcOffset: number; dst: PooledBuffer; dstOffset: number; bytes: number }[]): void {
    if (this.disposed) throw new GpuError('the compiled step was disposed', 'replay');
    if (this.lost) throw new GpuError(`cannot replay: ${this.lost}`, 'replay');
    for (const h of this.hooks) h();
    if (this.patches.length) {
      if (this.words.length === 0) this.words = new Uint32Array(this.uniformCpu.buffer, 0, this.uniformCpu.byteLength / 4);
      for (const p of this.patches) this.words[p.byte / 4] = p.value() >>> 0;
      this.host.device.queue.writeBuffer(this.uniformGpu, 0, this.uniformCpu, 0, this.dynamicBytes);
    }
    const profiler = this.host.profiler;
    this.host.submitReplay((enc) => {
      let commands = 0;
      for (const c of copies) {
        enc.copyBufferToBuffer(c.src.buffer, c.srcOffset, c.dst.buffer, c.dstOffset, c.bytes);
        commands++;
      }
      let pass: GPUComputePassEncoder | null = null;
      let pipeline: GPUComputePipeline | null = null;
      for (const op of this.ops) {
        if ('copy' in op) {
          pass?.end();
          pass = null;
          enc.copyBufferToBuffer(op.src, op.srcOffset, op.dst, op.dstOffset, op.bytes);
        } else {
          if (profiler) {
            // Profiling: one pass per dispatch, timed (the eager path does the same).
            pass?.end();
            pass = enc.beginComputePass({ label: op.label, timestampWrites: profiler.nextWrites(op.label) });
            pipeline = null;
          } else if (!pass) {
            pass = enc.beginComputePass({ label: 'compiled-step' });
            pipeline = null;
          }
          // Each call into Dawn costs host time: the pipeline is set only when it changes.
          if (op.pipeline !== pipeline) pass.setPipeline((pipeline = op.pipeline));
          if (op.offsets) pass.setBindGroup(0, op.bindGroup, op.offsets);
          else pass.setBindGroup(0, op.bindGroup);
          pass.dispatchWorkgroups(op.wg[0], op.wg[1], op.wg[2]);
        }
        commands++;
      }
      pass?.end();
      return commands;
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    livePlannedBytes -= this.plan.plannedBytes;
    this.unpin();
    for (const b of this.plan.owned) this.host.release(b);
    this.uniformGpu.destroy();
  }
}

interface CopyOp {
  copy: true;
  src: GPUBuffer;
  srcOffset: number;
  dst: GPUBuffer;
  dstOffset: number;
  bytes: number;
}
