/**
 * compileStep(fn): a training step with static shapes, recorded once and then replayed.
 *
 *   const step = compileStep((x, y) => { …forward, backward(loss), opt.step(), opt.zeroGrad()…; return loss; });
 *   for (…) { opt.lr = lrAt(i); const loss = step(x, y); … }
 *
 * Call 1 runs fn eagerly (it creates lazily made state: optimizer moments, clip buffers, and
 * compiles the pipelines). Call 2 runs fn eagerly too while the runtime records its dispatches
 * and buffer lifetimes, and builds the replay program (src/gpu/recorder.ts): a static memory plan
 * for the intermediates, bind groups and uniforms made once. Later calls copy the inputs into the
 * program's input buffers and replay; fn does not run.
 *
 * What a replay repeats: every GPU command fn recorded, on the same parameters and state. What
 * changes per replay: the inputs (copied in), the global generator's draws (each draw takes the
 * next stream, as eagerly), and the scalars kernels mark dynamic (AdamW reads `lr` and its step
 * count then: set `opt.lr` *before* calling the step, not inside fn). Host logic inside fn does
 * not run again, so fn must take the same path every call; uploads of host data and read-backs
 * inside fn are refused when recording. Inputs must keep their shapes and dtypes (else an error).
 *
 * Outputs: the tensors fn returns (found in arrays and plain objects, like scope()) come back
 * from each call as new tensor objects over storage the program owns and rewrites at the next
 * call: read them before the next call. Disposing them is allowed (and cheap).
 */
import { runtime } from '../gpu/runtime.js';
import type { ReplayProgram, ReplayStats } from '../gpu/recorder.js';
import { byteSize, type DType } from '../core/dtype.js';
import { fmt } from '../core/shape.js';
import { fuseMaps } from '../kernels/fusion.js';
import { scope } from './scope.js';
import { type Storage, Tensor } from './tensor.js';

export interface CompileOptions {
  /** Names the step in errors. */
  name?: string;
  /** Eager calls before the recording (default 1: lazily created state exists by then). */
  warmup?: number;
  /**
   * When the step cannot be replayed (it uploads host data or reads back): called with the
   * reason, and the step stays eager from then on. Without it, that call throws.
   */
  onRefuse?: (reason: string) => void;
  /**
   * Rewrite the recorded dispatches into fewer (src/kernels/fusion.ts): elementwise maps merged
   * into multi-output kernels, repeated maps and dead zero fills dropped, reductions and ropes of
   * one layout paired. Off by default: with it, results may differ from the eager step in the
   * last bits (FMA contraction; 0 + x is x up to the sign of a zero).
   */
  fusion?: boolean;
}

export interface CompiledStepStats extends ReplayStats {
  /** Bytes of everything a replay binds: planned intermediates and inputs plus parameters, state and outputs. */
  peakBytes: number;
}

export interface CompiledStep<A extends Tensor[], R> {
  (...inputs: A): R;
  /** 'eager' during warm-up, then 'replay' once recorded. */
  readonly mode: 'eager' | 'replay';
  /** Replay figures (null before the recording). */
  stats(): CompiledStepStats | null;
  /** Frees the program's buffers; the parameters and state it used are untouched. */
  dispose(): void;
}

/** While a step is recorded: runs `fn` at each replay, before dynamic uniforms are read. */
export function onReplay(fn: () => void): void {
  const rt = runtime();
  if (rt.recording) rt.onReplay(fn);
}

interface InputSpec {
  shape: readonly number[];
  dtype: DType;
  offset: number;
}

interface OutputSpec {
  storage: Storage;
  shape: readonly number[];
  dtype: DType;
  strides: readonly number[];
  offset: number;
}

/** Replaces every tensor in arrays / plain objects of `v` through `f` (the structure scope() looks into). */
function mapTensors(v: unknown, f: (t: Tensor) => unknown): unknown {
  if (v instanceof Tensor) return f(v);
  if (Array.isArray(v)) return v.map((x) => mapTensors(x, f));
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapTensors(x, f)]));
  return v;
}

export function compileStep<A extends Tensor[], R>(fn: (...inputs: A) => R, opts: CompileOptions = {}): CompiledStep<A, R> {
  const name = opts.name ?? 'compiled step';
  let warmup = opts.warmup ?? 1;
  let program: ReplayProgram | null = null;
  let inputs: InputSpec[] = [];
  let outputs: OutputSpec[] = [];
  let template: unknown;
  let disposed = false;
  let refused = false;

  const checkInputs = (args: Tensor[]) => {
    args.forEach((t, i) => {
      if (!(t instanceof Tensor)) throw new TypeError(`${name}: input ${i} is not a Tensor`);
      if (!t.isContiguous) throw new TypeError(`${name}: input ${i} must be contiguous, got strides [${t.strides.join(', ')}]`);
    });
  };

  const runEager = (args: A): R => {
    const r = scope(() => fn(...args));
    if (r instanceof Promise) throw new TypeError(`${name}: the step function must be synchronous`);
    return r;
  };

  const record = (args: A): R => {
    const rt = runtime();
    const rec = rt.beginRecording();
    let result: R;
    try {
      for (const t of args) rec.declareInput(t.buffer);
      result = runEager(args);
      // A replay writes inputs into its own buffers, not into the tensors passed at the recording.
      mapTensors(result, (t) => {
        if (args.some((a) => a.buffer === t.buffer))
          throw new TypeError(`${name}: the step returns (a view of) one of its inputs; return a copy`);
      });
    } catch (e) {
      rt.endRecording(false);
      throw e;
    }
    try {
      program = rt.endRecording(true, opts.fusion ? fuseMaps : undefined);
    } catch (e) {
      // The eager run itself went through: its results stand; only the replay is refused.
      if (!opts.onRefuse) throw e;
      refused = true;
      opts.onRefuse((e as Error).message);
      return result;
    }
    inputs = args.map((t) => ({ shape: t.shape, dtype: t.dtype, offset: t.offset }));
    outputs = [];
    template = mapTensors(result, (t) => {
      t.storage.retain();
      outputs.push({ storage: t.storage, shape: t.shape, dtype: t.dtype, strides: t.strides, offset: t.offset });
      return new OutputRef(outputs.length - 1);
    });
    return result;
  };

  const replay = (args: A): R => {
    const p = program!;
    if (args.length !== inputs.length) throw new RangeError(`${name}: recorded with ${inputs.length} inputs, called with ${args.length}`);
    const copies = args.map((t, i) => {
      const s = inputs[i];
      if (t.dtype !== s.dtype || t.shape.length !== s.shape.length || t.shape.some((d, k) => d !== s.shape[k])) {
        throw new RangeError(
          `${name}: input ${i} is ${t.dtype} ${fmt(t.shape)} but the step was recorded with ${s.dtype} ${fmt(s.shape)}; shapes of a compiled step are static (compile another step for this shape)`,
        );
      }
      const bs = byteSize(t.dtype);
      return { src: t.buffer, srcOffset: t.offset * bs, dst: p.inputBuffer(i), dstOffset: s.offset * bs, bytes: t.size * bs };
    });
    p.replay(copies);
    // New tensor objects over the outputs' storage, so that the caller may dispose them.
    return mapOutputs(template, (i) => {
      const o = outputs[i];
      o.storage.retain();
      return new Tensor(o.storage, o.shape, o.dtype, o.strides, o.offset);
    }) as R;
  };

  const step = ((...args: A): R => {
    if (disposed) throw new Error(`${name}: the compiled step was disposed`);
    checkInputs(args);
    if (warmup > 0 || refused) {
      warmup = Math.max(0, warmup - 1);
      return runEager(args);
    }
    if (!program) return record(args);
    return replay(args);
  }) as CompiledStep<A, R>;

  Object.defineProperty(step, 'mode', { get: () => (program ? 'replay' : 'eager') });
  step.stats = () => {
    if (!program) return null;
    const s = program.stats;
    return { ...s, peakBytes: s.plannedBytes + program.pinnedBytes };
  };
  step.dispose = () => {
    if (disposed) return;
    disposed = true;
    program?.dispose();
    for (const o of outputs) o.storage.release();
    outputs = [];
  };
  return step;
}

/** Where an output tensor was in fn's result. */
class OutputRef {
  constructor(readonly index: number) {}
}

function mapOutputs(v: unknown, f: (i: number) => unknown): unknown {
  if (v instanceof OutputRef) return f(v.index);
  if (Array.isArray(v)) return v.map((x) => mapOutputs(x, f));
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapOutputs(x, f)]));
  return v;
}
