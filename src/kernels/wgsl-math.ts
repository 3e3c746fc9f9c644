/** WGSL functions that the language lacks, shared by kernel generators. */

/** erf via erfc's Chebyshev fit (fractional error < 1.2e-7 everywhere), exact-GELU building block. */
export const ERF_WGSL = `
fn erf_f32(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}
fn gelu_erf(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_f32(x * 0.7071067811865476)); }
fn gelu_erf_grad(x: f32) -> f32 {
  let cdf = 0.5 * (1.0 + erf_f32(x * 0.7071067811865476));
  let pdf = 0.3989422804014327 * exp(-0.5 * x * x);
  return cdf + x * pdf;
}
fn tanh_safe(x: f32) -> f32 {
  // tanh via exp overflows to NaN for |x| > ~44 in some drivers; clamp first.
  return tanh(clamp(x, -15.0, 15.0));
}
fn gelu_tanh(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh_safe(u));
}
fn gelu_tanh_grad(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let th = tanh_safe(u);
  let du = 0.7978845608028654 * (1.0 + 0.134145 * x * x);
  return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
}
fn sigmoid_f32(x: f32) -> f32 {
  // Stable for large |x|: never exponentiates a large positive number.
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
fn silu_f32(x: f32) -> f32 { return x * sigmoid_f32(x); }
fn silu_grad(x: f32) -> f32 { let s = sigmoid_f32(x); return s * (1.0 + x * (1.0 - s)); }
`;
