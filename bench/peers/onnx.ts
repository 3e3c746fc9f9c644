/**
 * A few ONNX graphs written as protobuf bytes (onnx.proto's field numbers), so that the
 * onnxruntime-web cases need no model files and no protobuf dependency.
 */

/** Protobuf wire encoding: varints, length-delimited fields, 32-bit floats. */
class Pb {
  private bytes: number[] = [];
  private varint(v: number): void {
    let n = BigInt.asUintN(64, BigInt(v));
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n) b |= 0x80;
      this.bytes.push(b);
    } while (n);
  }
  int(field: number, v: number): this {
    this.varint(field << 3);
    this.varint(v);
    return this;
  }
  float(field: number, v: number): this {
    this.varint((field << 3) | 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }
  bytesField(field: number, data: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    return this.bytesField(field, m.done());
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

export type Attr = number | number[] | { f: number };

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, Attr>;
}

const FLOAT = 1; // TensorProto.DataType.FLOAT
// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

function valueInfo(name: string, shape: number[]): Pb {
  const dims = new Pb();
  for (const d of shape) dims.msg(1, new Pb().int(1, d));
  const tensorType = new Pb().int(1, FLOAT).msg(2, dims);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType));
}

function attribute(name: string, a: Attr): Pb {
  const p = new Pb().str(1, name);
  if (typeof a === 'number') return p.int(3, a).int(20, ATTR_INT);
  if (Array.isArray(a)) {
    for (const v of a) p.int(8, v);
    return p.int(20, ATTR_INTS);
  }
  return p.float(2, a.f).int(20, ATTR_FLOAT);
}

/** A float32 model: graph inputs and outputs with static shapes, nodes in order. */
export function onnxModel(inputs: [string, number[]][], outputs: [string, number[]][], nodes: Node[], opset = 17): Uint8Array {
  const graph = new Pb();
  nodes.forEach((n, i) => {
    const node = new Pb();
    for (const x of n.inputs) node.str(1, x);
    for (const y of n.outputs) node.str(2, y);
    node.str(3, `n${i}`).str(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.msg(5, attribute(k, v));
    graph.msg(1, node);
  });
  graph.str(2, 'bench');
  for (const [n, s] of inputs) graph.msg(11, valueInfo(n, s));
  for (const [n, s] of outputs) graph.msg(12, valueInfo(n, s));
  // ModelProto: ir_version 8, producer, graph, opset_import (default domain).
  return new Pb().int(1, 8).str(2, 'rae-webgpu-bench').msg(7, graph).msg(8, new Pb().str(1, '').int(2, opset)).done();
}
