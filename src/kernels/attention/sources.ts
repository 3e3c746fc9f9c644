/**
 * The attention kernels, written in the code-generation language of codegen.ts: forward
 * (online softmax, saves lse), and the backward's delta = rowsum(dO ∘ O), dQ and dK/dV kernels.
 */
import { FLAT_INDEX, WG } from '../common.js';
import {
  declarations,
  dots,
  hsum,
  loadRows,
  operandLets,
  pairs,
  range,
  rowLets,
  Shape,
  storeRows,
  streamLoop,
  tileDecls,
  updates,
  type AttentionConfig,
  type Header,
  type BoundOperand,
  type Stream,
} from './codegen.js';

/** Parameters of the forward, dQ and dK/dV kernels (besides the operands'). */
export const ATTENTION_HEADER = { nq: 'u32', nk: 'u32', scale_log2e: 'f32', scale: 'f32', dv4: 'u32' } as const satisfies Header;
/** Parameters of the delta kernel (besides the operands'). */
export const DELTA_HEADER = { nq: 'u32', heads: 'u32', batch: 'u32' } as const satisfies Header;

const MAIN = (cfg: AttentionConfig) => `const T = ${cfg.rows}u;
@compute @workgroup_size(${cfg.rows})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let b = wid.z;
  let Nq = params.nq;
  let Nk = params.nk;
  let sl2 = params.scale_log2e;
  let scale = params.scale;
  // ⌈D/4⌉ from the uniform, so that the compiler cannot unroll the loops over D.
  let dv4 = params.dv4;`;

export function forwardSource(d: number, cfg: AttentionConfig, ops: BoundOperand[]): string {
  const [q, k, v, o] = ops;
  const sh = new Shape(d, cfg);
  const U = range(cfg.unroll);
  const st: Stream = { rows: [k, v], scalars: [], limit: 'Nk' };
  const step = (access: (n: string, u: number, i: string) => string) => `${dots(sh, access, [['sa', 'qr', 'k']])}
${range(cfg.perThread)
  .map(
    (r) => `${U.map((u) => `    let s${r}_${u} = select(-1.0e30, ${hsum(`sa${r}_${u}`)}, ok_${u});`).join('\n')}
    let mt${r} = ${U.reduce((e, u) => `max(${e}, s${r}_${u})`, `m${r}`)};
    let alpha${r} = exp2(m${r} - mt${r});
${U.map((u) => `    let p${r}_${u} = exp2(s${r}_${u} - mt${r});`).join('\n')}
    l${r} = l${r} * alpha${r} + ${U.map((u) => `p${r}_${u}`).join(' + ')};
    m${r} = mt${r};`,
  )
  .join('\n')}
${updates(sh, access, [['acc', 'v', (r, u) => `p${r}_${u}`, (x, r) => `${x} * alpha${r}`]])}`;
  return `${declarations(ATTENTION_HEADER, ops)}
${tileDecls(sh, st)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nq')}
  // q carries scale·log2(e): scores come out in log2 units, ready for exp2.
${loadRows(sh, q, 'qr', ' * sl2')}
${sh.declare('acc')}
${range(cfg.perThread)
  .map((r) => `  var m${r} = -3.0e38;\n  var l${r} = 0.0;`)
  .join('\n')}
${streamLoop(sh, st, step)}
${storeRows(sh, o, 'acc', (r) => `(1.0 / l${r})`)}
${range(cfg.perThread)
  .map((r) => `  if (valid${r}) { ${ops[4].buf}[lse_base + row${r} * lse_sn] = (m${r} + log2(l${r})) * ${Math.LN2}; }`)
  .join('\n')}
}`;
}

export function deltaSource(d: number, ops: BoundOperand[]): string {
  return `${declarations(DELTA_HEADER, ops)}
const WG = ${WG}u;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  let Nq = params.nq;
  let H = params.heads;
  if (i >= Nq * H * params.batch) { return; }
  let row = i % Nq;
  let h = (i / Nq) % H;
  let b = i / (Nq * H);
${operandLets(ops)}
  let ob = o_base + row * o_sn;
  let gb = dO_base + row * dO_sn;
  var acc = 0.0;
  for (var c = 0u; c < ${d}u; c++) { acc += f32(${ops[0].buf}[ob + c * o_sd]) * f32(${ops[1].buf}[gb + c * dO_sd]); }
  ${ops[2].buf}[delta_base + row * delta_sn] = acc;
}`;
}

export function dqSource(d: number, cfg: AttentionConfig, ops: BoundOperand[]): string {
  const [q, k, v, dO, , , dq] = ops;
  const sh = new Shape(d, cfg);
  const st: Stream = { rows: [k, v], scalars: [], limit: 'Nk' };
  const step = (access: (n: string, u: number, i: string) => string) => `${dots(sh, access, [
    ['sa', 'qr', 'k'],
    ['sg', 'gr', 'v'],
  ])}
${pairs(cfg)
  .map(
    ([r, u]) => `    let p${r}_${u} = select(0.0, exp2(${hsum(`sa${r}_${u}`)} - lse${r}), ok_${u});
    let ds${r}_${u} = p${r}_${u} * (${hsum(`sg${r}_${u}`)} - dlt${r});`,
  )
  .join('\n')}
${updates(sh, access, [['acc', 'k', (r, u) => `ds${r}_${u}`, (x) => x]])}`;
  return `${declarations(ATTENTION_HEADER, ops)}
${tileDecls(sh, st)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nq')}
${loadRows(sh, q, 'qr', ' * sl2')}
${loadRows(sh, dO, 'gr')}
${range(cfg.perThread)
  .map(
    (r) => `  var lse${r} = 0.0;
  var dlt${r} = 0.0;
  if (valid${r}) {
    lse${r} = ${ops[4].buf}[lse_base + row${r} * lse_sn] * ${Math.LOG2E};
    dlt${r} = ${ops[5].buf}[delta_base + row${r} * delta_sn];
  }`,
  )
  .join('\n')}
${sh.declare('acc')}
${streamLoop(sh, st, step)}
${storeRows(sh, dq, 'acc', () => 'scale')}
}`;
}

export function dkdvSource(d: number, cfg: AttentionConfig, ops: BoundOperand[]): string {
  const [q, k, v, dO, lse, delta, dk, dv] = ops;
  const sh = new Shape(d, cfg);
  const st: Stream = {
    rows: [q, dO],
    scalars: [
      { op: lse, factor: ` * ${Math.LOG2E}` },
      { op: delta, factor: '' },
    ],
    limit: 'Nq',
  };
  const step = (access: (n: string, u: number, i: string) => string) => `${dots(sh, access, [
    ['sa', 'kr', 'q'],
    ['sg', 'vr', 'dO'],
  ])}
${pairs(cfg)
  .map(
    ([r, u]) => `    let p${r}_${u} = select(0.0, exp2(${hsum(`sa${r}_${u}`)} - lses${u}), ok_${u});
    let ds${r}_${u} = p${r}_${u} * (${hsum(`sg${r}_${u}`)} - deltas${u});`,
  )
  .join('\n')}
${updates(sh, access, [
  ['dvr', 'dO', (r, u) => `p${r}_${u}`, (x) => x],
  ['dkr', 'q', (r, u) => `ds${r}_${u}`, (x) => x],
])}`;
  return `${declarations(ATTENTION_HEADER, ops)}
${tileDecls(sh, st)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nk')}
  // k carries scale·log2(e) so that k·q is the score in log2 units.
${loadRows(sh, k, 'kr', ' * sl2')}
${loadRows(sh, v, 'vr')}
${sh.declare('dkr')}
${sh.declare('dvr')}
${streamLoop(sh, st, step)}
${storeRows(sh, dk, 'dkr', () => 'scale')}
${storeRows(sh, dv, 'dvr', () => '1.0')}
}`;
}
