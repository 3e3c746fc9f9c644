/**
 * The one WGSL math library: functions the language lacks, used by fused epilogues (matmul) and
 * the elementwise map alike, so a fused and an unfused activation compute the same bits.
 */

/**
 * NaN and infinity from bit patterns, and a NaN test on the bits: fast-math drivers (lavapipe)
 * fold `x != x` to false and 0·inf to 0, so NaN is never detected or made by arithmetic.
 */
export const NAN_WGSL = `fn f_nan() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }
fn f_inf() -> f32 { var b = 0x7f800000u; return bitcast<f32>(b); }
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }`;

/**
 * Activations and their derivatives, f32 in and out:
 *   erf_f32, gelu_erf (exact GELU), gelu_erf_grad, gelu_tanh (PyTorch's approximate='tanh'),
 *   gelu_tanh_grad, tanh_safe, sigmoid_f32, silu_f32, silu_grad, relu_f32.
 *
 * erf has |error| < 1e-7 in f32 (a fit of our own: erf(x)/x − 1 as a degree-6 polynomial in x²
 * below 0.84375, and x·erfc(x)·e^{x²} as a degree-10 polynomial in 1/x above, with e^{−x²} split
 * as e^{−h²}·e^{−(x−h)(x+h)} so the squaring does not lose bits). `erfc_big` returns erfc(|x|)
 * for |x| ≥ 0.84375 directly, which keeps GELU's negative tail free of cancellation. Sigmoid
 * forms (x / (1 + e^{−y})) never produce inf/inf.
 */
export const MATH_WGSL = `
fn erf_small(x: f32) -> f32 {
  let s = x * x;
  var q = 8.897524094e-05;
  q = q * s - 8.256813744e-04; q = q * s + 5.210256670e-03; q = q * s - 2.686281875e-02;
  q = q * s + 1.128375232e-01; q = q * s - 3.761263788e-01; q = q * s + 1.283791661e-01;
  return x + x * q;
}
fn erfc_big(x: f32) -> f32 {
  let a = min(abs(x), 4.0);
  let u = 1.0 / a;
  let t = (u - 7.175925970e-01) * 2.138613939e+00;
  var r = 9.342276826e-06;
  r = r * t - 2.994636270e-05; r = r * t + 4.023672227e-05; r = r * t - 9.420445167e-06;
  r = r * t - 1.882883516e-04; r = r * t + 9.189464618e-04; r = r * t - 2.717623720e-03;
  r = r * t + 4.830264952e-03; r = r * t + 3.301318036e-03; r = r * t - 7.958472520e-02;
  r = r * t + 4.736779630e-01;
  let h = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  let e = exp(-h * h) * exp(-(a - h) * (a + h));
  return select(e, exp(-x * x), abs(x) > 4.0) * r * u;
}
fn erf_f32(x: f32) -> f32 {
  if (abs(x) < 0.84375) { return erf_small(x); }
  return sign(x) * (1.0 - erfc_big(x));
}
fn gelu_erf(x: f32) -> f32 {
  // 0.5x + 0.5x·erf(z) rather than 0.5x·(1 + erf(z)): rounding 1 + erf would cost ~1e-7.
  let z = x * 0.7071067811865476;
  let h = 0.5 * x;
  if (abs(z) < 0.84375) { return h + h * erf_small(z); }
  // erfc underflows to 0 before h overflows except at x = ±Inf, where h·0 would be NaN: for
  // x = +Inf that gives +Inf (as PyTorch); x = −Inf stays NaN (−Inf·0), as PyTorch.
  let ec = erfc_big(z);
  let hc = h * ec;
  return select(hc, x - select(hc, 0.0, ec == 0.0), z > 0.0);
}
fn gelu_erf_grad(x: f32) -> f32 {
  let cdf = 0.5 * (1.0 + erf_f32(x * 0.7071067811865476));
  let pdf = 0.3989422804014327 * exp(-0.5 * x * x);
  return cdf + x * pdf;
}
fn tanh_safe(x: f32) -> f32 {
  // tanh via exp overflows to NaN for |x| > ~44 in some drivers; clamp first. clamp maps NaN to
  // −15, so NaN (tested on the bits: fast-math folds x != x) passes through as in PyTorch.
  return select(tanh(clamp(x, -15.0, 15.0)), x, (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u);
}
fn gelu_tanh(x: f32) -> f32 {
  // 0.5·(1 + tanh(u)) = sigmoid(2u), u = √(2/π)(x + 0.044715x³).
  return x / (1.0 + exp(-1.5957691216057308 * (x + 0.044715 * x * x * x)));
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
fn silu_f32(x: f32) -> f32 { return x / (1.0 + exp(-x)); }
fn silu_grad(x: f32) -> f32 { let s = sigmoid_f32(x); return s * (1.0 + x * (1.0 - s)); }
// max(NaN, 0) is 0 in WGSL; PyTorch's relu passes NaN through.
fn relu_f32(x: f32) -> f32 { return select(max(x, 0.0), x, (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u); }
`;
