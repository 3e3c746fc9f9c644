/**
 * Workgroup-memory tiled matmul: TM×TK and TK×TN tiles staged in workgroup memory (k-major, vec4
 * rows); thread (x, y) owns the interleaved row groups y + i·wgY and column groups x + j·wgX.
 * Meant for discrete GPUs.
 */
import type { SharedConfig } from './configs.js';
import { batchDecode, comp, preamble, stores, type KernelSpec, type LoadMode } from './epilogue.js';

/** Which parameters describe an operand's dims: the other dim's stride, K's, and K's in vec4s. */
interface OperandStrides {
  so: string;
  sk: string;
  sk4: string;
}

/**
 * Stages a TO×TK tile of an operand (TO along M for A, N for B) into workgroup memory laid out
 * k-major with vec4 rows along TO: S[kk·TO/4 + o/4][o%4]. Threads walk the operand's contiguous
 * dim so that neighbouring threads read neighbouring addresses; out-of-range elements are zero.
 */
function tileLoader(
  S: string,
  X: string,
  mode: LoadMode,
  TO: number,
  TK: number,
  T: number,
  o0: string,
  O: string,
  base: string,
  st: OperandStrides,
): string {
  const vec = mode === 'k4' || mode === 'o4';
  const w = vec ? 4 : 1;
  const alongK = mode === 'k4' || mode === 'k1' || mode === 's';
  const groups = (TO * TK) / w;
  const lines: string[] = [];
  for (let i = 0; i < groups / T; i++) {
    const e = `(tid + ${i * T}u)`;
    const [o, kk] = alongK
      ? [`(${e} / ${TK / w}u)`, `(${e} % ${TK / w}u) * ${w}u`]
      : [`(${e} % ${TO / w}u) * ${w}u`, `(${e} / ${TO / w}u)`];
    lines.push(`{ let o = ${o}; let kk = ${kk}; let go = ${o0} + o; let gk = k0 + kk;`);
    if (mode === 'k4') {
      lines.push(
        `  let v = select(vec4<f32>(0.0), vec4<f32>(${X}[(${base} + min(go, ${O} - 1u) * ${st.so}) / 4u + min(gk, K - 4u) / 4u]), go < ${O} && gk < K);`,
      );
      for (let j = 0; j < 4; j++) lines.push(`  ${S}[(kk + ${j}u) * ${TO / 4}u + o / 4u][o % 4u] = v.${comp(j)};`);
    } else if (mode === 'o4') {
      lines.push(
        `  ${S}[kk * ${TO / 4}u + o / 4u] = select(vec4<f32>(0.0), vec4<f32>(${X}[(${base} + min(go, ${O} - 4u)) / 4u + min(gk, K - 1u) * ${st.sk4}]), go < ${O} && gk < K);`,
      );
    } else {
      const so = mode === 'o1' ? '' : ` * ${st.so}`;
      const sk = mode === 'k1' ? '' : ` * ${st.sk}`;
      lines.push(
        `  ${S}[kk * ${TO / 4}u + o / 4u][o % 4u] = select(0.0, f32(${X}[${base} + min(go, ${O} - 1u)${so} + min(gk, K - 1u)${sk}]), go < ${O} && gk < K);`,
      );
    }
    lines.push('}');
  }
  return lines.join('\n    ');
}

export function sharedSource(s: KernelSpec, c: SharedConfig): string {
  const { wgX, wgY, rm: RM, rn: RN, tk: TK } = c;
  const TM = wgY * RM,
    TN = wgX * RN,
    T = wgX * wgY;
  for (const [mode, TO] of [
    [s.aMode, TM],
    [s.bMode, TN],
  ] as const) {
    const w = mode === 'k4' || mode === 'o4' ? 4 : 1;
    if (((TO * TK) / w) % T !== 0 || TK % 4 !== 0) throw new RangeError(`matmul: shared config ${JSON.stringify(c)} does not tile evenly`);
  }
  const GM = RM / 4,
    GN = RN / 4;
  const accs: string[] = [];
  const fmas: string[] = [];
  for (let g = 0; g < GM; g++) fmas.push(`let a${g} = As[kk * ${TM / 4}u + lid.y + ${g * wgY}u];`);
  for (let g = 0; g < GN; g++) fmas.push(`let b${g} = Bs[kk * ${TN / 4}u + lid.x + ${g * wgX}u];`);
  for (let r = 0; r < RM; r++) {
    for (let g = 0; g < GN; g++) {
      accs.push(`var acc${r}_${g} = vec4<f32>(0.0);`);
      fmas.push(`acc${r}_${g} = fma(vec4<f32>(a${r >> 2}.${comp(r & 3)}), b${g}, acc${r}_${g});`);
    }
  }
  const aStrides = { so: 'params.a_sm', sk: 'params.a_sk', sk4: 'params.a_sk4' };
  const bStrides = { so: 'params.b_sn', sk: 'params.b_sk', sk4: 'params.b_sk4' };
  return `${preamble(s)}
var<workgroup> As: array<vec4<f32>, ${(TK * TM) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(TK * TN) / 4}>;
@compute @workgroup_size(${wgX}, ${wgY}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = params.M; let N = params.N; let K = params.K;
  let tid = lid.y * ${wgX}u + lid.x;
  let tileRow = wid.y * ${TM}u; let tileCol = wid.x * ${TN}u;
  ${batchDecode(s.batchRank, 'wid.z')}
  ${accs.join('\n  ')}
  for (var k0 = 0u; k0 < K; k0 += ${TK}u) {
    ${tileLoader('As', 'A', s.aMode, TM, TK, T, 'tileRow', 'M', 'aB', aStrides)}
    ${tileLoader('Bs', 'B', s.bMode, TN, TK, T, 'tileCol', 'N', 'bB', bStrides)}
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk += 1u) {
      ${fmas.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${stores(
    RM,
    RN,
    (r) => `tileRow + (lid.y + (${r} / 4u) * ${wgY}u) * 4u + ${r} % 4u`,
    (j) => `tileCol + (lid.x + (${j} / 4u) * ${wgX}u) * 4u + ${j} % 4u`,
  )}
}`;
}
