/**
 * Reader for PyTorch checkpoints (`pytorch_model.bin`, `torch.save(model.state_dict())`) that runs no code.
 *
 * File layout (torch >= 1.6): a zip archive with `<top>/data.pkl` (a pickle of the state dict), one entry per
 * storage `<top>/data/<key>` holding the raw element bytes, and `<top>/byteorder` ("little"/"big", absent = little).
 * In data.pkl each tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
 * backward_hooks[, metadata])` where `storage` is a persistent id `("storage", torch.FloatStorage, key, location,
 * numel)`. The pickle is run by the restricted VM of torch-pickle.ts with a whitelist like torch's
 * `weights_only=True` loader; the "calls" below only build descriptors. Tensor bytes are read lazily, per tensor:
 * contiguous tensors are zero-copy views of the file buffer, strided views (transposes, slices) are gathered into
 * new contiguous buffers.
 *
 * The legacy pre-1.6 format (a bare pickle stream) is refused with PICKLE_UNSUPPORTED.
 */
import { PerceiverError } from "../../errors.js";
import { DTYPE_SIZE, rawToFloat32, typedArrayOf } from "./safetensors.js";
import type { RawTensorData } from "./safetensors.js";
import type { Dtype, StateDict, TensorInfo } from "./state-dict.js";
import { PyCallable, PyDict, PyGlobalRef, PyTuple, describe, unpickle } from "./torch-pickle.js";
import type { PyObject, PyValue } from "./torch-pickle.js";
import { ZipArchive, looksLikeZip } from "./torch-zip.js";
import type { ZipReadOptions } from "./torch-zip.js";

export interface ReadTorchBinOptions extends ZipReadOptions {
  /** Check each storage's CRC-32 (from the zip directory) the first time one of its tensors is read. Default true. */
  verifyCrc?: boolean;
  /** Largest accepted data.pkl, in bytes. Default 64 MiB (a 142-tensor state dict's is tens of KB). */
  maxPickleBytes?: number;
  /** Largest tensor (materialized, in bytes). Default 2 GiB - 1. */
  maxTensorBytes?: number;
}

/** Legacy storage classes (what torch.save writes in persistent ids) and their dtypes. */
const STORAGE_TYPES: Readonly<Record<string, Dtype>> = {
  FloatStorage: "F32", DoubleStorage: "F64", HalfStorage: "F16", BFloat16Storage: "BF16",
  LongStorage: "I64", IntStorage: "I32", ShortStorage: "I16", CharStorage: "I8", ByteStorage: "U8", BoolStorage: "BOOL",
};

/** torch dtype globals (`torch.float32` pickles as GLOBAL torch float32), used by _rebuild_tensor_v3. */
const TORCH_DTYPES: Readonly<Record<string, Dtype>> = {
  float32: "F32", float: "F32", float64: "F64", double: "F64", float16: "F16", half: "F16", bfloat16: "BF16",
  int64: "I64", long: "I64", int32: "I32", int: "I32", int16: "I16", short: "I16", int8: "I8", uint8: "U8",
  bool: "BOOL", uint16: "U16", uint32: "U32", uint64: "U64",
};

/** Materialized tensors larger than their storage (stride-0 broadcasts) are capped at this many bytes. */
const MAX_EXPANDED_BYTES = 64 * 2 ** 20;

/** A storage type or dtype imported from the pickle: a value, not callable. */
class TorchTypeRef extends PyGlobalRef {
  /** null for torch.UntypedStorage (raw bytes). */
  constructor(qualname: string, readonly dtype: Dtype | null, readonly isStorage: boolean) {
    super(qualname);
  }
}

/** One storage of the archive: `<top>/data/<key>`. Bytes are read on first use. */
class TorchStorage implements PyObject {
  readonly pyType = "torch.storage";
  constructor(
    readonly key: string,
    readonly entryName: string,
    /** null = untyped (bytes). */
    readonly dtype: Dtype | null,
    readonly nbytes: number,
  ) {}
}

/** A tensor descriptor built by _rebuild_tensor_v2/v3. Offsets and strides are in elements. */
class TorchTensor implements PyObject {
  readonly pyType = "torch.Tensor";
  constructor(
    readonly storage: TorchStorage,
    readonly dtype: Dtype,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly numel: number,
  ) {}

  get contiguous(): boolean {
    let expected = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.stride[d] !== expected) return false;
      expected *= this.shape[d];
    }
    return true;
  }
}

/**
 * The state dict of a pytorch_model.bin, read lazily from the file buffer (kept, not copied).
 * Implements StateDict; `getRaw`/`getBytes` give the exact stored values for lossless conversion.
 */
export class TorchStateDict implements StateDict {
  readonly source: string;
  readonly byteLength: number;
  /** Name of the archive's top folder (e.g. "archive" or "pytorch_model"). */
  readonly archiveName: string;
  readonly bigEndian: boolean;
  /** pytorch_model.bin has no free-form metadata. */
  readonly metadata: Readonly<Record<string, string>> = Object.freeze({});
  readonly #zip: ZipArchive;
  readonly #tensors: Map<string, TorchTensor>;
  readonly #verifyCrc: boolean;
  readonly #storageBytes = new Map<TorchStorage, Uint8Array>();

  /** @internal use readTorchBin */
  constructor(zip: ZipArchive, archiveName: string, tensors: Map<string, TorchTensor>, bigEndian: boolean, verifyCrc: boolean) {
    this.#zip = zip;
    this.source = zip.source;
    this.byteLength = zip.bytes.byteLength;
    this.archiveName = archiveName;
    this.#tensors = tensors;
    this.bigEndian = bigEndian;
    this.#verifyCrc = verifyCrc;
  }

  /** Tensor names in pickle (state dict) order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.#tensor(name);
    return { dtype: t.dtype, shape: t.shape };
  }

  /** Storage layout of a tensor as saved (offset and strides in elements), e.g. to spot shared storages. */
  layout(name: string): { storageKey: string; offset: number; stride: readonly number[]; contiguous: boolean } {
    const t = this.#tensor(name);
    return { storageKey: t.storage.key, offset: t.offset, stride: t.stride, contiguous: t.contiguous };
  }

  /**
   * The tensor's bytes, contiguous row-major, little-endian. Zero-copy view of the file for contiguous tensors of
   * a little-endian file (treat as read-only); a new buffer for strided views or big-endian files.
   */
  getBytes(name: string): Uint8Array {
    const t = this.#tensor(name);
    const es = DTYPE_SIZE[t.dtype];
    const src = this.#storage(t.storage);
    let out: Uint8Array;
    if (t.contiguous) {
      out = src.subarray(t.offset * es, (t.offset + t.numel) * es);
      if (this.bigEndian && es > 1) out = byteSwap(out, es);
    } else {
      out = gatherStrided(src, es, t.offset, t.shape, t.stride);
      if (this.bigEndian && es > 1) swapInPlace(out, es);
    }
    return out;
  }

  /**
   * The tensor in its native typed array (F16/BF16 as Uint16 bits, I64 as BigInt64Array, BOOL as Uint8Array):
   * exactly the stored values, for lossless conversion. Zero-copy when possible (read-only then).
   */
  getRaw(name: string): RawTensorData {
    const t = this.#tensor(name);
    return typedArrayOf(this.getBytes(name), t.dtype, t.numel);
  }

  /**
   * Values as float32, row-major, converted like the safetensors reader: F32 zero-copy when possible (read-only!),
   * F16/BF16 exact upcast, F64 rounded, integers converted (I64 via BigInt -> Number), BOOL as 0/1.
   */
  getFloat32(name: string): Float32Array {
    return rawToFloat32(this.#tensor(name).dtype, this.getRaw(name));
  }

  #tensor(name: string): TorchTensor {
    const t = this.#tensors.get(name);
    if (t === undefined) {
      throw new PerceiverError("CHECKPOINT_MISSING_KEYS", `${this.source}: no tensor named ${JSON.stringify(name)}`);
    }
    return t;
  }

  /** The storage's bytes (first nbytes of its entry), CRC-checked once when verifyCrc is on. */
  #storage(s: TorchStorage): Uint8Array {
    let b = this.#storageBytes.get(s);
    if (b === undefined) {
      b = this.#zip.read(s.entryName, this.#verifyCrc).subarray(0, s.nbytes);
      this.#storageBytes.set(s, b);
    }
    return b;
  }
}

// src bytes of a strided view -> out [prod(shape) * es] contiguous row-major (offset/stride in elements)
function gatherStrided(src: Uint8Array, es: number, offset: number, shape: readonly number[], stride: readonly number[]): Uint8Array {
  const nd = shape.length;
  let numel = 1;
  for (const d of shape) numel *= d;
  const out = new Uint8Array(numel * es);
  if (numel === 0) return out;
  const idx = new Array<number>(nd).fill(0);
  let s = offset; // element index in src of the current output element
  for (let o = 0; o < out.length; o += es) {
    const sb = s * es;
    for (let k = 0; k < es; k++) out[o + k] = src[sb + k];
    // odometer: advance the last dim, carrying into earlier ones
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      s += stride[d];
      if (idx[d] < shape[d]) break;
      s -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

// in [n * es] -> new [n * es] with each element's bytes reversed
function byteSwap(src: Uint8Array, es: number): Uint8Array {
  const out = new Uint8Array(src); // a copy (Node's Buffer#slice would alias)
  swapInPlace(out, es);
  return out;
}

// b [n * es]: reverse the bytes of each element in place
function swapInPlace(b: Uint8Array, es: number): void {
  for (let i = 0; i < b.length; i += es) {
    for (let l = i, r = i + es - 1; l < r; l++, r--) {
      const x = b[l];
      b[l] = b[r];
      b[r] = x;
    }
  }
}

/** Legacy torch.save files start with PROTO 2 + LONG1 of the magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function startsWith(b: Uint8Array, prefix: readonly number[]): boolean {
  return b.length >= prefix.length && prefix.every((x, i) => b[i] === x);
}

/** Non-negative safe integer? */
function isIndex(v: PyValue): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Reads a PyTorch zip checkpoint held in memory. The buffer is referenced, not copied; tensors are materialized
 * on access. Errors: ZIP_INVALID (archive structure), PICKLE_FORBIDDEN_GLOBAL (a name outside the whitelist),
 * PICKLE_INVALID (malformed pickle, missing or short storage), PICKLE_UNSUPPORTED (legacy format, unsupported
 * opcode or object layout).
 */
export function readTorchBin(input: Uint8Array | ArrayBuffer, opts: ReadTorchBinOptions = {}): TorchStateDict {
  // A plain Uint8Array view (a Node Buffer's slice() aliases instead of copying).
  const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const source = opts.source ?? "<pytorch_model.bin>";
  const maxTensorBytes = opts.maxTensorBytes ?? 2 ** 31 - 1;
  if (!looksLikeZip(bytes)) {
    if (startsWith(bytes, LEGACY_MAGIC)) {
      throw new PerceiverError("PICKLE_UNSUPPORTED",
        `${source}: legacy (pre-zip, torch < 1.6) checkpoint format is not supported; ` +
        `re-save it with a recent torch (torch.save) or convert it to safetensors`);
    }
    if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
      throw new PerceiverError("PICKLE_UNSUPPORTED",
        `${source}: a bare pickle stream, not a PyTorch checkpoint (only torch.save zip archives are read)`);
    }
    throw new PerceiverError("ZIP_INVALID", `${source}: not a PyTorch checkpoint (expected a zip archive starting with "PK\\x03\\x04")`);
  }
  const zip = new ZipArchive(bytes, { ...opts, source });

  // The top folder: the one entry named "<top>/data.pkl".
  const pkls = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1) {
    throw new PerceiverError("ZIP_INVALID",
      `${source}: expected exactly one "<folder>/data.pkl" entry, found ${pkls.length}` +
      (pkls.length > 0 ? ` (${pkls.map((e) => e.name).join(", ")})` : ""));
  }
  const pklEntry = pkls[0];
  const top = pklEntry.name.slice(0, -"/data.pkl".length);
  const maxPickle = opts.maxPickleBytes ?? 64 * 2 ** 20;
  if (pklEntry.uncompressedSize > maxPickle) {
    throw new PerceiverError("PICKLE_UNSUPPORTED", `${source}: ${pklEntry.name} is ${pklEntry.uncompressedSize} bytes, over the limit of ${maxPickle}`);
  }

  let bigEndian = false;
  if (zip.has(`${top}/byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${top}/byteorder`)).trim();
    if (order === "big") bigEndian = true;
    else if (order !== "little") {
      throw new PerceiverError("ZIP_INVALID", `${source}: ${top}/byteorder says ${JSON.stringify(order.slice(0, 20))}, expected "little" or "big"`);
    }
  }

  const pklSource = `${source}:${pklEntry.name}`;
  const storages = new Map<string, TorchStorage>();
  const bad = (msg: string): never => {
    throw new PerceiverError("PICKLE_INVALID", `${pklSource}: ${msg}`);
  };

  const persistentLoad = (pid: PyValue): PyValue => {
    if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== "storage") {
      return bad(`persistent id ${describe(pid)} is not ("storage", type, key, location, numel)`);
    }
    const [, type, key, location, numel] = pid.items;
    if (!(type instanceof TorchTypeRef) || !type.isStorage) return bad(`persistent id names ${describe(type)}, not a storage type`);
    if (typeof key !== "string") return bad(`storage key is ${describe(key)}, expected a string`);
    if (typeof location !== "string") return bad(`storage ${JSON.stringify(key)} location is ${describe(location)}, expected a string`);
    if (!isIndex(numel)) return bad(`storage ${JSON.stringify(key)} size is ${describe(numel)}, expected a non-negative integer`);
    const es = type.dtype === null ? 1 : DTYPE_SIZE[type.dtype];
    const nbytes = numel * es;
    const prev = storages.get(key);
    if (prev !== undefined) {
      if (prev.dtype !== type.dtype || prev.nbytes !== nbytes) {
        throw new PerceiverError("PICKLE_UNSUPPORTED", `${pklSource}: storage ${JSON.stringify(key)} is used with two different types or sizes`);
      }
      return prev;
    }
    const entryName = `${top}/data/${key}`;
    const entry = zip.entry(entryName);
    if (entry === undefined) return bad(`storage ${JSON.stringify(key)} (${type.qualname}) is missing: the archive has no entry ${entryName}`);
    if (entry.uncompressedSize < nbytes) {
      bad(`storage ${JSON.stringify(key)} holds ${entry.uncompressedSize} bytes, but its persistent id declares ${numel} elements of ` +
        `${type.qualname} (${nbytes} bytes)`);
    }
    const s = new TorchStorage(key, entryName, type.dtype, nbytes);
    storages.set(key, s);
    return s;
  };

  /** Validates a (storage, offset, size, stride) view and builds the descriptor. */
  const makeTensor = (fn: string, storage: PyValue, offset: PyValue, size: PyValue, stride: PyValue, dtypeArg: Dtype | null): TorchTensor => {
    if (!(storage instanceof TorchStorage)) return bad(`${fn}: storage argument is ${describe(storage)}, expected a persistent storage`);
    const dtype = dtypeArg ?? storage.dtype;
    if (dtype === null) return bad(`${fn}: untyped storage ${JSON.stringify(storage.key)} needs a dtype (use _rebuild_tensor_v3)`);
    if (storage.dtype !== null && storage.dtype !== dtype) {
      throw new PerceiverError("PICKLE_UNSUPPORTED",
        `${pklSource}: ${fn}: tensor of dtype ${dtype} on storage ${JSON.stringify(storage.key)} of dtype ${storage.dtype}`);
    }
    const where = `${fn} on storage ${JSON.stringify(storage.key)}`;
    if (!isIndex(offset)) return bad(`${where}: storage offset is ${describe(offset)}, expected a non-negative integer`);
    const shape = intTuple(size, `${where}: size`);
    const strides = intTuple(stride, `${where}: stride`);
    if (shape.length !== strides.length) bad(`${where}: size has ${shape.length} dims but stride has ${strides.length}`);
    if (shape.length > 32) bad(`${where}: ${shape.length} dims is too many`);
    const es = DTYPE_SIZE[dtype];
    const storageNumel = Math.floor(storage.nbytes / es);
    let numel = 1;
    let reach = offset; // last element index touched
    for (let d = 0; d < shape.length; d++) {
      numel *= shape[d];
      reach += (shape[d] - 1) * strides[d];
    }
    if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(reach)) bad(`${where}: shape [${shape.join(", ")}] is too large`);
    if (numel > 0 ? reach >= storageNumel : offset > storageNumel) {
      bad(`${where}: tensor of size [${shape.join(", ")}], stride [${strides.join(", ")}], offset ${offset} reaches element ` +
        `${reach} but the storage holds only ${storageNumel} elements of ${dtype}`);
    }
    const bytesOut = numel * es;
    if (bytesOut > maxTensorBytes) bad(`${where}: tensor of ${bytesOut} bytes exceeds the limit of ${maxTensorBytes}`);
    if (bytesOut > storage.nbytes && bytesOut > MAX_EXPANDED_BYTES) {
      bad(`${where}: broadcast view of ${bytesOut} bytes over a ${storage.nbytes}-byte storage exceeds ${MAX_EXPANDED_BYTES} bytes`);
    }
    return new TorchTensor(storage, dtype, offset, Object.freeze(shape), Object.freeze(strides), numel);
  };

  const intTuple = (v: PyValue, what: string): number[] => {
    if (!(v instanceof PyTuple)) return bad(`${what} is ${describe(v)}, expected a tuple of integers`);
    for (const x of v.items) if (!isIndex(x)) bad(`${what} contains ${describe(x)}, expected non-negative integers`);
    return v.items as number[];
  };

  const arity = (fn: string, args: PyValue[], min: number, max: number): void => {
    if (args.length < min || args.length > max) bad(`${fn} called with ${args.length} arguments, expected ${min === max ? min : `${min}-${max}`}`);
  };

  const isTensor = (v: PyValue, fn: string): TorchTensor => {
    if (!(v instanceof TorchTensor)) return bad(`${fn}: expected a tensor, got ${describe(v)}`);
    return v;
  };

  const newOrderedDict = (): PyDict => {
    const d = new PyDict("collections.OrderedDict");
    // BUILD sets instance attributes (state_dict._metadata): accept a dict, a (dict, slots) tuple or None; ignore.
    d.setState = (state: PyValue) => {
      const ok = state === null || state instanceof PyDict ||
        (state instanceof PyTuple && state.items.length === 2 && state.items.every((x) => x === null || x instanceof PyDict));
      if (!ok) bad(`BUILD on an OrderedDict with state ${describe(state)}`);
    };
    return d;
  };

  const callables: Record<string, PyCallable> = {
    "collections.OrderedDict": new PyCallable("collections.OrderedDict", (args) => {
      if (args.length !== 0) {
        throw new PerceiverError("PICKLE_UNSUPPORTED", `${pklSource}: collections.OrderedDict called with ${args.length} arguments (only () is supported)`);
      }
      return newOrderedDict();
    }, true),
    "torch._utils._rebuild_tensor": new PyCallable("torch._utils._rebuild_tensor", (a) => {
      arity("_rebuild_tensor", a, 4, 4);
      return makeTensor("_rebuild_tensor", a[0], a[1], a[2], a[3], null);
    }),
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    "torch._utils._rebuild_tensor_v2": new PyCallable("torch._utils._rebuild_tensor_v2", (a) => {
      arity("_rebuild_tensor_v2", a, 6, 7);
      return makeTensor("_rebuild_tensor_v2", a[0], a[1], a[2], a[3], null);
    }),
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata]): untyped storage
    "torch._utils._rebuild_tensor_v3": new PyCallable("torch._utils._rebuild_tensor_v3", (a) => {
      arity("_rebuild_tensor_v3", a, 7, 8);
      const dt = a[6];
      if (!(dt instanceof TorchTypeRef) || dt.isStorage || dt.dtype === null) {
        return bad(`_rebuild_tensor_v3: dtype argument is ${describe(dt)}, expected a torch dtype`);
      }
      return makeTensor("_rebuild_tensor_v3", a[0], a[1], a[2], a[3], dt.dtype);
    }),
    // (data, requires_grad, backward_hooks): a Parameter is its tensor here
    "torch._utils._rebuild_parameter": new PyCallable("torch._utils._rebuild_parameter", (a) => {
      arity("_rebuild_parameter", a, 3, 3);
      return isTensor(a[0], "_rebuild_parameter");
    }),
    // (data, requires_grad, backward_hooks, state): python attributes on the Parameter are ignored
    "torch._utils._rebuild_parameter_with_state": new PyCallable("torch._utils._rebuild_parameter_with_state", (a) => {
      arity("_rebuild_parameter_with_state", a, 4, 4);
      return isTensor(a[0], "_rebuild_parameter_with_state");
    }),
    // torch.Size((d0, d1, ...)) is a tuple
    "torch.Size": new PyCallable("torch.Size", (a) => {
      arity("torch.Size", a, 1, 1);
      return new PyTuple(intTuple(a[0], "torch.Size argument"));
    }),
  };

  const resolveGlobal = (module: string, name: string): PyValue | undefined => {
    const q = `${module}.${name}`;
    if (Object.prototype.hasOwnProperty.call(callables, q)) return callables[q];
    if (module === "torch") {
      if (Object.prototype.hasOwnProperty.call(STORAGE_TYPES, name)) return new TorchTypeRef(q, STORAGE_TYPES[name], true);
      if (name === "UntypedStorage") return new TorchTypeRef(q, null, true);
      if (Object.prototype.hasOwnProperty.call(TORCH_DTYPES, name)) return new TorchTypeRef(q, TORCH_DTYPES[name], false);
    }
    if (module === "torch.storage" && name === "UntypedStorage") return new TorchTypeRef(q, null, true);
    return undefined;
  };

  const root = unpickle(zip.read(pklEntry.name, true), { source: pklSource, resolveGlobal, persistentLoad });
  const tensors = stateDictOf(root, pklSource);
  return new TorchStateDict(zip, top, tensors, bigEndian, opts.verifyCrc ?? true);
}

/** Keys under which training scripts nest the state dict; unwrapped when the top level is not a state dict. */
const WRAPPER_KEYS = ["state_dict", "model_state_dict", "model", "module"];

/** The {name: tensor} map of the unpickled root: a dict of tensors, or one obvious wrapper level around it. */
function stateDictOf(root: PyValue, source: string): Map<string, TorchTensor> {
  const unsupported = (msg: string): never => {
    throw new PerceiverError("PICKLE_UNSUPPORTED", `${source}: ${msg}`);
  };
  if (!(root instanceof PyDict)) return unsupported(`the checkpoint holds ${describe(root)}, expected a state dict (a dict of tensors)`);
  /** Why `d` is not a {string: tensor} dict, or null when it is. */
  const problem = (d: PyDict): string | null => {
    for (let i = 0; i < d.size; i++) {
      const k = d.keys[i];
      if (typeof k !== "string") return `has a non-string key (${describe(k)})`;
      if (!(d.values[i] instanceof TorchTensor)) return `has entry ${JSON.stringify(k)} holding ${describe(d.values[i])}, not a tensor`;
    }
    return null;
  };
  let dict = root;
  const why = problem(root);
  if (why !== null) {
    const wrapped = WRAPPER_KEYS.map((k) => root.get(k)).find((v) => v instanceof PyDict && v.size > 0 && problem(v) === null);
    if (wrapped === undefined) {
      return unsupported(`the checkpoint is not a state dict: it ${why} ` +
        `(and no ${WRAPPER_KEYS.map((w) => `"${w}"`).join("/")} entry holds a dict of tensors)`);
    }
    dict = wrapped as PyDict;
  }
  const out = new Map<string, TorchTensor>();
  dict.keys.forEach((k, i) => out.set(k as string, dict.values[i] as TorchTensor));
  return out;
}
