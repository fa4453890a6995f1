/**
 * safetensors reader (browser-safe: no `fs` here; see safetensors-node.ts for files, safetensors-write.ts for the
 * writer, safetensors-header.ts for the header rules).
 *
 * Layout: 8-byte little-endian u64 N | N bytes of UTF-8 JSON header | tensor data.
 * Header: { "__metadata__"?: {string: string}, name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} }
 * with offsets relative to the first byte after the header. Validation follows the Rust `safetensors` crate:
 * tensors sorted by offsets must tile the data section exactly, from 0 to the end of the file.
 *
 * Byte order: safetensors is little-endian and the typed-array views used here read in host order, so a
 * big-endian host is refused (checked once, see assertLittleEndianHost).
 */
import { PerceiverError } from "../../errors.js";
import type { PerceiverErrorCode } from "../../errors.js";
import { DTYPE_SIZE, assertLittleEndianHost, rawToFloat32, typedArrayOf } from "./dtypes.js";
import type { RawTensorData } from "./dtypes.js";
import { isIndex, kindOf, parseSafetensorsHeader } from "./safetensors-header.js";
import type { SafetensorsEntry, SafetensorsHeader } from "./safetensors-header.js";
import type { StateDict, TensorInfo } from "./state-dict.js";

export { DTYPE_SIZE, rawToFloat32, typedArrayOf, type RawTensorData } from "./dtypes.js";
export type { SafetensorsEntry } from "./safetensors-header.js";
export { writeSafetensors, type SafetensorsTensor } from "./safetensors-write.js";

/** Same cap as the Rust crate (MAX_HEADER_SIZE). */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

export interface ReadSafetensorsOptions {
  /** Largest accepted JSON header, in bytes (default 100 MB). */
  maxHeaderBytes?: number;
  /** Where the bytes came from (e.g. the file path); quoted in every error message. */
  source?: string;
}

function fail(code: PerceiverErrorCode, src: string, msg: string): never {
  throw new PerceiverError(code, `${src}: ${msg}`);
}

/**
 * Reads and checks the 8-byte header length. `prefix` holds at least the first 8 bytes of a file of
 * `fileByteLength` bytes. Returns N, the JSON header length. Shared with the Node file reader, which calls it
 * before reading the whole file.
 */
export function readHeaderLength(prefix: Uint8Array, fileByteLength: number, opts: ReadSafetensorsOptions = {}): number {
  const src = opts.source ?? "<safetensors buffer>";
  const max = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!isIndex(max)) {
    throw new PerceiverError("INPUT_INVALID", `${src}: maxHeaderBytes must be a non-negative integer, got ${String(max)}`);
  }
  if (fileByteLength < 8 || prefix.length < 8) {
    throw new PerceiverError(
      "SAFETENSORS_TOO_SMALL",
      `${src}: file is only ${fileByteLength} bytes, too small for a safetensors file (needs an 8-byte header length)`,
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(max)) {
    throw new PerceiverError(
      "SAFETENSORS_HEADER_TOO_LARGE",
      `${src}: header length ${n} bytes exceeds the limit of ${max} bytes (maxHeaderBytes); not a safetensors file?`,
    );
  }
  if (n > BigInt(fileByteLength - 8)) {
    throw new PerceiverError(
      "SAFETENSORS_HEADER_OUT_OF_BOUNDS",
      `${src}: header length ${n} bytes runs past the end of the file (only ${fileByteLength - 8} bytes follow the length prefix)`,
    );
  }
  return Number(n);
}

/**
 * A parsed safetensors file over a byte buffer (the buffer is kept, not copied). Construct with readSafetensors.
 * Tensor data stays in the buffer; getRaw/getFloat32 return zero-copy views when alignment allows.
 */
export class SafetensorsFile implements StateDict {
  /** The name used in error messages (file path or "<safetensors buffer>"). */
  readonly source: string;
  /** Total size of the file in bytes. */
  readonly byteLength: number;
  /** N, the JSON header length in bytes (including padding). */
  readonly headerByteLength: number;
  /** Offset of the data section from the start of the file: 8 + N. */
  readonly dataByteOffset: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly #bytes: Uint8Array;
  readonly #entries: Map<string, SafetensorsEntry>;
  readonly #order: string[];

  /** `header`: the header already parsed from these bytes (the file reader checks it before reading the data). */
  constructor(bytes: ArrayBuffer | ArrayBufferLike | Uint8Array, opts: ReadSafetensorsOptions = {}, header?: SafetensorsHeader) {
    assertLittleEndianHost();
    const src = opts.source ?? "<safetensors buffer>";
    let u8: Uint8Array;
    // a plain Uint8Array view even for a Node Buffer, whose slice() returns a view instead of a copy
    if (ArrayBuffer.isView(bytes)) u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    else if (bytes instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && bytes instanceof SharedArrayBuffer)) {
      u8 = new Uint8Array(bytes);
    } else {
      throw new PerceiverError("INPUT_INVALID", `${src}: expected an ArrayBuffer or Uint8Array, got ${kindOf(bytes)}`);
    }
    this.source = src;
    this.#bytes = u8;
    this.byteLength = u8.byteLength;

    const n = readHeaderLength(u8, u8.byteLength, opts);
    this.headerByteLength = n;
    this.dataByteOffset = 8 + n;

    // slice(): TextDecoder refuses views of a SharedArrayBuffer; headers are small.
    let text = "";
    if (header === undefined) {
      try {
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(u8.slice(8, 8 + n));
      } catch (e) {
        throw new PerceiverError("SAFETENSORS_HEADER_NOT_UTF8", `${src}: header (${n} bytes) is not valid UTF-8`, { cause: e });
      }
    }
    const { metadata, entries } = header ?? parseSafetensorsHeader(text, src);

    // the data section must be tiled exactly: sort by (begin, end) like the Rust crate, then walk
    const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
    let pos = 0;
    let prev: SafetensorsEntry | null = null;
    for (const e of sorted) {
      if (e.begin !== pos) {
        const where = `tensor ${JSON.stringify(e.name)} data_offsets [${e.begin}, ${e.end}]`;
        if (prev === null) {
          fail("SAFETENSORS_INVALID_OFFSETS", src, `${where}: the first tensor's data must begin at offset 0`);
        } else if (e.begin > pos) {
          fail("SAFETENSORS_INVALID_OFFSETS", src,
            `${where}: gap of ${e.begin - pos} bytes after tensor ${JSON.stringify(prev.name)}, which ends at ${pos}`);
        } else {
          fail("SAFETENSORS_INVALID_OFFSETS", src,
            `${where}: overlaps tensor ${JSON.stringify(prev.name)}, which ends at ${pos}`);
        }
      }
      const need = e.numel * DTYPE_SIZE[e.dtype];
      if (e.end - e.begin !== need) {
        fail("SAFETENSORS_SIZE_MISMATCH", src,
          `tensor ${JSON.stringify(e.name)}: data_offsets [${e.begin}, ${e.end}] span ${e.end - e.begin} bytes, ` +
          `but dtype ${e.dtype} with shape [${e.shape.join(", ")}] needs ${need} bytes`);
      }
      pos = e.end;
      prev = e;
    }
    const dataLen = u8.byteLength - this.dataByteOffset;
    if (pos > dataLen) {
      fail("SAFETENSORS_TRUNCATED", src,
        `tensor data needs ${pos} bytes after the header but the file has only ${dataLen} (file truncated?)`);
    }
    if (pos < dataLen) {
      fail("SAFETENSORS_TRAILING_BYTES", src,
        `${dataLen - pos} unexpected bytes after the last tensor (data ends at ${pos}, file data section is ${dataLen} bytes)`);
    }

    this.#order = sorted.map((e) => e.name);
    this.#entries = new Map(sorted.map((e) => [e.name, e]));
    this.metadata = Object.freeze(metadata);
  }

  /** Tensor names in data order (the order the Rust/Python writers put them in the header). */
  names(): string[] {
    return this.#order.slice();
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Header entry with dtype, shape, numel and data offsets; throws CHECKPOINT_MISSING_KEYS if absent. */
  entry(name: string): SafetensorsEntry {
    const e = this.#entries.get(name);
    if (e === undefined) {
      throw new PerceiverError("CHECKPOINT_MISSING_KEYS", `${this.source}: no tensor named ${JSON.stringify(name)}`);
    }
    return e;
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: e.shape };
  }

  /** The tensor's raw little-endian bytes, zero-copy (a view into the buffer given to readSafetensors). */
  getBytes(name: string): Uint8Array {
    const e = this.entry(name);
    return this.#bytes.subarray(this.dataByteOffset + e.begin, this.dataByteOffset + e.end);
  }

  /**
   * The tensor in its native typed array (see RawTensorData). Zero-copy view of the buffer when the data's
   * absolute byte offset is a multiple of the element size, else an aligned copy. Treat views as read-only.
   */
  getRaw(name: string): RawTensorData {
    const e = this.entry(name);
    return typedArrayOf(this.getBytes(name), e.dtype, e.numel);
  }

  /**
   * Values as float32, row-major. F32: zero-copy view when 4-byte aligned (read-only!), else a copy.
   * F16/BF16: exact upcast. F64: rounded to nearest f32. Integers: converted (I64/U64 via Number). BOOL: 0/1.
   */
  getFloat32(name: string): Float32Array {
    return rawToFloat32(this.entry(name).dtype, this.getRaw(name));
  }
}

/**
 * Parses a safetensors file held in memory. A Uint8Array may be a view into a bigger buffer (e.g. a Node Buffer
 * from the pool): offsets are taken relative to its byteOffset. The buffer is referenced, not copied.
 */
export function readSafetensors(bytes: ArrayBuffer | Uint8Array, opts?: ReadSafetensorsOptions): SafetensorsFile {
  return new SafetensorsFile(bytes, opts);
}
