/** What the runner asks of an engine (ours or a peer) for one case. */
import type { BenchCase, Input } from './spec.js';

export interface Prepared {
  /** Records (or runs) one call. Ours records GPU work without waiting; peers do what their API does. */
  run(): void | Promise<void>;
  /** Resolves when all GPU work of the calls so far has completed (the engine's own way to wait). */
  sync(): Promise<void>;
  /** The checked output (Expected.output) after the first call. */
  read(output: string): Promise<Float32Array>;
  dispose(): void;
  /** Facts measured per call besides time (dispatches per step). */
  counters?(): Record<string, number>;
  /**
   * Host-side facts measured after the timing: e.g. the JS + Dawn time of recording one call with
   * the GPU idle (so that the software adapter's threads do not compete for the CPU).
   */
  hostProbe?(): Promise<Record<string, number>>;
}

export interface Engine {
  /** Column name in the results: 'ours', 'tfjs', 'ort', 'jax', 'jax-jit'. */
  name: string;
  /** False: the engine has no cell for this case at all (e.g. compiled steps outside training steps). */
  supports?(c: BenchCase): boolean;
  /** Throws UnsupportedCase (a reason, not a failure) when the engine has no such operation. */
  prepare(c: BenchCase, inputs: Input[]): Promise<Prepared>;
}

/** An engine without this operation (e.g. onnxruntime-web has no training). */
export class UnsupportedCase extends Error {}
