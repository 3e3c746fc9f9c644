/**
 * Counter-based random numbers: Threefry-2x32 with 20 rounds (Salmon et al., 2011) keyed by the
 * seed. Element i of a draw hashes the counter (⌊i/2⌋, stream) and uses one of the two words, so
 * the same seed gives the same numbers on any adapter with exact u32 arithmetic. Normals use
 * Box–Muller on the pair; uniforms use the top 24 bits.
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { FLAT_INDEX, grid1d, WG } from './common.js';
import { uniforms } from './uniforms.js';
import type { View } from './view.js';

export type RandomKind = 'uniform' | 'normal' | 'randint' | 'bernoulli';

export const THREEFRY_WGSL = `
fn rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }
fn threefry2x32(c0: u32, c1: u32, k0: u32, k1: u32) -> vec2<u32> {
  let ks = array<u32, 3>(k0, k1, 0x1BD11BDAu ^ k0 ^ k1);
  let R = array<u32, 8>(13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u);
  var x0 = c0 + k0;
  var x1 = c1 + k1;
  for (var r = 0u; r < 20u; r++) {
    x0 += x1; x1 = rotl(x1, R[r % 8u]); x1 ^= x0;
    if (r % 4u == 3u) {
      let s = (r + 1u) / 4u;
      x0 += ks[s % 3u];
      x1 += ks[(s + 1u) % 3u] + s;
    }
  }
  return vec2<u32>(x0, x1);
}
fn unit_open_closed(x: u32) -> f32 { return f32((x >> 8u) + 1u) * (1.0 / 16777216.0); }
fn unit_closed_open(x: u32) -> f32 { return f32(x >> 8u) * (1.0 / 16777216.0); }
`;

/**
 * n elements from the stream `stream` of the seed (seed_lo, seed_hi); s0, s1: the draw's two
 * parameters; lo/span: randint's range [lo, lo + span); out_offset: where the view starts.
 */
const RANDOM_UNIFORMS = uniforms({
  n: 'u32',
  seed_lo: 'u32',
  seed_hi: 'u32',
  stream: 'u32',
  s0: 'f32',
  s1: 'f32',
  lo: 'i32',
  span: 'u32',
  out_offset: 'u32',
});

/** randint's [lo, lo + span); other draws do not read them. */
function randintRange(kind: RandomKind, a: number, b: number): { lo: number; span: number } {
  if (kind !== 'randint') return { lo: 0, span: 0 };
  return { lo: Math.floor(a), span: Math.max(0, Math.floor(b) - Math.floor(a)) };
}

/**
 * Fills the contiguous view `out` with random numbers. `a`, `b`: uniform range [a, b), normal
 * mean/std, randint [a, b), bernoulli probability a.
 */
export function randomFill(
  out: View,
  kind: RandomKind,
  seedLo: number,
  seedHi: number,
  stream: number,
  a: number,
  b: number,
  /** Where a replay of a recorded step reads the seed and stream from (the global generator). */
  dynamic?: { seedLo: () => number; stream: () => number },
): void {
  const n = out.shape.reduce((x, y) => x * y, 1);
  if (n === 0) return;
  const t: DType = out.dtype;
  const value =
    kind === 'uniform'
      ? `${t}(s0 + (s1 - s0) * unit_closed_open(w))`
      : kind === 'normal'
        ? `${t}(s0 + s1 * z)`
        : kind === 'bernoulli'
          ? `${t}(select(0.0, 1.0, unit_closed_open(w) < s0))`
          : `${t}(lo + i32(min(u32(floor(unit_closed_open(w) * f32(span))), span - 1u)))`;
  const key = `random|${kind}|${t}`;
  runtime().dispatch(
    {
      key,
      bindings: ['write', 'uniform'],
      wgsl: () => `${t === 'f16' ? 'enable f16;\n' : ''}@group(0) @binding(0) var<storage, read_write> out_buf: array<${t}>;
${RANDOM_UNIFORMS.wgsl(1)}
const WG = ${WG}u;
${THREEFRY_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= params.n) { return; }
  let pair = threefry2x32(i / 2u, params.stream, params.seed_lo, params.seed_hi);
  let w = select(pair.y, pair.x, (i & 1u) == 0u);
  let s0 = params.s0;
  let s1 = params.s1;
  let lo = params.lo;
  let span = params.span;
  let radius = sqrt(-2.0 * log(unit_open_closed(pair.x)));
  let angle = 6.283185307179586 * unit_closed_open(pair.y);
  let z = select(radius * sin(angle), radius * cos(angle), (i & 1u) == 0u);
  out_buf[params.out_offset + i] = ${value};
}`,
    },
    [out.buffer],
    grid1d(n),
    RANDOM_UNIFORMS.pack({
      n,
      seed_lo: seedLo,
      seed_hi: seedHi,
      stream,
      s0: a,
      s1: b,
      ...randintRange(kind, a, b),
      out_offset: out.offset,
    }),
    dynamic ? RANDOM_UNIFORMS.dynamic({ seed_lo: dynamic.seedLo, stream: dynamic.stream }) : undefined,
  );
}
