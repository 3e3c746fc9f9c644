/** Element types the engine holds on the GPU. */
export type DType = 'f32' | 'i32' | 'u32' | 'f16';

export const DTYPES: readonly DType[] = ['f32', 'i32', 'u32', 'f16'];

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

export function assertDType(x: unknown, op: string): DType {
  if (!isDType(x)) throw new TypeError(`${op}: unknown dtype ${JSON.stringify(x)}; expected one of ${DTYPES.join(', ')}`);
  return x;
}

export function byteSize(dtype: DType): number {
  return dtype === 'f16' ? 2 : 4;
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'f32' || dtype === 'f16';
}
