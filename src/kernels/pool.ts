/**
 * 2-D max and average pooling over NCHW, one thread per output element (forward) or per input
 * element (backward). Backward gathers rather than scatters, so it needs no atomics: an input
 * pixel visits every window that contains it (at most ⌈k/s⌉ per axis) and adds that window's
 * gradient — for max pooling only where the forward pass's saved argmax (the flat index within
 * the H×W plane) is this pixel, so ties go to the one element PyTorch picks (the first maximum
 * in row-major window order; a NaN wins and propagates).
 *
 * Average pooling divides by the window clipped to the padded input (countIncludePad, PyTorch's
 * default) or by the number of real pixels in it (TensorFlow's 'same' average pool).
 */
import { runtime } from '../gpu/runtime.js';
import { fmt, sizeOf } from '../core/shape.js';
import { enables, FLAT_INDEX, grid1d, WG } from './common.js';
import { uniforms } from './uniforms.js';
import { NAN_WGSL } from './wgsl-math.js';
import { isContiguous, type View } from './view.js';

export type PoolKind = 'max' | 'avg';

export interface PoolGeometry {
  NC: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  countIncludePad: boolean;
}

const POOL_UNIFORMS = uniforms({
  total: 'u32',
  H: 'u32',
  W: 'u32',
  OH: 'u32',
  OW: 'u32',
  kh: 'u32',
  kw: 'u32',
  sh: 'u32',
  sw: 'u32',
  ph: 'u32',
  pw: 'u32',
  a_offset: 'u32',
  b_offset: 'u32',
  o_offset: 'u32',
});

function check(v: View, shape: readonly number[], op: string, what: string, dtypes: string[]): void {
  if (sizeOf(v.shape) !== sizeOf(shape) || !isContiguous(v))
    throw new RangeError(`${op}: ${what} must be contiguous with shape ${fmt(shape)}, got ${fmt(v.shape)}`);
  if (!dtypes.includes(v.dtype)) throw new TypeError(`${op}: ${what} must be ${dtypes.join(' or ')}, got ${v.dtype}`);
}

/** Forward: y [NC, OH, OW] (f32); for max pooling also argmax [NC, OH, OW] (u32, index in the H×W plane). */
export function pool2dInto(kind: PoolKind, x: View, y: View, argmax: View | undefined, g: PoolGeometry): void {
  const op = `${kind}Pool2d`;
  check(x, [g.NC, g.H, g.W], op, 'x', ['f32', 'f16']);
  check(y, [g.NC, g.OH, g.OW], op, 'out', ['f32']);
  if (kind === 'max') {
    if (!argmax) throw new RangeError('maxPool2d: the argmax output is required');
    check(argmax, [g.NC, g.OH, g.OW], op, 'argmax', ['u32']);
  }
  launch(kind, 'forward', g, kind === 'max' ? [x] : [x], kind === 'max' ? [y, argmax!] : [y], g.NC * g.OH * g.OW);
}

/** Backward: dx [NC, H, W] (f32) from dy [NC, OH, OW] (and the forward's argmax for max pooling). */
export function pool2dBackwardInto(kind: PoolKind, dy: View, argmax: View | undefined, dx: View, g: PoolGeometry): void {
  const op = `${kind}Pool2dBackward`;
  check(dy, [g.NC, g.OH, g.OW], op, 'dy', ['f32', 'f16']);
  check(dx, [g.NC, g.H, g.W], op, 'dx', ['f32']);
  if (kind === 'max') {
    if (!argmax) throw new RangeError('maxPool2dBackward: the forward argmax is required');
    check(argmax, [g.NC, g.OH, g.OW], op, 'argmax', ['u32']);
  }
  launch(kind, 'backward', g, kind === 'max' ? [dy, argmax!] : [dy], [dx], g.NC * g.H * g.W);
}

function launch(kind: PoolKind, pass: 'forward' | 'backward', g: PoolGeometry, ins: View[], outs: View[], total: number): void {
  if (total === 0) return;
  const inT = ins[0].dtype;
  const key = `pool|${kind}|${pass}|${kind === 'avg' ? `pad${g.countIncludePad}` : ''}|${inT}`;
  const all = [...ins, ...outs];
  const params = POOL_UNIFORMS.pack({
    total,
    H: g.H,
    W: g.W,
    OH: g.OH,
    OW: g.OW,
    kh: g.kernel[0],
    kw: g.kernel[1],
    sh: g.stride[0],
    sw: g.stride[1],
    ph: g.padding[0],
    pw: g.padding[1],
    a_offset: ins[0].offset,
    b_offset: (pass === 'forward' ? outs[1] : ins[1])?.offset ?? 0,
    o_offset: outs[0].offset,
  });
  runtime().dispatch(
    {
      key,
      bindings: [...ins.map(() => 'read' as const), ...outs.map(() => 'write' as const), 'uniform'],
      wgsl: () => poolSource(kind, pass, g.countIncludePad, inT),
    },
    all.map((v) => v.buffer),
    grid1d(total),
    params,
  );
}

/** WGSL of one pooling kernel (cache key: kind, pass, countIncludePad for avg, input dtype). */
export function poolSource(kind: PoolKind, pass: 'forward' | 'backward', countIncludePad: boolean, inT: string): string {
  // Divisor of window (oh, ow): clipped to the padded input, or to the real input.
  const divisor = countIncludePad
    ? `let h0 = i32(oh * params.sh) - i32(params.ph);
    let w0 = i32(ow * params.sw) - i32(params.pw);
    let div = f32((min(h0 + i32(params.kh), i32(params.H + params.ph)) - h0) * (min(w0 + i32(params.kw), i32(params.W + params.pw)) - w0));`
    : `let h0 = i32(oh * params.sh) - i32(params.ph);
    let w0 = i32(ow * params.sw) - i32(params.pw);
    let div = f32((min(h0 + i32(params.kh), i32(params.H)) - max(h0, 0)) * (min(w0 + i32(params.kw), i32(params.W)) - max(w0, 0)));`;
  let decl: string;
  let body: string;
  if (pass === 'forward') {
    decl = `@group(0) @binding(0) var<storage, read> X: array<${inT}>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
${kind === 'max' ? '@group(0) @binding(2) var<storage, read_write> IDX: array<u32>;' : ''}
${POOL_UNIFORMS.wgsl(kind === 'max' ? 3 : 2)}`;
    const init = kind === 'max' ? 'var best = -f_inf();\n  var bestAt = 0u;\n  var found = false;' : 'var s = 0.0;';
    const visit =
      kind === 'max'
        ? `let v = f32(X[xb + u32(ih) * params.W + u32(iw)]);
        if (!is_nan(best) && (!found || v > best || is_nan(v))) { best = v; bestAt = u32(ih) * params.W + u32(iw); }
        found = true;`
        : `s += f32(X[xb + u32(ih) * params.W + u32(iw)]);`;
    const fin =
      kind === 'max'
        ? 'Y[params.o_offset + i] = best;\n  IDX[params.b_offset + i] = bestAt;'
        : `${divisor}\n  Y[params.o_offset + i] = s / div;`;
    body = `let ow = i % params.OW;
  let oh = (i / params.OW) % params.OH;
  let nc = i / (params.OW * params.OH);
  let xb = params.a_offset + nc * params.H * params.W;
  ${init}
  for (var a = 0u; a < params.kh; a++) {
    let ih = i32(oh * params.sh + a) - i32(params.ph);
    if (ih < 0 || ih >= i32(params.H)) { continue; }
    for (var b = 0u; b < params.kw; b++) {
      let iw = i32(ow * params.sw + b) - i32(params.pw);
      if (iw < 0 || iw >= i32(params.W)) { continue; }
      ${visit}
    }
  }
  ${fin}`;
  } else {
    decl = `@group(0) @binding(0) var<storage, read> DY: array<${inT}>;
${
  kind === 'max'
    ? `@group(0) @binding(1) var<storage, read> IDX: array<u32>;
@group(0) @binding(2) var<storage, read_write> DX: array<f32>;`
    : '@group(0) @binding(1) var<storage, read_write> DX: array<f32>;'
}
${POOL_UNIFORMS.wgsl(kind === 'max' ? 3 : 2)}`;
    const add =
      kind === 'max'
        ? 'if (IDX[params.b_offset + o] == here) { s += f32(DY[params.a_offset + o]); }'
        : `${divisor}\n        s += f32(DY[params.a_offset + o]) / div;`;
    body = `let iw = i32(i % params.W);
  let ih = i32((i / params.W) % params.H);
  let nc = i / (params.W * params.H);
  let here = u32(ih) * params.W + u32(iw);
  // Windows oh with oh·s − p ≤ ih < oh·s − p + k.
  let hp = ih + i32(params.ph);
  let wp = iw + i32(params.pw);
  let ohLo = u32(max(hp - i32(params.kh) + i32(params.sh), 0)) / params.sh;
  let ohHi = min(u32(hp) / params.sh + 1u, params.OH);
  let owLo = u32(max(wp - i32(params.kw) + i32(params.sw), 0)) / params.sw;
  let owHi = min(u32(wp) / params.sw + 1u, params.OW);
  var s = 0.0;
  for (var oh = ohLo; oh < ohHi; oh++) {
    for (var ow = owLo; ow < owHi; ow++) {
        let o = (nc * params.OH + oh) * params.OW + ow;
        ${add}
    }
  }
  DX[params.o_offset + i] = s;`;
  }
  return `${enables([inT as 'f32'])}${decl}
const WG = ${WG}u;
${NAN_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= params.total) { return; }
  ${body}
}`;
}
