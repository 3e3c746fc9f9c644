/**
 * Register-blocked matmul: no workgroup memory; thread (x, y) keeps an RM×RN block of outputs
 * (rows y·RM.., cols x·RN..) in vec4 accumulators and streams A and B from global memory, with
 * vec4 loads along whichever dim of each operand is contiguous, or scalar loads with a K step of
 * 1 (which suit lavapipe better: see ../tuning.ts).
 */
import type { RegisterConfig } from './configs.js';
import { batchDecode, comp, preamble, stores, type KernelSpec } from './epilogue.js';

export function registerSource(s: KernelSpec, c: RegisterConfig): string {
  const { rm: RM, rn: RN } = c;
  const G = RN / 4;
  const body: string[] = [];
  const setup: string[] = [];
  const hasK4 = s.aMode === 'k4' || s.bMode === 'k4';
  // A: value(r, kk) for rows r, k-offset kk within a step.
  let aLoad: (kk: number, k: string) => string[];
  let aVal: (r: number, kk: number) => string;
  if (s.aMode === 'k4') {
    for (let r = 0; r < RM; r++) setup.push(`let ar${r} = (aB + min(row0 + ${r}u, M - 1u) * params.a_sm) / 4u;`);
    aLoad = (_kk, k) => (_kk === 0 ? Array.from({ length: RM }, (_, r) => `let a${r} = vec4<f32>(A[ar${r} + (${k} >> 2u)]);`) : []);
    aVal = (r, kk) => `a${r}.${comp(kk)}`;
  } else if (s.aMode === 'o4') {
    for (let g = 0; g < RM / 4; g++) setup.push(`let ag${g} = (aB + min(row0 + ${4 * g}u, M - 4u)) / 4u;`);
    aLoad = (kk, k) => Array.from({ length: RM / 4 }, (_, g) => `let a${kk}_${g} = vec4<f32>(A[ag${g} + (${k} + ${kk}u) * params.a_sk4]);`);
    aVal = (r, kk) => `a${kk}_${r >> 2}.${comp(r & 3)}`;
  } else {
    for (let r = 0; r < RM; r++) setup.push(`let ar${r} = aB + min(row0 + ${r}u, M - 1u) * params.a_sm;`);
    const sk = s.aMode === 'k1' ? '' : ' * params.a_sk';
    aLoad = (kk, k) => Array.from({ length: RM }, (_, r) => `let a${kk}_${r} = f32(A[ar${r} + (${k} + ${kk}u)${sk}]);`);
    aVal = (r, kk) => `a${kk}_${r}`;
  }
  // B: row vector (kk, g) = B[k + kk, cols 4g..4g+3].
  let bLoad: (kk: number, k: string) => string[];
  let bRow: (kk: number, g: number) => string;
  if (s.bMode === 'o4') {
    for (let g = 0; g < G; g++) setup.push(`let bg${g} = (bB + min(col0 + ${4 * g}u, N - 4u)) / 4u;`);
    bLoad = (kk, k) => Array.from({ length: G }, (_, g) => `let b${kk}_${g} = vec4<f32>(B[bg${g} + (${k} + ${kk}u) * params.b_sk4]);`);
    bRow = (kk, g) => `b${kk}_${g}`;
  } else if (s.bMode === 'k4') {
    for (let j = 0; j < RN; j++) setup.push(`let bc${j} = (bB + min(col0 + ${j}u, N - 1u) * params.b_sn) / 4u;`);
    bLoad = (kk, k) => (kk === 0 ? Array.from({ length: RN }, (_, j) => `let b${j} = vec4<f32>(B[bc${j} + (${k} >> 2u)]);`) : []);
    bRow = (kk, g) => `vec4<f32>(${[0, 1, 2, 3].map((j) => `b${4 * g + j}.${comp(kk)}`).join(', ')})`;
  } else {
    for (let j = 0; j < RN; j++) setup.push(`let bc${j} = bB + min(col0 + ${j}u, N - 1u) * params.b_sn;`);
    const sk = s.bMode === 'k1' ? '' : ' * params.b_sk';
    bLoad = (kk, k) => Array.from({ length: RN }, (_, j) => `let b${kk}_${j} = f32(B[bc${j} + (${k} + ${kk}u)${sk}]);`);
    bRow = (kk, g) => `vec4<f32>(${[0, 1, 2, 3].map((j) => `b${kk}_${4 * g + j}`).join(', ')})`;
  }
  const step = (n: number) => {
    const lines: string[] = [];
    for (let kk = 0; kk < n; kk++) lines.push(...aLoad(kk, 'k'), ...bLoad(kk, 'k'));
    for (let kk = 0; kk < n; kk++)
      for (let r = 0; r < RM; r++)
        for (let g = 0; g < G; g++) lines.push(`acc${r}_${g} = fma(vec4<f32>(${aVal(r, kk)}), ${bRow(kk, g)}, acc${r}_${g});`);
    return lines.join('\n    ');
  };
  if (!c.scalar) body.push(`for (; k + 4u <= K; k += 4u) {\n    ${step(4)}\n  }`);
  // 'k4' modes imply K % 4 == 0, so only the other modes need a tail.
  if (!hasK4) body.push(`for (; k < K; k += 1u) {\n    ${step(1)}\n  }`);
  const accs = [];
  for (let r = 0; r < RM; r++) for (let g = 0; g < G; g++) accs.push(`var acc${r}_${g} = vec4<f32>(0.0);`);
  return `${preamble(s)}
@compute @workgroup_size(${c.wgX}, ${c.wgY}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = params.M; let N = params.N; let K = params.K;
  let row0 = gid.y * ${RM}u; let col0 = gid.x * ${RN}u;
  if (row0 >= M || col0 >= N) { return; }
  ${batchDecode(s.batchRank, 'gid.z')}
  ${setup.join('\n  ')}
  ${accs.join('\n  ')}
  var k = 0u;
  ${body.join('\n  ')}
  ${stores(
    RM,
    RN,
    (r) => `row0 + ${r}`,
    (j) => `col0 + ${j}`,
  )}
}`;
}
