/**
 * Named kernel parameters. A kernel declares its uniform fields once, by name and type; the
 * layout generates the WGSL struct (read in the kernel as `params.<name>`) and packs a values
 * object by name into the bytes the runtime uploads, following WGSL's uniform layout rules.
 *
 *   const P = uniforms({ n: 'u32', alpha: 'f32', stride: ['u32', 3] });
 *   P.wgsl(2)                       // struct Params { n: u32, alpha: f32, stride_0: u32, … }
 *                                   // @group(0) @binding(2) var<uniform> params: Params;
 *   P.pack({ n: 10, alpha: 0.5, stride: [4, 2, 1] })
 *
 * A counted field `[type, k]` becomes k scalar members `name_0 … name_{k−1}`: WGSL arrays in the
 * uniform address space need a 16-byte element stride, and kernels index these lists only with
 * indices known when the source is generated, so scalars keep the struct dense and each read a
 * constant offset (as cheap as the vec4-array reads they replace).
 *
 * Fields whose value changes from one replay of a recorded step to the next (a learning rate, a
 * random stream) are named with `dynamic({ lr: () => … })`: the runtime then patches those words
 * from the callbacks at each replay instead of re-running the code that packed them.
 *
 * u32 fields take any integer in [−2³¹, 2³²): negative values wrap (a negative stride added in
 * u32 arithmetic is still exact modulo 2³²). i32 fields take integers in [−2³¹, 2³¹).
 */

export type ScalarType = 'u32' | 'i32' | 'f32';
export type VectorType = `vec2<${ScalarType}>` | `vec4<${ScalarType}>`;
export type FieldType = ScalarType | VectorType | readonly [ScalarType, number];
export type FieldSpec = Record<string, FieldType>;

/** The values `pack` takes: a number per scalar, an array per vector or counted field. */
export type UniformValues<F extends FieldSpec> = {
  [K in keyof F]: F[K] extends ScalarType
    ? number
    : F[K] extends VectorType | readonly [ScalarType, number]
      ? readonly number[]
      : number | readonly number[];
};

interface Member {
  name: string;
  type: ScalarType;
  /** Components (1, 2 or 4). */
  width: number;
  /** Byte offset in the struct. */
  offset: number;
}

interface Field {
  name: string;
  type: ScalarType;
  /** Members the field expands to, in order; counted fields have one per element. */
  members: Member[];
  /** Values the field takes: 1 for a scalar, the width of a vector, the count of a list. */
  length: number;
  scalar: boolean;
}

const IDENT = /^[A-Za-z][A-Za-z0-9_]*$/;
/** The runtime's uniform slot: one dispatch's parameters never exceed it. */
export const MAX_UNIFORM_BYTES = 256;

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export class UniformLayout<F extends FieldSpec = FieldSpec> {
  private readonly fields: Field[] = [];
  /** Struct size in bytes (a multiple of 16, at least 16). */
  readonly byteSize: number;

  constructor(spec: F) {
    let offset = 0;
    const seen = new Set<string>();
    for (const [name, type] of Object.entries(spec)) {
      if (!IDENT.test(name)) throw new RangeError(`uniforms: field name '${name}' is not a WGSL identifier`);
      const counted = typeof type !== 'string';
      const [scalar, width, count] = counted ? [type[0], 1, type[1]] : parseType(type);
      if (!Number.isInteger(count) || count < 0) throw new RangeError(`uniforms: field '${name}' has count ${count}`);
      const members: Member[] = [];
      for (let i = 0; i < count; i++) {
        const mname = counted ? `${name}_${i}` : name;
        if (seen.has(mname)) throw new RangeError(`uniforms: two fields named '${mname}'`);
        seen.add(mname);
        // WGSL alignment: scalars 4 bytes, vec2 8, vec4 16.
        const align = 4 * width;
        offset = Math.ceil(offset / align) * align;
        members.push({ name: mname, type: scalar, width, offset });
        offset += 4 * width;
      }
      this.fields.push({ name, type: scalar, members, length: counted ? count : width, scalar: !counted && width === 1 });
    }
    this.byteSize = Math.max(16, Math.ceil(offset / 16) * 16);
    if (this.byteSize > MAX_UNIFORM_BYTES) {
      throw new RangeError(
        `uniforms: ${this.byteSize} bytes exceed the ${MAX_UNIFORM_BYTES}-byte uniform slot (fields ${Object.keys(spec).join(', ')})`,
      );
    }
  }

  /** The struct and its binding; the kernel reads `params.<member>`. */
  wgsl(binding: number): string {
    const members = this.fields
      .flatMap((f) => f.members)
      .map((m) => `  ${m.name}: ${m.width === 1 ? m.type : `vec${m.width}<${m.type}>`},`);
    // An empty struct is not valid WGSL; a kernel without parameters still gets a binding.
    if (members.length === 0) members.push('  unused: u32,');
    return `struct Params {\n${members.join('\n')}\n}\n@group(0) @binding(${binding}) var<uniform> params: Params;`;
  }

  /** Packs values by name; every field must be given, and nothing else. */
  pack(values: UniformValues<F>): Uint32Array {
    const out = new Uint32Array(this.byteSize / 4);
    const given = values as Record<string, number | readonly number[]>;
    let used = 0;
    for (const f of this.fields) {
      const v = given[f.name];
      if (v === undefined) throw new TypeError(`uniforms: missing value for '${f.name}'`);
      used++;
      if (f.scalar) {
        if (typeof v !== 'number') throw new TypeError(`uniforms: '${f.name}' takes a number`);
        out[f.members[0].offset / 4] = word(f.type, v, f.name);
        continue;
      }
      if (typeof v === 'number' || v.length !== f.length) throw new TypeError(`uniforms: '${f.name}' takes ${f.length} values`);
      let k = 0;
      for (const m of f.members) for (let c = 0; c < m.width; c++) out[m.offset / 4 + c] = word(f.type, v[k++], f.name);
    }
    if (used !== Object.keys(given).length) {
      const extra = Object.keys(given).filter((n) => !this.fields.some((f) => f.name === n));
      throw new TypeError(`uniforms: unknown field(s) ${extra.join(', ')}`);
    }
    return out;
  }

  /**
   * The words of the named scalar fields with callbacks giving their values at a replay (passed
   * to runtime().dispatch next to pack()'s bytes; eager dispatches ignore them).
   */
  dynamic(fns: { [K in keyof F]?: () => number }): DynamicFieldWord[] {
    const out: DynamicFieldWord[] = [];
    for (const [name, fn] of Object.entries(fns) as [string, (() => number) | undefined][]) {
      if (!fn) continue;
      const f = this.fields.find((x) => x.name === name);
      if (!f?.scalar) throw new TypeError(`uniforms: dynamic field '${name}' must be a scalar field of the layout`);
      const type = f.type;
      out.push({ word: f.members[0].offset / 4, value: () => word(type, fn(), name) });
    }
    return out;
  }
}

export interface DynamicFieldWord {
  word: number;
  value: () => number;
}

function parseType(t: ScalarType | VectorType): [ScalarType, number, number] {
  if (t === 'u32' || t === 'i32' || t === 'f32') return [t, 1, 1];
  const m = /^vec([24])<(u32|i32|f32)>$/.exec(t);
  if (!m) throw new RangeError(`uniforms: unsupported type '${t}'`);
  return [m[2] as ScalarType, Number(m[1]), 1];
}

function word(type: ScalarType, v: number, name: string): number {
  if (type === 'f32') {
    f32Scratch[0] = v;
    return u32Scratch[0];
  }
  const lo = -0x80000000;
  const hi = type === 'u32' ? 0xffffffff : 0x7fffffff;
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`uniforms: '${name}' (${type}) got ${v}`);
  return v >>> 0;
}

/** Declares a kernel's uniform fields (see the file comment). */
export function uniforms<F extends FieldSpec>(spec: F): UniformLayout<F> {
  return new UniformLayout(spec);
}
