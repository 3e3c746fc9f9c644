/**
 * Subgroup-broadcast matmul (see BroadcastConfig), for CPU adapters whose subgroup is the SIMD
 * vector. On lavapipe every storage load whose address is not a constant becomes a loop over the
 * 8 lanes with a bounds check per lane (≈ 12 instructions per element), so loads, not FMAs, bound
 * the register kernel: each thread of it loads its own RM rows of A although the 8 lanes of a
 * vector share them. Here one subgroup owns an RM-row block: lane l loads rows l, l + lanes, … of
 * it, and subgroupBroadcast hands each row's value to every lane (a register shuffle). Each lane
 * owns RN columns of its own, in vec4 groups col0 + g·4·lanes + 4l + (0..3), so B loads are vec4
 * along N where the view allows it ('o4'), scalars otherwise.
 *
 * The workgroup is one subgroup and nothing returns early, so every lane reaches every broadcast
 * (uniform control flow); out-of-range rows and columns are clamped on load and skipped on store.
 */
import type { BroadcastConfig } from './configs.js';
import { batchDecode, preamble, stores, type KernelSpec } from './epilogue.js';

export function broadcastSource(s: KernelSpec, c: BroadcastConfig): string {
  const { lanes: L, rm: RM, rn: RN } = c;
  if (RM % L !== 0 || RN % 4 !== 0)
    throw new RangeError(`matmul: broadcast config ${JSON.stringify(c)} needs rm % lanes == 0 and rn % 4 == 0`);
  if (s.aMode === 'k4' || s.aMode === 'o4' || s.bMode === 'k4')
    throw new RangeError(`matmul: the broadcast kernel reads A as scalars and B as scalars or 'o4', got A ${s.aMode}, B ${s.bMode}`);
  const G = RN / 4;
  const setup: string[] = [];
  const loads: string[] = [];
  const aSk = s.aMode === 'k1' ? '' : ' * params.a_sk';
  for (let q = 0; q < RM / L; q++) {
    setup.push(`let ar${q} = aB + min(row0 + ${q * L}u + lane, M - 1u) * params.a_sm;`);
    loads.push(`let av${q} = f32(A[ar${q} + k${aSk}]);`);
  }
  // b{g}: the lane's columns 4g..4g+3 of its block at this k.
  for (let g = 0; g < G; g++) {
    if (s.bMode === 'o4') {
      setup.push(`let bg${g} = (bB + min(col0 + ${g * 4 * L}u, N - 4u)) / 4u;`);
      loads.push(`let b${g} = vec4<f32>(B[bg${g} + k * params.b_sk4]);`);
    } else {
      // Scalars (x·Wᵀ included): vec4 loads along K with a 4-step loop measured no faster.
      const bSk = s.bMode === 'k1' ? '' : ' * params.b_sk';
      const cols = [0, 1, 2, 3].map((e) => {
        setup.push(`let bc${g}_${e} = bB + min(col0 + ${g * 4 * L + e}u, N - 1u) * params.b_sn;`);
        return `f32(B[bc${g}_${e} + k${bSk}])`;
      });
      loads.push(`let b${g} = vec4<f32>(${cols.join(', ')});`);
    }
  }
  const fmas: string[] = [];
  const accs: string[] = [];
  for (let r = 0; r < RM; r++) {
    fmas.push(`{ let a = vec4<f32>(subgroupBroadcast(av${Math.floor(r / L)}, ${r % L}u));`);
    for (let g = 0; g < G; g++) {
      accs.push(`var acc${r}_${g} = vec4<f32>(0.0);`);
      fmas.push(`  acc${r}_${g} = fma(a, b${g}, acc${r}_${g});`);
    }
    fmas.push('}');
  }
  return `enable subgroups;
${preamble(s)}
@compute @workgroup_size(${L}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = params.M; let N = params.N; let K = params.K;
  let lane = lid.x;
  let row0 = wid.y * ${RM}u; let col0 = wid.x * ${L * RN}u + lane * 4u;
  ${batchDecode(s.batchRank, 'wid.z')}
  ${setup.join('\n  ')}
  ${accs.join('\n  ')}
  for (var k = 0u; k < K; k += 1u) {
    ${loads.join('\n    ')}
    ${fmas.join('\n    ')}
  }
  ${stores(
    RM,
    RN,
    (r) => `row0 + ${r}`,
    (j) => `col0 + (${j} / 4u) * ${4 * L}u + ${j} % 4u`,
  )}
}`;
}
