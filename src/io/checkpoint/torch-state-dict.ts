/**
 * The objects a pytorch_model.bin's pickle builds (storage and tensor descriptors) and the lazy state dict over them:
 * tensors are materialized on access, from storages read (or inflated) only as far as their tensors reach.
 * Built by readTorchBin (torch-bin.ts), which validates every descriptor first.
 */
import { PerceiverError } from "../../errors.js";
import { DTYPE_SIZE, rawToFloat32, typedArrayOf } from "./dtypes.js";
import type { RawTensorData } from "./dtypes.js";
import type { Dtype, StateDict, TensorInfo } from "./state-dict.js";
import { PyGlobalRef } from "./torch-pickle.js";
import type { PyObject } from "./torch-pickle.js";
import type { ZipArchive } from "./torch-zip.js";

/** A storage type or dtype imported from the pickle: a value, not callable. */
export class TorchTypeRef extends PyGlobalRef {
  /** null for torch.UntypedStorage (raw bytes). */
  constructor(qualname: string, readonly dtype: Dtype | null, readonly isStorage: boolean) {
    super(qualname);
  }
}

/** One storage of the archive: `<top>/data/<key>`. Bytes are read on first use. */
export class TorchStorage implements PyObject {
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
export class TorchTensor implements PyObject {
  readonly pyType = "torch.Tensor";
  constructor(
    readonly storage: TorchStorage,
    readonly dtype: Dtype,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly numel: number,
    /** One past the last storage byte the view touches (0 for an empty tensor). */
    readonly reachBytes: number,
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
  /** Bytes of each storage its tensors reach: all that is read (or inflated) of it. */
  readonly #keep: Map<TorchStorage, number>;

  /** @internal use readTorchBin */
  constructor(zip: ZipArchive, archiveName: string, tensors: Map<string, TorchTensor>, bigEndian: boolean, verifyCrc: boolean,
    keep: Map<TorchStorage, number>) {
    this.#zip = zip;
    this.source = zip.source;
    this.byteLength = zip.bytes.byteLength;
    this.archiveName = archiveName;
    this.#tensors = tensors;
    this.bigEndian = bigEndian;
    this.#verifyCrc = verifyCrc;
    this.#keep = keep;
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
    return withTypedErrors(this.source, `reading tensor ${JSON.stringify(name)}`, () => {
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
    });
  }

  /**
   * The tensor in its native typed array (F16/BF16 as Uint16 bits, I64 as BigInt64Array, BOOL as Uint8Array):
   * exactly the stored values, for lossless conversion. Zero-copy when possible (read-only then).
   */
  getRaw(name: string): RawTensorData {
    const t = this.#tensor(name);
    const bytes = this.getBytes(name);
    return withTypedErrors(this.source, `reading tensor ${JSON.stringify(name)}`, () => typedArrayOf(bytes, t.dtype, t.numel));
  }

  /**
   * Values as float32, row-major, converted like the safetensors reader: F32 zero-copy when possible (read-only!),
   * F16/BF16 exact upcast, F64 rounded, integers converted (I64 via BigInt -> Number), BOOL as 0/1.
   */
  getFloat32(name: string): Float32Array {
    const raw = this.getRaw(name);
    return withTypedErrors(this.source, `converting tensor ${JSON.stringify(name)}`, () => rawToFloat32(this.#tensor(name).dtype, raw));
  }

  #tensor(name: string): TorchTensor {
    const t = this.#tensors.get(name);
    if (t === undefined) {
      throw new PerceiverError("CHECKPOINT_MISSING_KEYS", `${this.source}: no tensor named ${JSON.stringify(name)}`);
    }
    return t;
  }

  /** The storage's bytes as far as its tensors reach, CRC-checked once when verifyCrc is on. */
  #storage(s: TorchStorage): Uint8Array {
    let b = this.#storageBytes.get(s);
    if (b === undefined) {
      b = this.#zip.read(s.entryName, this.#verifyCrc, this.#keep.get(s) ?? 0);
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

/**
 * Runs `fn`, turning a raw exception into a PerceiverError: a failed allocation into MEMORY_LIMIT, anything else
 * into PICKLE_INVALID naming the step (the checks above should leave nothing for this; it is the last line).
 */
export function withTypedErrors<T>(source: string, step: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof PerceiverError) throw e;
    const msg = (e as Error)?.message ?? String(e);
    if (e instanceof RangeError && /alloc|Invalid (typed )?array length|too long|out of memory/i.test(msg)) {
      throw new PerceiverError("MEMORY_LIMIT", `${source}: out of memory while ${step}: ${msg}`, { cause: e });
    }
    throw new PerceiverError("PICKLE_INVALID", `${source}: ${step} failed: ${msg}`, { cause: e });
  }
}
