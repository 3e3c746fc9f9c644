/**
 * Elementwise ops with broadcasting, each one fused kernel forward and one fused kernel per
 * input gradient (e.g. d tanh = g·(1−y²) is a single map over g and y).
 */
import { isUnaryOp, UNARY_NAMES, UNARY_OPS, type PointwiseDef, type UnaryOp } from '../../core/pointwise.js';
import { MATH_WGSL } from '../../kernels/wgsl-math.js';
import { full } from '../../tensor/creation.js';
import { scope } from '../../tensor/scope.js';
import type { DType } from '../../core/dtype.js';
import { broadcastShapes } from '../../core/shape.js';
import type { CompareOp, Scalarish, Tensor } from '../../tensor/tensor.js';
import { record } from '../tape.js';
import { map } from './map.js';
import { sumToShape } from './reduce.js';
import { assertFloat, assertTensor, computeType, promote } from './util.js';

export type { CompareOp, Scalarish } from '../../tensor/tensor.js';

const H = MATH_WGSL;

export type { UnaryOp } from '../../core/pointwise.js';

/** A pointwise op of the table in src/core/pointwise.ts; one kernel forward, one fused kernel backward. */
export function unary(op: UnaryOp, x: Tensor): Tensor {
  if (!isUnaryOp(op)) throw new TypeError(`unary: unknown op ${JSON.stringify(op)}; expected one of ${UNARY_NAMES.join(', ')}`);
  assertTensor(x, op);
  assertFloat(x, op);
  const def: PointwiseDef = UNARY_OPS[op];
  const y = map(op, [x], def.fwd, { helpers: H });
  return record(op, y, [x], (g, [saved]) => [map(`${op}_grad`, [g, saved], def.grad, { helpers: H, dtype: g.dtype })], [
    def.usesOutput ? y : x,
  ]);
}

export function neg(x: Tensor): Tensor {
  assertTensor(x, 'neg');
  if (x.dtype === 'f32' || x.dtype === 'f16') return unary('neg', x);
  return map('neg', [x], '-in0');
}

/** x^p for a scalar p; integer p handles negative bases. */
export function powScalar(x: Tensor, p: number): Tensor {
  assertTensor(x, 'pow');
  assertFloat(x, 'pow');
  if (!Number.isFinite(p)) throw new RangeError(`pow: exponent must be finite, got ${p}`);
  const intP = Number.isInteger(p);
  const powExpr = (base: string, e: string) =>
    intP
      ? `select(1.0, select(1.0, -1.0, ${base} < 0.0 && (i32(${e}) % 2) != 0), ${e} != 0.0) * pow(abs(${base}), ${e})`
      : `pow(${base}, ${e})`;
  const fwd = p === 2 ? 'in0 * in0' : p === 1 ? 'in0' : powExpr('in0', 's0');
  const y = map('pow', [x], fwd, { scalars: [p] });
  return record(
    'pow',
    y,
    [x],
    (g, [xs]) => [
      map('pow_grad', [g, xs], p === 2 ? 'in0 * 2.0 * in1' : p === 1 ? 'in0' : `in0 * s0 * ${powExpr('in1', 's0 - 1.0')}`, {
        scalars: [p],
        dtype: g.dtype,
      }),
    ],
    [x],
  );
}

export function clamp(x: Tensor, lo = -Infinity, hi = Infinity): Tensor {
  assertTensor(x, 'clamp');
  if (lo > hi) throw new RangeError(`clamp: min ${lo} is greater than max ${hi}`);
  const l = Math.max(lo, -3.4e38);
  const h = Math.min(hi, 3.4e38);
  const y = map('clamp', [x], 'clamp(in0, s0, s1)', { scalars: [l, h] });
  return record(
    'clamp',
    y,
    [x],
    (g, [xs]) => [map('clamp_grad', [g, xs], 'select(0.0, in0, in1 >= s0 && in1 <= s1)', { scalars: [l, h], dtype: g.dtype })],
    [x],
  );
}

function asTensor(v: Scalarish, like: Tensor): Tensor {
  return typeof v === 'number' ? full([], v, { dtype: like.dtype === 'f16' ? 'f32' : like.dtype }) : v;
}

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum';
const BINARY: Record<BinaryOp, { fwd: string; ga: string; gb: string; saveA: boolean; saveB: boolean }> = {
  // Gradient expressions over in0 = g, in1 = a, in2 = b.
  add: { fwd: 'in0 + in1', ga: 'in0', gb: 'in0', saveA: false, saveB: false },
  sub: { fwd: 'in0 - in1', ga: 'in0', gb: '-in0', saveA: false, saveB: false },
  mul: { fwd: 'in0 * in1', ga: 'in0 * in2', gb: 'in0 * in1', saveA: true, saveB: true },
  div: { fwd: 'in0 / in1', ga: 'in0 / in2', gb: '-in0 * in1 / (in2 * in2)', saveA: true, saveB: true },
  maximum: { fwd: 'max(in0, in1)', ga: 'select(0.0, in0, in1 >= in2)', gb: 'select(in0, 0.0, in1 >= in2)', saveA: true, saveB: true },
  minimum: { fwd: 'min(in0, in1)', ga: 'select(0.0, in0, in1 <= in2)', gb: 'select(in0, 0.0, in1 <= in2)', saveA: true, saveB: true },
};

/** Renames the operands of an expression (in0 → …) in one pass. */
function subst(expr: string, names: Record<string, string>): string {
  return expr.replace(/\bin[0-3]\b/g, (m) => names[m] ?? m);
}

export function binary(op: BinaryOp, a: Scalarish, b: Scalarish): Tensor {
  if (typeof a === 'number' && typeof b === 'number') throw new TypeError(`${op}: at least one operand must be a Tensor`);
  const def = BINARY[op];
  if (typeof a === 'number' || typeof b === 'number') return binaryScalar(op, def, a, b);
  const ta = assertTensor(a, op, 'first operand');
  const tb = assertTensor(b, op, 'second operand');
  const y = map(op, [ta, tb], def.fwd);
  const needs = def.saveA || def.saveB;
  return record(
    op,
    y,
    [ta, tb],
    (g, saved) => {
      const ins = needs ? [g, saved[0], saved[1]] : [g];
      return [
        ta.requiresGrad ? sumToShape(map(`${op}_ga`, ins, def.ga, { dtype: g.dtype, shape: g.shape }), ta.shape) : null,
        tb.requiresGrad ? sumToShape(map(`${op}_gb`, ins, def.gb, { dtype: g.dtype, shape: g.shape }), tb.shape) : null,
      ];
    },
    needs ? [ta, tb] : [],
  );
}

/** Tensor ⊕ number (or number ⊕ tensor): the number travels as a uniform, not as a tensor. */
function binaryScalar(op: BinaryOp, def: (typeof BINARY)[BinaryOp], a: Scalarish, b: Scalarish): Tensor {
  const scalarFirst = typeof a === 'number';
  const t = assertTensor(scalarFirst ? b : a, op, scalarFirst ? 'second operand' : 'first operand');
  const value = (scalarFirst ? a : b) as number;
  const ct = computeType(t.dtype);
  const sc = `${ct}(s0)`;
  // Forward: the tensor is in0, the scalar s0. Gradient: in0 = g, in1 = the tensor.
  const fwd = subst(def.fwd, scalarFirst ? { in0: sc, in1: 'in0' } : { in1: sc });
  const gexpr = scalarFirst ? subst(def.gb, { in1: sc, in2: 'in1' }) : subst(def.ga, { in2: sc });
  const y = map(op, [t], fwd, { scalars: [value], dtype: t.dtype });
  const needs = def.saveA || def.saveB;
  return record(
    op,
    y,
    [t],
    (g, saved) => [
      map(`${op}_g${scalarFirst ? 'b' : 'a'}_scalar`, needs ? [g, saved[0]] : [g], gexpr, {
        dtype: g.dtype,
        scalars: [value],
        shape: g.shape,
      }),
    ],
    needs ? [t] : [],
  );
}

export const add = (a: Scalarish, b: Scalarish) => binary('add', a, b);
export const sub = (a: Scalarish, b: Scalarish) => binary('sub', a, b);
export const mul = (a: Scalarish, b: Scalarish) => binary('mul', a, b);
export const div = (a: Scalarish, b: Scalarish) => binary('div', a, b);
export const maximum = (a: Scalarish, b: Scalarish) => binary('maximum', a, b);
export const minimum = (a: Scalarish, b: Scalarish) => binary('minimum', a, b);

const CMP: Record<CompareOp, string> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=' };

/** Comparisons return f32 0/1 masks (the engine has no bool dtype); not differentiable. */
export function compare(op: CompareOp, a: Scalarish, b: Scalarish): Tensor {
  if (typeof a === 'number' && typeof b === 'number') throw new TypeError(`${op}: at least one operand must be a Tensor`);
  // A number operand becomes a 0-d tensor for the duration of the op.
  return scope(() => {
    const ta = typeof a === 'number' ? asTensor(a, b as Tensor) : assertTensor(a, op);
    const tb = typeof b === 'number' ? asTensor(b, ta) : assertTensor(b, op);
    const ct = computeType(promote(ta.dtype, tb.dtype, op));
    const shape = broadcastShapes(ta.shape, tb.shape, op);
    return map(op, [ta, tb], `select(0.0, 1.0, ${ct}(in0) ${CMP[op]} ${ct}(in1))`, { dtype: 'f32', shape });
  });
}

/** where(cond, a, b): a where cond ≠ 0, else b; broadcasting; gradients flow to a and b. */
export function where(cond: Tensor, a: Scalarish, b: Scalarish): Tensor {
  assertTensor(cond, 'where', 'condition');
  return scope(() => {
    const ta = typeof a === 'number' ? full([], a) : assertTensor(a, 'where');
    const tb = typeof b === 'number' ? full([], b) : assertTensor(b, 'where');
    const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape, 'where'), tb.shape, 'where');
    const dtype = promote(ta.dtype, tb.dtype, 'where');
    const y = map('where', [cond, ta, tb], 'select(in2, in1, f32(in0) != 0.0)', { dtype, shape });
    return record(
      'where',
      y,
      [null, ta, tb],
      (g, [c]) => [
        null,
        ta.requiresGrad ? sumToShape(map('where_ga', [g, c], 'select(0.0, in0, f32(in1) != 0.0)', { dtype: g.dtype }), ta.shape) : null,
        tb.requiresGrad ? sumToShape(map('where_gb', [g, c], 'select(in0, 0.0, f32(in1) != 0.0)', { dtype: g.dtype }), tb.shape) : null,
      ],
      [cond],
    );
  });
}

/** Converts dtype (f32 ↔ f16, float ↔ int by truncation toward zero). Gradient casts back. */
export function cast(x: Tensor, dtype: DType): Tensor {
  assertTensor(x, 'cast');
  if (x.dtype === dtype) return x;
  const y = map('cast', [x], 'in0', { dtype, shape: x.shape });
  return record('cast', y, [x], (g) => [map('cast', [g], 'in0', { dtype: x.dtype, shape: g.shape })]);
}

/**
 * A fused elementwise op over up to 3 broadcasting inputs: one kernel forward, one kernel per
 * input gradient. `grads[i]` is an expression over in0 = the output gradient and in1..in3 = the
 * inputs (helpers available: sigmoid_f32, silu_f32, silu_grad, gelu_*). Used for hot chains such
 * as adaLN modulation and gated residuals, where separate ops would each read and write memory.
 */
export function fused(name: string, inputs: Tensor[], fwd: string, grads: (string | null)[]): Tensor {
  if (inputs.length > 3) throw new Error(`${name}: fused ops take at most 3 inputs`);
  inputs.forEach((t, i) => {
    assertTensor(t, name, `input ${i}`);
    assertFloat(t, name);
  });
  // Forward names inputs in0..; gradient expressions see them shifted by one (in0 is g).
  const y = map(name, inputs, fwd, { helpers: H });
  return record(
    name,
    y,
    inputs,
    (g, saved) =>
      inputs.map((t, i) =>
        t.requiresGrad && grads[i]
          ? sumToShape(map(`${name}_g${i}`, [g, ...saved], grads[i]!, { helpers: H, dtype: g.dtype, shape: g.shape }), t.shape)
          : null,
      ),
    inputs,
  );
}

/** x ⊙ (1 + scale) + shift, fused (adaLN modulation). */
export function modulate(x: Tensor, shift: Tensor, scale: Tensor): Tensor {
  return fused('modulate', [x, shift, scale], 'in0 * (1.0 + in2) + in1', ['in0 * (1.0 + in3)', 'in0', 'in0 * in1']);
}

/** x + gate ⊙ y, fused (gated residual). */
export function gatedAdd(x: Tensor, gate: Tensor, y: Tensor): Tensor {
  return fused('gated_add', [x, gate, y], 'in0 + in1 * in2', ['in0', 'in0 * in3', 'in0 * in2']);
}

/** SiLU(a) ⊙ b, fused (SwiGLU). */
export function siluMul(a: Tensor, b: Tensor): Tensor {
  return fused('silu_mul', [a, b], 'silu_f32(in0) * in1', ['in0 * in2 * silu_grad(in1)', 'in0 * silu_f32(in1)']);
}
