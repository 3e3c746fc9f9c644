/**
 * Fusion of elementwise maps in a recorded step (src/gpu/recorder.ts calls fuseMaps before it
 * plans memory). Maps that iterate the same number of elements are merged into one generated
 * kernel with several outputs when nothing recorded between them gets in the way:
 *
 * - a map reading another's result element for element (same count, same layout) computes it
 *   in registers; the intermediate is still stored when a later command reads it, and never
 *   written when it lives only in the step and the fused kernel is its only reader;
 * - maps that merely sit near each other (the three gradients of one backward rule, a map next
 *   to a gradient accumulation) share one dispatch, each storing its own result.
 *
 * Soundness: the merged kernel runs at the position of one of the two; the other's inputs must
 * not be written, and its outputs not read or written, by any command in between. One kernel
 * never reads a value it writes (except an accumulating map reading its own output at its own
 * element), and two maps of one kernel never write the same value.
 *
 * Also (fusion-passes.ts): a map repeating an earlier one is dropped, a copy into a fresh value
 * is written by its source's producer, zero fills covered by window writes go, and reductions or
 * ropes of one layout are paired into single dispatches.
 *
 * Rounding: each stage still converts its result to its output's dtype, exactly as storing and
 * loading it did, but the shader compiler may now contract a multiply in one stage with an add in
 * the next (an FMA), so fused results can differ from eager ones in the last bits.
 */
import type { Cmd, ValueInfo } from '../gpu/recorder.js';
import { runtime } from '../gpu/runtime.js';
import { grid1d } from './common.js';
import { MAP_PER_THREAD, type MapFuse } from './elementwise.js';
import { access, emit, type Fused, fromMap, fusedAccess, inlineConstant, MAX_FUSED_BINDINGS, merge, WINDOW } from './fusion-kernel.js';
import { dropRepeats, dropZeroFills, elideCopies, pairDispatches } from './fusion-passes.js';

/**
 * Merges elementwise maps (see the file comment). Returns the new command list; dispatches it
 * makes have `kernel: null` (the recorder compiles them).
 */
export function fuseMaps(cmds: readonly Cmd[], values: readonly ValueInfo[]): Cmd[] {
  const list: (Cmd | null)[] = [...cmds];
  const fused = new Map<number, Fused>();
  const maxBindings = Math.min(MAX_FUSED_BINDINGS, runtime().limits.maxStorageBuffersPerShaderStage);
  const asFused = (n: number): Fused | null => {
    const c = list[n];
    if (c?.kind !== 'dispatch') return null;
    const got = fused.get(n);
    if (got) return got;
    const f = c.src.fuse as MapFuse | undefined;
    return f?.spec && !c.dynamic ? fromMap(c, f) : null;
  };
  const accessAt = (n: number) => {
    const f = fused.get(n);
    return f ? fusedAccess(f) : access(list[n]!);
  };
  // Commands that bind each value.
  const uses = new Map<number, Set<number>>();
  const use = (v: number, n: number) => {
    let u = uses.get(v);
    if (!u) uses.set(v, (u = new Set()));
    u.add(n);
  };
  list.forEach((c, n) => {
    for (const v of c!.kind === 'dispatch' ? c!.values : [c!.src, c!.dst]) use(v, n);
  });
  /** Whether no command strictly between a and b writes `ins` or reads/writes `outs`. */
  const clear = (a: number, b: number, ins: number[], outs: number[]) => {
    const w = new Set([...ins, ...outs]);
    const r = new Set(outs);
    for (let k = a + 1; k < b; k++) {
      if (!list[k]) continue;
      const x = accessAt(k);
      if (x.writes.some((v) => w.has(v)) || x.reads.some((v) => r.has(v))) return false;
    }
    return true;
  };
  /** Stops storing outputs that live only in the step and that nothing but this kernel binds. */
  const dropStores = (f: Fused, at: number): Fused => {
    const keep = f.outs.map((o, k) => {
      const s = f.stages.find((st) => st.out === k)!;
      if (s.spec.readsOutput || !values[o.value].intermediate) return true;
      const u = uses.get(o.value)!;
      return !(u.size === 1 && u.has(at));
    });
    if (keep.every((x) => x)) return f;
    const renumber: number[] = [];
    let next = 0;
    keep.forEach((k, i) => (renumber[i] = k ? next++ : -1));
    for (const [i, o] of f.outs.entries())
      if (!keep[i] && !f.outs.some((y, k) => keep[k] && y.value === o.value)) uses.get(o.value)!.delete(at);
    return {
      ...f,
      outs: f.outs.filter((_, i) => keep[i]),
      stages: f.stages.map((s) => ({ ...s, out: s.out === null || renumber[s.out] < 0 ? null : renumber[s.out] })),
    };
  };
  dropRepeats(list, values, uses, asFused, clear);
  elideCopies(list, values, uses, asFused);
  dropZeroFills(list, fused, uses, asFused);
  for (let b = 0; b < list.length; b++) {
    let cur = b;
    let curF = asFused(b);
    if (!curF) continue;
    for (let a = cur - 1; a >= 0 && a >= cur - WINDOW; a--) {
      const aF = asFused(a);
      if (!aF || !curF) continue;
      const m = aF.n === curF.n ? merge(aF, curF, maxBindings) : inlineConstant(aF, curF, values, uses, a);
      if (!m) continue;
      const ins = (f: Fused) => f.inputs.map((x) => x.value);
      const outs = (f: Fused) => f.outs.map((o) => o.value);
      // The merged kernel runs where the earlier one did (cur's operands must be untouched in
      // between), or where the later one did (a's operands must be).
      let at: number;
      if (clear(a, cur, ins(curF), outs(curF))) at = a;
      else if (clear(a, cur, ins(aF), outs(aF))) at = cur;
      else continue;
      const gone = at === a ? cur : a;
      for (const o of [...aF.inputs, ...aF.outs, ...curF.inputs, ...curF.outs]) {
        const u = uses.get(o.value)!;
        u.delete(a);
        u.delete(cur);
        u.add(at);
      }
      list[gone] = null;
      fused.delete(gone);
      const g = dropStores(m, at);
      if (g.outs.length === 0) {
        // Nothing it computes is read: the kernel goes too.
        for (const x of g.inputs) uses.get(x.value)!.delete(at);
        list[at] = null;
        fused.delete(at);
        curF = null;
        break;
      }
      fused.set(at, g);
      cur = at;
      curF = g;
    }
  }
  pairDispatches(list, uses, clear);
  const out: Cmd[] = [];
  list.forEach((c, n) => {
    if (!c) return;
    const f = fused.get(n);
    if (!f || c.kind !== 'dispatch') {
      out.push(c);
      return;
    }
    const { src, params, values: vs } = emit(f);
    out.push({
      kind: 'dispatch',
      kernel: null,
      src,
      key: src.key,
      values: vs,
      // The grid of a map over f.n elements (the command at this position may have been a fill of another count).
      workgroups: [...grid1d(Math.ceil(f.n / MAP_PER_THREAD)), 1],
      params: new Uint8Array(params.buffer),
      dynamic: null,
    });
  });
  return out;
}
