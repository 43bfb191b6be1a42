/**
 * A tiny ONNX writer: single-op (or few-op) graphs as protobuf bytes, written by hand so that the
 * benchmarks need no onnx package. Only the fields used here are written (onnx.proto field numbers):
 *   ModelProto      1 ir_version, 7 graph, 8 opset_import
 *   OperatorSetId   1 domain, 2 version
 *   GraphProto      1 node, 2 name, 5 initializer, 11 input, 12 output
 *   NodeProto       1 input, 2 output, 3 name, 4 op_type, 5 attribute, 7 domain
 *   AttributeProto  1 name, 2 f, 3 i, 7 floats, 8 ints, 20 type (FLOAT 1, INT 2, FLOATS 6, INTS 7)
 *   ValueInfoProto  1 name, 2 type -> TypeProto 1 tensor_type -> 1 elem_type, 2 shape -> 1 dim -> 1 dim_value
 *   TensorProto     1 dims, 2 data_type, 8 name, 9 raw_data (little-endian)
 * Element types: FLOAT = 1, INT64 = 7.
 */

/** Protobuf wire-format writer (varint = 0, length-delimited = 2, fixed32 = 5). */
class Writer {
  private readonly chunks: Uint8Array[] = [];
  private pending: number[] = [];

  varint(value: number | bigint): void {
    // Negative int64 values are written as their 64-bit two's complement (10 bytes).
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      const byte = Number(v & 0x7fn);
      v >>= 7n;
      this.pending.push(v > 0n ? byte | 0x80 : byte);
    } while (v > 0n);
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number): void {
    this.tag(field, 0);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, 5);
    this.pending.push(...new Uint8Array(new Float32Array([value]).buffer));
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.chunks.push(Uint8Array.from(this.pending), data);
    this.pending = [];
  }

  string(field: number, value: string): void {
    this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: Writer) => void): void {
    const inner = new Writer();
    build(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const chunks = [...this.chunks, Uint8Array.from(this.pending)];
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

export type OnnxAttribute = number | number[] | { float: number } | { floats: number[] };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attributes?: Record<string, OnnxAttribute>;
}

export interface OnnxValue {
  name: string;
  shape: number[];
}

export interface OnnxInitializer extends OnnxValue {
  data: Float32Array;
}

export interface OnnxGraph {
  inputs: OnnxValue[];
  outputs: OnnxValue[];
  nodes: OnnxNode[];
  initializers?: OnnxInitializer[];
  /** Opset per domain; default { '': 17 } (plus com.microsoft 1 when a node uses it). */
  opsets?: Record<string, number>;
}

const FLOAT = 1;

function writeAttribute(w: Writer, name: string, a: OnnxAttribute): void {
  w.string(1, name);
  if (typeof a === 'number') {
    w.int(3, a);
    w.int(20, 2);
  } else if (Array.isArray(a)) {
    for (const v of a) w.int(8, v);
    w.int(20, 7);
  } else if ('float' in a) {
    w.float(2, a.float);
    w.int(20, 1);
  } else {
    for (const v of a.floats) w.float(7, v);
    w.int(20, 6);
  }
}

function writeValueInfo(w: Writer, v: OnnxValue): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, FLOAT);
      tensor.message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => dim.int(1, d));
      });
    }),
  );
}

/** Serializes a graph as an ONNX ModelProto (IR version 8). */
export function onnxModel(g: OnnxGraph): Uint8Array {
  const opsets: Record<string, number> = { '': 17, ...g.opsets };
  if (g.nodes.some((n) => n.domain === 'com.microsoft') && !('com.microsoft' in opsets)) opsets['com.microsoft'] = 1;
  const w = new Writer();
  w.int(1, 8);
  w.message(7, (graph) => {
    g.nodes.forEach((n, i) =>
      graph.message(1, (node) => {
        for (const name of n.inputs) node.string(1, name);
        for (const name of n.outputs) node.string(2, name);
        node.string(3, `${n.op}_${i}`);
        node.string(4, n.op);
        for (const [name, a] of Object.entries(n.attributes ?? {})) node.message(5, (attr) => writeAttribute(attr, name, a));
        if (n.domain) node.string(7, n.domain);
      }),
    );
    graph.string(2, 'bench');
    for (const t of g.initializers ?? []) {
      graph.message(5, (tensor) => {
        for (const d of t.shape) tensor.int(1, d);
        tensor.int(2, FLOAT);
        tensor.string(8, t.name);
        tensor.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      });
    }
    for (const v of g.inputs) graph.message(11, (vi) => writeValueInfo(vi, v));
    for (const v of g.outputs) graph.message(12, (vi) => writeValueInfo(vi, v));
  });
  for (const [domain, version] of Object.entries(opsets)) {
    w.message(8, (op) => {
      if (domain) op.string(1, domain);
      op.int(2, version);
    });
  }
  return w.finish();
}
