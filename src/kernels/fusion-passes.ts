/**
 * The passes of fusion.ts besides merging maps: repeated maps, copies into fresh values, dead
 * zero fills, and pairs of reductions or ropes sharing a dispatch. Each rewrites the command list
 * in place (null: dropped) and keeps `uses` (the commands binding each value) up to date.
 */
import type { Cmd, DispatchCmd, ValueInfo } from '../gpu/recorder.js';
import type { BindingKind } from '../gpu/pipeline-cache.js';
import type { MapSpec } from './elementwise.js';
import { access, contiguous, elements, type Fused } from './fusion-kernel.js';
import { type ColumnsReduceFuse, type ColumnsWgFuse, groupColumnsReduce, groupColumnsWg } from './reduce-groups.js';
import { pairRope, type RopeFuse } from './rope.js';

/** How far back (in commands) a reduction or rope looks for one to share a dispatch with. */
const PAIR_WINDOW = 160;

/** Whether no command strictly between a and b writes `ins` or reads/writes `outs`. */
export type Clear = (a: number, b: number, ins: number[], outs: number[]) => boolean;

/**
 * A map that repeats an earlier one (same kernel, parameters and inputs, the inputs untouched in
 * between; each result written only by its map) is dropped and its readers read the earlier
 * result: the step makes the same contiguous copy of x_t for several layers, and silu(c) per block.
 */
export function dropRepeats(
  list: (Cmd | null)[],
  values: readonly ValueInfo[],
  uses: Map<number, Set<number>>,
  asFused: (n: number) => Fused | null,
  clear: Clear,
): void {
  const writers = (v: number) =>
    [...uses.get(v)!].filter((k) => {
      const c = list[k];
      if (!c) return false;
      if (c.kind === 'copy') return c.dst === v;
      return c.values.some((x, i) => x === v && c.src.bindings[i] === 'write');
    });
  const same = (x: Uint8Array | null, y: Uint8Array | null) =>
    x === y || (!!x && !!y && x.length === y.length && x.every((b, i) => b === y[i]));
  for (let b = 0; b < list.length; b++) {
    const cb = list[b];
    const fb = asFused(b);
    if (!fb || cb?.kind !== 'dispatch' || fb.stages[0].spec.readsOutput) continue;
    const vb = fb.outs[0].value;
    if (!values[vb].intermediate || writers(vb).length !== 1) continue;
    for (let a = b - 1; a >= 0; a--) {
      const ca = list[a];
      if (ca?.kind !== 'dispatch' || ca.key !== cb.key || !same(ca.params, cb.params) || !asFused(a)) continue;
      const fa = asFused(a)!;
      const va = fa.outs[0].value;
      if (!fa.inputs.every((x, k) => x.value === fb.inputs[k].value) || writers(va).length !== 1) continue;
      if (!clear(a, b, [...fb.inputs.map((x) => x.value), va], [])) continue;
      // Readers of b's result read a's.
      for (const k of [...uses.get(vb)!]) {
        const c = list[k]!;
        if (k === b) continue;
        list[k] = c.kind === 'copy' ? { ...c, src: c.src === vb ? va : c.src } : { ...c, values: c.values.map((x) => (x === vb ? va : x)) };
        uses.get(va)!.add(k);
      }
      for (const x of [...fb.inputs.map((o) => o.value), vb]) uses.get(x)!.delete(b);
      uses.get(vb)!.clear();
      list[b] = null;
      break;
    }
  }
}

/**
 * A copy of an intermediate that one dispatch wrote, into a value the copy is the first to use,
 * element for element at the same offsets: the dispatch writes the destination instead (a weight
 * gradient made by a matmul, then copied into the leaf's own .grad storage).
 */
export function elideCopies(
  list: (Cmd | null)[],
  values: readonly ValueInfo[],
  uses: Map<number, Set<number>>,
  asFused: (n: number) => Fused | null,
): void {
  list.forEach((c, k) => {
    const f = asFused(k);
    if (!f || c?.kind !== 'dispatch' || f.stages.length !== 1 || f.inputs.length !== 1) return;
    const st = f.stages[0];
    if (st.spec.name !== COPY.name || st.spec.expr !== COPY.expr || st.spec.readsOutput || st.dtypes[0] !== st.dtypes[1]) return;
    const [x] = f.inputs;
    const [d] = f.outs;
    const ux = uses.get(x.value)!;
    const ud = uses.get(d.value)!;
    if (!values[x.value].intermediate || ux.size !== 2 || Math.min(...ud) !== k) return;
    if (x.dtype !== d.dtype || x.offset !== d.offset || !contiguous(x) || !contiguous(d)) return;
    const p = Math.min(...ux);
    const pc = list[p];
    if (pc?.kind !== 'dispatch') return;
    const writes = pc.values.filter((_, i) => pc.src.bindings[i] === 'write');
    if (writes.length !== 1 || writes[0] !== x.value || pc.values.filter((v) => v === x.value).length !== 1) return;
    list[p] = { ...pc, values: pc.values.map((v) => (v === x.value ? d.value : v)) };
    list[k] = null;
    ux.clear();
    ud.delete(k);
    ud.add(p);
  });
}

/** Column reductions already sharing a dispatch (more may join). */
interface ReduceGroup {
  reduceGroup: ColumnsReduceFuse['columnsReduce'][];
}

/** Few-chunk column reductions already sharing a dispatch. */
interface WgGroup {
  wgGroup: ColumnsWgFuse['columnsWg'][];
}

/** A paired dispatch: its kernel, and its operands (values) with their bindings. */
interface Paired {
  key: string;
  wgsl: () => string;
  params: Uint32Array;
  workgroups: [number, number, number];
}

/**
 * Two dispatches of one kernel and layout that differ only in some buffers share a dispatch, each
 * half of the grid running the original arithmetic (bitwise the same): single-chunk column
 * reductions (reduce-columns.ts: the adaLN shift/scale gradients summed over tokens) and ropes
 * (rope.ts: q and k, their gradients). Placed like merged maps, where the other's operands are
 * untouched in between; neither may read what the other writes.
 */
export function pairDispatches(list: (Cmd | null)[], uses: Map<number, Set<number>>, clear: Clear): void {
  type Pairable = Partial<ColumnsReduceFuse & RopeFuse & ReduceGroup & ColumnsWgFuse & WgGroup>;
  const fuseOf = (n: number) => {
    const c = list[n];
    return c?.kind === 'dispatch' ? (c.src.fuse as Pairable | undefined) : undefined;
  };
  const members = (f: Pairable) => f.reduceGroup ?? (f.columnsReduce ? [f.columnsReduce] : null);
  const wgMembers = (f: Pairable) => f.wgGroup ?? (f.columnsWg ? [f.columnsWg] : null);
  // Operands: the first's values and bindings, then the second's that differ; null if they cannot pair.
  const pair = (
    a: DispatchCmd,
    b: DispatchCmd,
  ): { p: Paired; values: number[]; bindings: BindingKind[]; fuse?: ReduceGroup | WgGroup } | null => {
    const fa = a.src.fuse as Pairable;
    const fb = b.src.fuse as Pairable;
    const [ma, mb] = [members(fa), members(fb)];
    if (ma && mb) {
      const group = [...ma, ...mb];
      const p = groupColumnsReduce(group);
      const values = [...a.values, ...b.values];
      return (
        p && {
          p,
          values,
          bindings: [...values.map((_, i) => (i % 2 ? 'write' : 'read') as BindingKind), 'uniform'],
          fuse: { reduceGroup: group },
        }
      );
    }
    const [wa, wb] = [wgMembers(fa), wgMembers(fb)];
    if (wa && wb) {
      const group = [...wa, ...wb];
      const p = groupColumnsWg(group);
      const values = [...a.values, ...b.values];
      return (
        p && {
          p,
          values,
          bindings: [...values.map((_, i) => (i % 2 ? 'write' : 'read') as BindingKind), 'uniform'],
          fuse: { wgGroup: group },
        }
      );
    }
    if (fa.rope && fb.rope) {
      // x, cos, sin, out: the tables must be the same values.
      if (a.values[1] !== b.values[1] || a.values[2] !== b.values[2]) return null;
      const p = pairRope(fa as RopeFuse, fb as RopeFuse);
      return (
        p && { p, values: [...a.values, b.values[0], b.values[3]], bindings: ['read', 'read', 'read', 'write', 'read', 'write', 'uniform'] }
      );
    }
    return null;
  };
  for (let b = 0; b < list.length; b++) {
    if (!fuseOf(b)) continue;
    for (let a = b - 1; a >= 0 && a >= b - PAIR_WINDOW; a--) {
      if (!fuseOf(a)) continue;
      const ca = list[a] as DispatchCmd;
      const cb = list[b] as DispatchCmd;
      const got = pair(ca, cb);
      if (!got) continue;
      const io = (c: DispatchCmd) => access(c);
      const [ra, rb] = [io(ca), io(cb)];
      // Neither reads or writes what the other writes.
      if (rb.reads.some((v) => ra.writes.includes(v)) || ra.reads.some((v) => rb.writes.includes(v))) continue;
      let at: number;
      if (clear(a, b, rb.reads, rb.writes)) at = a;
      else if (clear(a, b, ra.reads, ra.writes)) at = b;
      else continue;
      const gone = at === a ? b : a;
      const { p, values: vs, bindings, fuse } = got;
      list[at] = {
        kind: 'dispatch',
        kernel: null,
        src: { key: p.key, bindings, wgsl: p.wgsl, fuse },
        key: p.key,
        values: vs,
        workgroups: p.workgroups,
        params: new Uint8Array(p.params.buffer),
        dynamic: null,
      };
      list[gone] = null;
      for (const v of vs) {
        uses.get(v)!.delete(gone);
        uses.get(v)!.add(at);
      }
      break;
    }
  }
}

const COPY: Pick<MapSpec, 'name' | 'expr'> = { name: 'copy', expr: 'in0' };

/**
 * A zero fill (f32) followed by writes that cover it before anything reads it is dead: autograd
 * zeroes a gradient, then copies or accumulates each window of it (the chunks of an adaLN
 * projection). Accumulating into elements still zero becomes a copy (0 + x is x, up to the sign
 * of a zero), and once every element is written the fill goes. Any other access stops the scan.
 */
export function dropZeroFills(
  list: (Cmd | null)[],
  fused: Map<number, Fused>,
  uses: Map<number, Set<number>>,
  asFused: (n: number) => Fused | null,
): void {
  list.forEach((_, f) => {
    const fill = asFused(f);
    if (!fill || fill.inputs.length || fill.stages.length !== 1) return;
    const st = fill.stages[0];
    if (st.spec.name !== 'fill' || st.scalars[0] !== 0 || fill.outs[0].dtype !== 'f32') return;
    const v = fill.outs[0].value;
    const zero = elements(fill.outs[0]);
    const later = [...uses.get(v)!].filter((k) => k > f).sort((x, y) => x - y);
    for (const k of later) {
      const m = asFused(k);
      const one = m && m.stages.length === 1 ? m.stages[0] : null;
      // Only single maps writing the value (not reading it as an input) keep the scan going.
      if (!m || !one || m.outs[0].value !== v || m.inputs.some((x) => x.value === v) || m.outs[0].dtype !== 'f32') return;
      const el = elements(m.outs[0]);
      let inZero = 0;
      for (const e of el) if (zero.has(e)) inZero++;
      if (one.spec.readsOutput) {
        if (inZero === 0) continue;
        if (inZero !== el.size || one.spec.expr !== 'acc + in0') return;
        fused.set(k, { ...m, stages: [{ ...one, spec: { ...one.spec, ...COPY, readsOutput: false } }] });
      }
      for (const e of el) zero.delete(e);
      if (zero.size === 0) {
        list[f] = null;
        fused.delete(f);
        uses.get(v)!.delete(f);
        return;
      }
    }
  });
}
