/**
 * Numerical gradients by central differences, for checking analytic/autograd gradients.
 */
import type { NDArray } from './ndarray.js';

/**
 * d f / d x by central differences (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), one element at a
 * time, in float64. Truncation error is O(eps^2 f'''), rounding error O(|f| 1e-16 / eps), so
 * eps = 1e-6 gives ~1e-9 relative accuracy for well-scaled smooth functions.
 * `x` is not modified (each probe works on a copy).
 */
export function numericalGradient(f: (x: NDArray) => number, x: NDArray, eps = 1e-6): NDArray {
  const grad = new Float64Array(x.data.length);
  const probe: NDArray = { data: Float64Array.from(x.data), shape: [...x.shape] };
  for (let i = 0; i < x.data.length; i++) {
    const orig = x.data[i];
    // Divide by the steps actually taken after rounding x +- eps, not by the nominal 2 eps.
    const up = orig + eps;
    const down = orig - eps;
    probe.data[i] = up;
    const plus = f(probe);
    probe.data[i] = down;
    const minus = f(probe);
    probe.data[i] = orig;
    grad[i] = (plus - minus) / (up - down);
  }
  return { data: grad, shape: [...x.shape] };
}

/**
 * Gradient of the scalar loss sum(g(x) * w) for a tensor-valued g: the usual way to check a
 * vector-Jacobian product dL/dx given upstream gradient w (same shape as g's output).
 */
export function numericalVjp(g: (x: NDArray) => NDArray, x: NDArray, upstream: NDArray, eps = 1e-6): NDArray {
  return numericalGradient(
    (xx) => {
      const y = g(xx);
      if (y.data.length !== upstream.data.length) throw new Error('numericalVjp: upstream size mismatch');
      let s = 0;
      for (let i = 0; i < y.data.length; i++) s += y.data[i] * upstream.data[i];
      return s;
    },
    x,
    eps,
  );
}
