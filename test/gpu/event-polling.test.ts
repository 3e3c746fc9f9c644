/**
 * Quiet waits (src/gpu/event-polling.ts): Dawn's native event-polling callback is delayed by a
 * timer while JS callbacks keep their immediate turn; undo restores the globals; the runtime on a
 * software adapter installs it and GPU waits still complete.
 */
import { setImmediate as nodeSetImmediate } from 'node:timers';
import { describe, expect, it } from 'vitest';
import { throttleDawnPolling } from '../../src/gpu/event-polling.js';
import { add } from '../../src/autograd/ops/index.js';
import { runtime } from '../../src/gpu/runtime.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { useGpu } from '../helpers/setup.js';

/** A function whose source text is `function () { [native code] }`, as Dawn's callback is. */
const nativeLike = (fn: () => void) => new Proxy(fn, {});

describe('throttleDawnPolling', () => {
  it('delays native callbacks by a timer, not JS callbacks, and undo restores the globals', async () => {
    const before = globalThis.setImmediate;
    const order: string[] = [];
    const undo = throttleDawnPolling();
    try {
      expect(globalThis.setImmediate).not.toBe(before);
      await new Promise<void>((done) => {
        setImmediate(nativeLike(() => order.push('native')));
        setImmediate(() => order.push('js'));
        // An immediate runs before any timer: a delayed native callback comes after this one.
        setImmediate(() => {
          order.push('js, second');
          setTimeout(done, 20);
        });
      });
      expect(order).toEqual(['js', 'js, second', 'native']);
      // A delayed callback can still be cancelled through clearImmediate.
      let ran = false;
      clearImmediate(setImmediate(nativeLike(() => (ran = true))) as NodeJS.Immediate);
      await new Promise((r) => setTimeout(r, 10));
      expect(ran).toBe(false);
    } finally {
      undo();
    }
    expect(globalThis.setImmediate).toBe(before);
  });

  it('nests: the globals come back only with the last undo, and undo twice is harmless', () => {
    const before = globalThis.setImmediate;
    const a = throttleDawnPolling();
    const b = throttleDawnPolling();
    a();
    a();
    expect(globalThis.setImmediate).not.toBe(before);
    b();
    expect(globalThis.setImmediate).toBe(before);
  });
});

describe('runtime on a software adapter', () => {
  useGpu();
  it('waits quietly by default, and waits still complete', async () => {
    const rt = runtime();
    if (rt.caps.software === null) {
      expect(globalThis.setImmediate).toBe(nodeSetImmediate);
      return;
    }
    expect(globalThis.setImmediate).not.toBe(nodeSetImmediate);
    const t = tensor(new Float32Array([1, 2, 3]), [3]);
    expect(Array.from(await toArray(add(t, t)))).toEqual([2, 4, 6]);
    await rt.sync();
    t.dispose();
  });
});
