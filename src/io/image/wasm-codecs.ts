/**
 * The two WebAssembly decoders: libjpeg-turbo's decoder as built into mozjpeg (`@jsquash/jpeg`) and libwebp
 * (`@jsquash/webp`). Both are Emscripten modules with one `decode(bytes)` call that returns RGBA.
 *
 * Initialisation (the only asynchronous part; decoding is synchronous):
 * - Node: done on first use, synchronously (the .wasm file is read from node_modules with the `fs` that
 *   `process.getBuiltinModule` returns, so this file imports no Node built-in and stays browser-safe).
 * - Browsers: `await initImageDecoders()` once (decodeImageAsync and the demo do it); the modules fetch their
 *   .wasm next to their own .js (bundlers emit it as an asset), or take a WebAssembly.Module / bytes / URL given here.
 *
 * Memory: the callers hand a module only files whose header they already checked (size limits, and enough
 * compressed data for what the header declares), so what it allocates is bounded by the pixel cap. An instance
 * whose memory grew past KEEP_MEMORY, or that failed (Emscripten leaves a failed decode's allocations behind), is
 * dropped and a fresh one made on the next use, so a process's decoder memory does not only grow.
 */
import mozjpegFactory from "@jsquash/jpeg/codec/dec/mozjpeg_dec.js";
import webpFactory from "@jsquash/webp/codec/dec/webp_dec.js";
import { PerceiverError } from "../../errors.js";

/** RGBA pixels as the modules return them (an ImageData-like object) */
interface Rgba {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}
interface EmModule {
  decode(data: Uint8Array, preserveOrientation?: boolean): Rgba | null;
  HEAPU8: Uint8Array;
}
type Factory = (opts: Record<string, unknown>) => Promise<EmModule>;

/** A compiled module, its bytes, or where to fetch them (browsers). */
export type WasmSource = WebAssembly.Module | BufferSource | URL | string;

export type WasmCodec = "jpeg" | "webp";

interface Slot {
  name: WasmCodec;
  factory: Factory;
  /** module path for Node's resolver */
  wasmSpecifier: string;
  compiled: WebAssembly.Module | null;
  instance: EmModule | null;
  pending: Promise<EmModule> | null;
  messages: string[];
}

const slots: Record<WasmCodec, Slot> = {
  jpeg: slot("jpeg", mozjpegFactory as unknown as Factory, "@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm"),
  webp: slot("webp", webpFactory as unknown as Factory, "@jsquash/webp/codec/dec/webp_dec.wasm"),
};

function slot(name: WasmCodec, factory: Factory, wasmSpecifier: string): Slot {
  return { name, factory, wasmSpecifier, compiled: null, instance: null, pending: null, messages: [] };
}

/** An instance whose linear memory grew past this is dropped after the decode (a fresh one starts at 16 MiB). */
const KEEP_MEMORY = 256 << 20;

function options(s: Slot): Record<string, unknown> {
  const log = (m: string) => {
    s.messages.push(String(m));
    if (s.messages.length > 8) s.messages.shift();
  };
  const opts: Record<string, unknown> = { noInitialRun: true, print: log, printErr: log };
  if (s.compiled) {
    const compiled = s.compiled;
    opts.instantiateWasm = (imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) => {
      const instance = new WebAssembly.Instance(compiled, imports);
      done(instance);
      return instance.exports;
    };
  }
  return opts;
}

/** The .wasm bytes from node_modules when running in Node (>= 20.16, which has process.getBuiltinModule), else null. */
function nodeWasmBytes(specifier: string): Uint8Array | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== "function") return null;
  const fs = proc.getBuiltinModule("node:fs") as { readFileSync(p: string): Uint8Array };
  const mod = proc.getBuiltinModule("node:module") as { createRequire(from: string): { resolve(id: string): string } };
  return fs.readFileSync(mod.createRequire(import.meta.url).resolve(specifier));
}

/** Instantiates synchronously when a compiled module is at hand (or can be read, in Node); else null. */
function instantiateSync(s: Slot): EmModule | null {
  if (!s.compiled) {
    const bytes = nodeWasmBytes(s.wasmSpecifier);
    if (bytes === null) return null;
    s.compiled = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  }
  const holder = options(s);
  s.factory(holder).catch(() => undefined); // with a synchronous instantiateWasm the module is complete on return
  const m = holder as unknown as EmModule;
  if (typeof m.decode !== "function") return null;
  s.instance = m;
  return m;
}

async function instantiate(s: Slot, source?: WasmSource): Promise<EmModule> {
  if (source !== undefined) {
    if (source instanceof WebAssembly.Module) s.compiled = source;
    else if (typeof source === "string" || source instanceof URL) {
      const res = await fetch(source);
      if (!res.ok) throw new PerceiverError("IMAGE_UNSUPPORTED", `cannot load the ${s.name} decoder from ${String(source)}: HTTP ${res.status}`);
      s.compiled = await WebAssembly.compile(await res.arrayBuffer());
    } else s.compiled = await WebAssembly.compile(source);
  }
  const sync = instantiateSync(s);
  if (sync) return sync;
  const m = await s.factory(options(s)); // browsers: the module fetches its .wasm next to its .js
  s.instance = m;
  return m;
}

/**
 * Loads the WebAssembly decoders (JPEG and WebP) once; later calls return at once. Needed before the synchronous
 * decodeImage reads a JPEG or WebP in a browser; Node loads them on first use by itself.
 */
export async function initImageDecoders(sources: Partial<Record<WasmCodec, WasmSource>> = {}): Promise<void> {
  await Promise.all((Object.keys(slots) as WasmCodec[]).map((k) => ensureAsync(k, sources[k])));
}

export function ensureAsync(name: WasmCodec, source?: WasmSource): Promise<EmModule> {
  const s = slots[name];
  if (s.instance && source === undefined) return Promise.resolve(s.instance);
  if (!s.pending || source !== undefined) {
    s.pending = instantiate(s, source).catch((e: unknown) => {
      s.pending = null;
      if (e instanceof PerceiverError) throw e;
      throw new PerceiverError("IMAGE_UNSUPPORTED", `cannot load the ${name} decoder: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    });
  }
  return s.pending;
}

/** True when the codec can decode synchronously now (in Node it loads itself here). */
export function codecReady(name: WasmCodec): boolean {
  const s = slots[name];
  if (s.instance) return true;
  try {
    return instantiateSync(s) !== null;
  } catch {
    return false;
  }
}

/**
 * Decodes with codec `name` -> RGBA. `what` names the file in errors. The decoder's own message (libjpeg's,
 * libwebp's) becomes an IMAGE_DECODE error; a failed or grown instance is replaced on the next use.
 */
export function wasmDecode(name: WasmCodec, bytes: Uint8Array, what: string): Rgba {
  const s = slots[name];
  if (!s.instance && !codecReady(name)) {
    throw new PerceiverError(
      "IMAGE_UNSUPPORTED",
      `${what}: the ${name.toUpperCase()} decoder is not loaded: call \`await initImageDecoders()\` first, or use decodeImageAsync`,
    );
  }
  const m = s.instance as EmModule;
  s.messages.length = 0;
  let out: Rgba | null = null;
  let failure: unknown = null;
  try {
    out = name === "jpeg" ? m.decode(bytes, false) : m.decode(bytes);
  } catch (e) {
    failure = e;
  }
  if (failure !== null || !out || m.HEAPU8.length > KEEP_MEMORY) {
    // start afresh: synchronously on next use where possible (Node), and in the background for browsers, whose
    // main thread cannot instantiate a module of this size synchronously
    s.instance = null;
    s.pending = null;
    ensureAsync(name).catch(() => undefined);
  }
  if (failure !== null || !out) {
    const said = s.messages.filter((x) => x.trim() !== "").join("; ");
    throw new PerceiverError("IMAGE_DECODE", `${what}: ${name.toUpperCase()} decode failed${said ? `: ${said}` : ""}`, failure ? { cause: failure } : undefined);
  }
  return out;
}
