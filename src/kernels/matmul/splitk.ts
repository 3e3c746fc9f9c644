/**
 * Split-K matmul (see SplitKConfig): a subgroup of `lanes` invocations along x shares one output
 * block; y picks the block's columns. Both operands are K-contiguous ('k1'). The K loop runs the
 * same number of times in every lane (the last, partial step zeroes A) so subgroupAdd stays in
 * uniform control flow; lane l then writes the block's elements l, l + lanes, ….
 */
import type { SplitKConfig } from './configs.js';
import { batchDecode, preamble, storeLoop, type KernelSpec } from './epilogue.js';

export function splitKSource(s: KernelSpec, c: SplitKConfig): string {
  const { lanes: L, rm: RM, rn: RN } = c;
  const lines: string[] = [];
  for (let r = 0; r < RM; r++) lines.push(`let a${r} = select(0.0, f32(A[ar${r} + kc]), k < K);`);
  for (let j = 0; j < RN; j++) lines.push(`let b${j} = f32(B[bc${j} + kc]);`);
  for (let r = 0; r < RM; r++) for (let j = 0; j < RN; j++) lines.push(`acc${r}_${j} = fma(a${r}, b${j}, acc${r}_${j});`);
  const setup: string[] = [];
  for (let r = 0; r < RM; r++) setup.push(`let ar${r} = aB + min(row0 + ${r}u, M - 1u) * params.a_sm;`);
  for (let j = 0; j < RN; j++) setup.push(`let bc${j} = bB + min(col0 + ${j}u, N - 1u) * params.b_sn;`);
  const accs: string[] = [];
  const sums: string[] = [];
  for (let r = 0; r < RM; r++) {
    for (let j = 0; j < RN; j++) {
      accs.push(`var acc${r}_${j} = 0.0;`);
      sums.push(`subgroupAdd(acc${r}_${j})`);
    }
  }
  return `enable subgroups;
${preamble(s)}
@compute @workgroup_size(${L}, ${c.wgY}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = params.M; let N = params.N; let K = params.K;
  let row0 = wid.y * ${RM}u; let col0 = (wid.x * ${c.wgY}u + lid.y) * ${RN}u;
  ${batchDecode(s.batchRank, 'wid.z')}
  ${setup.join('\n  ')}
  ${accs.join('\n  ')}
  for (var k0 = 0u; k0 < K; k0 += ${L}u) {
    let k = k0 + lid.x; let kc = min(k, K - 1u);
    ${lines.join('\n    ')}
  }
  var sums = array<f32, ${RM * RN}>(${sums.join(', ')});
  ${storeLoop(
    RM,
    RN,
    (r) => `row0 + ${r}`,
    (j) => `col0 + ${j}`,
    (r, j) => `sums[${r} * ${RN}u + ${j}]`,
    'lid.x',
    `${L}u`,
  )}
}
`;
}
