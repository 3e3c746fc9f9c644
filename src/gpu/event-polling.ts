/**
 * Cheaper waiting for Dawn's events in Node, for software adapters.
 *
 * Dawn's Node binding processes GPU events (finished submits, mapped buffers) in a native callback
 * that it passes to `setImmediate`, and re-schedules it at once for as long as any asynchronous
 * operation is pending. Every `await` on the GPU therefore keeps the JS thread spinning. On a
 * hardware GPU that costs one idle core; on a software adapter (lavapipe, SwiftShader) the core is
 * one the adapter's worker threads need. Measured on the 2-core lavapipe machine, four 768³
 * matmuls then a sync: 420–1051 ms with the spin, 293–577 ms with the polls below, and about half
 * the process CPU time (bench notes in BENCHMARKS.md).
 *
 * `throttleDawnPolling()` makes that one callback wait a millisecond between polls instead: the
 * global `setImmediate` is wrapped, and only native callbacks are delayed (JS callbacks — streams,
 * other libraries — keep their immediate turn). The latency of a wait grows by at most about a
 * millisecond. Calls nest; the last undo restores the original functions.
 */
import { setTimeout as nodeSetTimeout, clearTimeout as nodeClearTimeout } from 'node:timers';

/** Milliseconds between two event polls while throttled. */
const POLL_MS = 1;

let installs = 0;
let restore: (() => void) | null = null;

// Dawn passes a new unnamed native function each time. The name test comes first: it rules out
// most JS callbacks without toString, which copies a JS function's whole source text.
const isNative = (fn: unknown): boolean =>
  typeof fn === 'function' && !fn.name && Function.prototype.toString.call(fn).endsWith('{ [native code] }');

export function throttleDawnPolling(): () => void {
  if (installs++ === 0) {
    const g = globalThis as unknown as {
      setImmediate: (fn: (...a: unknown[]) => void, ...args: unknown[]) => unknown;
      clearImmediate: (h: unknown) => void;
    };
    const origSet = g.setImmediate;
    const origClear = g.clearImmediate;
    const delayed = new WeakSet<object>();
    const wrappedSet = (fn: (...a: unknown[]) => void, ...args: unknown[]) => {
      if (!isNative(fn)) return origSet(fn, ...args);
      const handle = nodeSetTimeout(fn, POLL_MS, ...args);
      delayed.add(handle);
      return handle;
    };
    const wrappedClear = (h: unknown) => (h && typeof h === 'object' && delayed.has(h) ? nodeClearTimeout(h as never) : origClear(h));
    g.setImmediate = wrappedSet;
    g.clearImmediate = wrappedClear;
    restore = () => {
      // Only undo our own wrapping: someone may have wrapped it again since.
      if (g.setImmediate === wrappedSet) g.setImmediate = origSet;
      if (g.clearImmediate === wrappedClear) g.clearImmediate = origClear;
    };
  }
  let undone = false;
  return () => {
    if (undone) return;
    undone = true;
    if (--installs === 0) {
      restore?.();
      restore = null;
    }
  };
}
