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
 * Cost model (checked once the pickle is read, before any tensor is materialized):
 * - a storage is read only as far as its tensors reach ("keep" bytes); a deflated one is inflated into a buffer of
 *   that size, the rest of its stream inflated in bounded steps for the CRC and dropped;
 * - all inflating counts against one cap for the archive (ZipReadOptions.maxTotalInflatedBytes);
 * - the tensors together may hold at most maxTotalTensorBytes, by default 2x the storage bytes they reach plus
 *   64 MiB: tied weights (two names, one storage) fit, while stride-0 broadcasts and overlapping views of one storage
 *   cannot turn a small file into gigabytes.
 * So peak memory is the file, plus the inflated prefixes, plus the tensors the caller materializes: bounded by a
 * small multiple of the real tensor bytes.
 *
 * The legacy pre-1.6 format (a bare pickle stream) is refused with PICKLE_UNSUPPORTED.
 */
import { PerceiverError } from "../../errors.js";
import { DTYPE_SIZE } from "./dtypes.js";
import type { Dtype } from "./state-dict.js";
import { PyCallable, PyDict, PyTuple, describe, unpickle } from "./torch-pickle.js";
import type { PyValue } from "./torch-pickle.js";
import { TorchStateDict, TorchStorage, TorchTensor, TorchTypeRef, withTypedErrors } from "./torch-state-dict.js";
import { ZipArchive, looksLikeZip } from "./torch-zip.js";
import type { ZipReadOptions } from "./torch-zip.js";

export { TorchStateDict } from "./torch-state-dict.js";

export interface ReadTorchBinOptions extends ZipReadOptions {
  /** Check each storage's CRC-32 (from the zip directory) the first time one of its tensors is read. Default true. */
  verifyCrc?: boolean;
  /** Largest accepted data.pkl, in bytes. Default 64 MiB (a 142-tensor state dict's is tens of KB). */
  maxPickleBytes?: number;
  /** Budget of values data.pkl may build (see UnpickleOptions.maxObjects). Default 4,000,000. */
  maxPickleObjects?: number;
  /** Largest tensor (materialized, in bytes). Default 2 GiB - 1. */
  maxTensorBytes?: number;
  /**
   * Cap on the bytes of all tensors together, as materialized. Default: 2x the storage bytes the tensors reach,
   * plus 64 MiB (so broadcasts and overlapping views cannot amplify a small file). Over it: MEMORY_LIMIT.
   */
  maxTotalTensorBytes?: number;
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

/** Slack of the default maxTotalTensorBytes over 2x the reached storage bytes. */
const TENSOR_BYTES_SLACK = 64 * 2 ** 20;
/** `<top>/byteorder` holds "little" or "big". */
const MAX_BYTEORDER_BYTES = 16;


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
  return withTypedErrors(opts.source ?? "<pytorch_model.bin>", "reading the checkpoint", () => readTorchBinUnchecked(input, opts));
}

function readTorchBinUnchecked(input: Uint8Array | ArrayBuffer, opts: ReadTorchBinOptions): TorchStateDict {
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
  const byteorder = zip.entry(`${top}/byteorder`);
  if (byteorder !== undefined) {
    if (byteorder.uncompressedSize > MAX_BYTEORDER_BYTES) {
      throw new PerceiverError("ZIP_INVALID",
        `${source}: ${byteorder.name} is ${byteorder.uncompressedSize} bytes; it should hold "little" or "big"`);
    }
    const order = new TextDecoder().decode(zip.read(byteorder.name)).trim();
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
    const reachBytes = numel > 0 ? (reach + 1) * es : 0;
    return new TorchTensor(storage, dtype, offset, Object.freeze(shape), Object.freeze(strides), numel, reachBytes);
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

  const root = unpickle(zip.read(pklEntry.name, true), { source: pklSource, resolveGlobal, persistentLoad, maxObjects: opts.maxPickleObjects });
  const tensors = stateDictOf(root, pklSource);
  const verifyCrc = opts.verifyCrc ?? true;
  const keep = checkCost(zip, tensors, verifyCrc, opts.maxTotalTensorBytes, source);
  return new TorchStateDict(zip, top, tensors, bigEndian, verifyCrc, keep);
}

/**
 * The cost model, enforced before any tensor is read: each storage is kept only as far as its tensors reach; the
 * tensors together stay under maxTotalTensorBytes (default 2x the reached bytes + 64 MiB, MEMORY_LIMIT beyond);
 * the inflating all storages needs fits the archive's cap (ZIP_INVALID beyond). Returns the bytes kept per storage.
 */
function checkCost(zip: ZipArchive, tensors: Map<string, TorchTensor>, verifyCrc: boolean, maxTotal: number | undefined,
  source: string): Map<TorchStorage, number> {
  const keep = new Map<TorchStorage, number>();
  let tensorBytes = 0;
  for (const t of tensors.values()) {
    keep.set(t.storage, Math.max(keep.get(t.storage) ?? 0, t.reachBytes));
    tensorBytes += t.numel * DTYPE_SIZE[t.dtype];
  }
  let reached = 0;
  let inflate = 0;
  for (const [s, k] of keep) {
    reached += k;
    inflate += zip.inflateCost(s.entryName, verifyCrc, k);
  }
  const cap = maxTotal ?? 2 * reached + TENSOR_BYTES_SLACK;
  if (tensorBytes > cap) {
    throw new PerceiverError("MEMORY_LIMIT",
      `${source}: its ${tensors.size} tensors hold ${tensorBytes} bytes but their storages only ${reached}: views that ` +
      `repeat or broadcast a storage would expand past the limit of ${cap} bytes (maxTotalTensorBytes)`);
  }
  zip.checkInflateBudget(inflate, "reading the storages");
  return keep;
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
