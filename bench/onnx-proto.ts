/**
 * The few ONNX protobuf bytes the benchmark needs, written by hand (no `onnx` package): a one-node MatMul model
 * for the GEMM comparison, and a rewrite of a model's graph inputs/outputs to a symbolic batch dimension (the
 * exported vision-perceiver-conv graph declares pixel_values [1,3,224,224] but computes every shape at run time).
 * Field numbers are those of onnx/onnx.proto3 (ModelProto, GraphProto, NodeProto, ValueInfoProto, TypeProto).
 */

// ---------------------------------------------------------------------------------------------------------------
// writer

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** field number + wire type 0 (varint) */
function fVarint(field: number, v: number): number[] {
  return [...varint(field * 8), ...varint(v)];
}

/** field number + wire type 2 (length-delimited) */
function fBytes(field: number, payload: Uint8Array | number[]): number[] {
  return [...varint(field * 8 + 2), ...varint(payload.length), ...payload];
}

function fString(field: number, s: string): number[] {
  return fBytes(field, new TextEncoder().encode(s));
}

/** ValueInfoProto of a float32 tensor; a string dim is symbolic (dim_param), a number is fixed (dim_value). */
function valueInfo(name: string, dims: (number | string)[]): number[] {
  const shape = dims.flatMap((d) => fBytes(1, typeof d === "number" ? fVarint(1, d) : fString(2, d)));
  const tensorType = [...fVarint(1, 1 /* FLOAT */), ...fBytes(2, shape)];
  return [...fString(1, name), ...fBytes(2, fBytes(1, tensorType))];
}

// inputs A [M,K], B [K,N] -> output Y [M,N] = A·B (one MatMul node, opset 17)
export function matmulModel(m: number, k: number, n: number): Uint8Array {
  const node = [...fString(1, "A"), ...fString(1, "B"), ...fString(2, "Y"), ...fString(3, "matmul"), ...fString(4, "MatMul")];
  const graph = [
    ...fBytes(1, node),
    ...fString(2, "gemm"),
    ...fBytes(11, valueInfo("A", [m, k])),
    ...fBytes(11, valueInfo("B", [k, n])),
    ...fBytes(12, valueInfo("Y", [m, n])),
  ];
  const opset = [...fString(1, ""), ...fVarint(2, 17)];
  return Uint8Array.from([
    ...fVarint(1, 8), // ir_version
    ...fString(2, "perceiver-ts bench"),
    ...fBytes(7, graph),
    ...fBytes(8, opset),
  ]);
}

// ---------------------------------------------------------------------------------------------------------------
// reader (top-level fields only; unknown fields are kept byte for byte)

interface Field {
  field: number;
  wire: number;
  /** the whole field (tag + payload) as it appears in the message */
  raw: Uint8Array;
  /** payload of a length-delimited field */
  body?: Uint8Array;
  value?: number;
}

function readVarint(b: Uint8Array, i: number, where: string): [number, number] {
  let v = 0;
  let mul = 1;
  for (let n = 0; n < 10; n++) {
    if (i >= b.length) throw new Error(`onnx-proto: truncated varint in ${where} at byte ${i}`);
    const c = b[i++];
    v += (c & 0x7f) * mul;
    mul *= 128;
    if (c < 0x80) return [v, i];
  }
  throw new Error(`onnx-proto: varint longer than 10 bytes in ${where} at byte ${i}`);
}

function fields(b: Uint8Array, where: string): Field[] {
  const out: Field[] = [];
  let i = 0;
  while (i < b.length) {
    const start = i;
    const [key, j] = readVarint(b, i, where);
    i = j;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let body: Uint8Array | undefined;
    let value: number | undefined;
    if (wire === 0) [value, i] = readVarint(b, i, where);
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const [len, k] = readVarint(b, i, where);
      if (k + len > b.length) throw new Error(`onnx-proto: field ${field} of ${where} runs past the end (byte ${k}, length ${len})`);
      body = b.subarray(k, k + len);
      i = k + len;
    } else throw new Error(`onnx-proto: unsupported wire type ${wire} in ${where} at byte ${start}`);
    out.push({ field, wire, raw: b.subarray(start, i), body, value });
  }
  return out;
}

function concat(parts: (Uint8Array | number[])[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Rewrites dim 0 of a ValueInfoProto's tensor shape to dim_param `param`; other fields are kept as they are. */
function symbolicDim0(vi: Uint8Array, param: string): Uint8Array {
  const rewrite = (msg: Uint8Array, path: number[], leaf: (shape: Uint8Array) => Uint8Array): Uint8Array => {
    const [head, ...rest] = path;
    let done = false;
    const parts = fields(msg, "ValueInfoProto").map((f) => {
      if (f.field !== head || f.body === undefined || done) return f.raw;
      done = true;
      return fBytes(head, rest.length === 0 ? leaf(f.body) : rewrite(f.body, rest, leaf));
    });
    return concat(parts);
  };
  // ValueInfoProto.type(2) -> TypeProto.tensor_type(1) -> Tensor.shape(2) -> TensorShapeProto.dim(1) first only
  return rewrite(vi, [2, 1, 2], (shape) => {
    let first = true;
    return concat(fields(shape, "TensorShapeProto").map((f) => {
      if (f.field !== 1 || !first) return f.raw;
      first = false;
      return fBytes(1, fString(2, param));
    }));
  });
}

/** The model with dim 0 of every graph input and output made symbolic (`batch`), for batch sizes other than 1. */
export function withSymbolicBatch(model: Uint8Array, param = "batch"): Uint8Array {
  return concat(fields(model, "ModelProto").map((f) => {
    if (f.field !== 7 || f.body === undefined) return f.raw;
    const graph = concat(fields(f.body, "GraphProto").map((g) => {
      if ((g.field !== 11 && g.field !== 12) || g.body === undefined) return g.raw;
      return fBytes(g.field, symbolicDim0(g.body, param));
    }));
    return fBytes(7, graph);
  }));
}
