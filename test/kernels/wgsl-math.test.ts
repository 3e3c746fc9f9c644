/**
 * One WGSL math library for fused and unfused paths: a matmul with a fused activation epilogue
 * and the same matmul followed by the elementwise activation must agree bit for bit (same
 * functions on the same f32 values), and both must be right (float64 reference).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { geluScalar, geluTanhScalar, sigmoidScalar } from '../../src/cpu/elementwise.js';
import { init } from '../../src/gpu/runtime.js';
import { mapInto } from '../../src/kernels/elementwise.js';
import { matmulInto, type MatmulActivation } from '../../src/kernels/matmul.js';
import { MATH_WGSL } from '../../src/kernels/wgsl-math.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty } from '../../src/tensor/tensor.js';

beforeAll(async () => {
  await init();
});

/** Deterministic values spread over [−6, 6] (both GELU branches, the tails, exact zeros). */
function values(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return Math.round(((s / 2 ** 31) * 12 - 6) * 64) / 64;
  });
}

const UNFUSED: Record<Exclude<MatmulActivation, 'none'>, [string, (x: number) => number]> = {
  gelu: ['gelu_erf(in0)', geluScalar],
  gelu_tanh: ['gelu_tanh(in0)', geluTanhScalar],
  silu: ['silu_f32(in0)', (x) => x * sigmoidScalar(x)],
  relu: ['relu_f32(in0)', (x) => Math.max(x, 0)],
};

describe('fused and unfused activations', () => {
  for (const [act, [expr, ref]] of Object.entries(UNFUSED) as [Exclude<MatmulActivation, 'none'>, [string, (x: number) => number]][]) {
    it(`${act}: matmul epilogue == matmul then map, bitwise`, async () => {
      const [M, K, N] = [37, 5, 29];
      const a = tensor(values(M * K, 3), [M, K]);
      const b = tensor(
        values(K * N, 7).map((v) => v / 4),
        [K, N],
      );
      const bias = tensor(
        values(N, 11).map((v) => v / 8),
        [N],
      );
      const fused = empty([M, N]);
      const plain = empty([M, N]);
      const unfused = empty([M, N]);
      matmulInto(a, b, fused, { bias, activation: act });
      matmulInto(a, b, plain, { bias });
      mapInto({ name: `test-${act}`, expr, compute: 'f32', helpers: MATH_WGSL }, [plain], unfused);
      const [f, p, u] = await Promise.all([toArray(fused), toArray(plain), toArray(unfused)]);
      const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
      const differing = Array.from(bits(f as Float32Array)).findIndex((w, i) => w !== bits(u as Float32Array)[i]);
      expect(differing, `first differing element ${differing}: fused ${f[differing]} vs unfused ${u[differing]}`).toBe(-1);
      // Both right too: the float64 activation of the f32 pre-activation, within an erf good to
      // 1e-7 (scaled by |x|) plus a few f32 roundings of the result (exp is not correctly rounded).
      let bad = -1;
      for (let i = 0; i < p.length && bad < 0; i++)
        if (!(Math.abs(f[i] - ref(p[i])) <= 1e-7 * Math.abs(p[i]) + 1e-6 * Math.abs(ref(p[i])))) bad = i;
      expect(bad, `element ${bad}: x = ${p[bad]}, got ${f[bad]}, float64 ${ref(p[bad])}`).toBe(-1);
      for (const t of [a, b, bias, fused, plain, unfused]) t.dispose();
    });
  }
});
