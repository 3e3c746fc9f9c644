/**
 * What the peer engines expect of a browser, provided in Node from the runtime's own Dawn
 * instance so that they run in this process on the same adapter as ours: `navigator.gpu` (and a
 * userAgent, which jax-js reads), and Iterator helpers (jax-js calls Iterator.prototype.map and
 * filter, which Node 20 lacks).
 */
import type { Runtime } from '../../src/gpu/runtime.js';

export function installBrowserShims(rt: Runtime): void {
  const g = globalThis as Record<string, unknown>;
  const nav = (g.navigator ?? {}) as Record<string, unknown>;
  // Node 21+ defines a read-only navigator; define the properties on it rather than replacing it.
  for (const [k, v] of Object.entries({ gpu: rt.gpu, userAgent: (nav.userAgent as string) ?? `Node.js/${process.versions.node}` })) {
    if (nav[k] === undefined) Object.defineProperty(nav, k, { value: v, configurable: true, writable: true });
  }
  if (g.navigator === undefined) Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  polyfillIteratorHelpers();
}

function polyfillIteratorHelpers(): void {
  // %IteratorPrototype%: the prototype of an array iterator's prototype.
  const proto = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())) as Record<string, unknown>;
  const define = (name: string, fn: (...a: never[]) => unknown) => {
    if (typeof proto[name] !== 'function') Object.defineProperty(proto, name, { value: fn, configurable: true, writable: true });
  };
  define('map', function* (this: Iterable<unknown>, f: (v: unknown, i: number) => unknown) {
    let i = 0;
    for (const v of this) yield f(v, i++);
  });
  define('filter', function* (this: Iterable<unknown>, f: (v: unknown, i: number) => boolean) {
    let i = 0;
    for (const v of this) if (f(v, i++)) yield v;
  });
  define('toArray', function (this: Iterable<unknown>) {
    return [...this];
  });
  define('forEach', function (this: Iterable<unknown>, f: (v: unknown, i: number) => void) {
    let i = 0;
    for (const v of this) f(v, i++);
  });
  define('some', function (this: Iterable<unknown>, f: (v: unknown, i: number) => boolean) {
    let i = 0;
    for (const v of this) if (f(v, i++)) return true;
    return false;
  });
}
