/**
 * Everything a pipeline accepts as an image -> 8-bit RGB (RgbImage):
 *
 *   string       Node: a file path, or an http(s)/data/blob URL; browser: a URL (relative to the page)
 *   URL          fetched
 *   bytes        Uint8Array / ArrayBuffer / any ArrayBufferView of an image file (PNG, JPEG, WebP, GIF or BMP)
 *   Blob / File  its bytes
 *   pixels       ImageData or any {width, height, data} with RGBA (4 bytes per pixel) or RGB (3) data
 *   browser      ImageBitmap, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, VideoFrame: drawn on a canvas
 *
 * Bytes are decoded by the library's decoder (decodeImage: the same pixels as Pillow, EXIF orientation applied);
 * in a browser, a format it does not read (or a build without it) falls back to the browser's own decoder.
 * Every failure is a PerceiverError; downloads and decoded sizes are bounded.
 */
import { PerceiverError } from "../errors.js";
import { concatBytes } from "../io/image/common.js";
import { DEFAULT_MAX_PIXELS, decodeImage, fromPixels, type RgbImage } from "../io/image/decode.js";
import { isNodeRuntime } from "../perceiver/pretrained.js";

export type PixelSource = { width: number; height: number; data: Uint8Array | Uint8ClampedArray };

/**
 * A browser image source drawn on a 2D canvas: ImageBitmap, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas
 * (width/height) or VideoFrame (displayWidth/displayHeight). Typed by shape, so that these declarations need no DOM
 * library in a Node project.
 */
export type DrawableImage = { readonly width: number; readonly height: number } | { readonly displayWidth: number; readonly displayHeight: number };

export type ImageInput = string | URL | Uint8Array | ArrayBuffer | ArrayBufferView | Blob | PixelSource | DrawableImage;

export interface ImageInputOptions {
  /** Turn photos upright by their EXIF orientation, like transformers' load_image (default true). */
  exifOrientation?: boolean;
  /** Largest image accepted, in pixels (default 100 000 000). */
  maxPixels?: number;
  /** Largest file fetched from a URL, in bytes (default 256 MiB). */
  maxBytes?: number;
  /** A URL that sends nothing for this long fails (default 60 000 ms). */
  timeoutMs?: number;
  /** The input's name in error messages (default: its path, URL, file name or kind). */
  name?: string;
}

const DEFAULT_MAX_BYTES = 256 * 2 ** 20;

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A short name of an input for error messages. */
export function describeInput(input: unknown): string {
  if (typeof input === "string") return input.length > 120 ? `${input.slice(0, 117)}...` : input;
  if (input instanceof URL) return input.href;
  if (typeof File !== "undefined" && input instanceof File) return input.name || "a File";
  if (typeof Blob !== "undefined" && input instanceof Blob) return `a Blob of ${input.size} bytes`;
  if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) return `${(input as ArrayBuffer).byteLength} bytes`;
  const name = (input as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name && name !== "Object" ? `a ${name}` : "an image";
}

export async function loadImageInput(input: ImageInput, opts: ImageInputOptions = {}): Promise<RgbImage> {
  if (typeof input === "string") {
    if (/^(https?|data|blob):/i.test(input)) return fromBytes(await fetchBytes(input, opts), opts.name ?? describeInput(input), opts);
    if (isNodeRuntime()) {
      const { loadImageFile } = await import("../io/image/decode-node.js");
      return loadImageFile(input, { exifOrientation: opts.exifOrientation, maxPixels: opts.maxPixels, source: opts.name });
    }
    const base = (globalThis as { location?: { href?: string } }).location?.href;
    let url: string;
    try {
      url = new URL(input, base).href;
    } catch {
      throw new PerceiverError("INPUT_INVALID", `"${describeInput(input)}" is not a URL (a browser reads images by URL, bytes, Blob or canvas)`);
    }
    return fromBytes(await fetchBytes(url, opts), opts.name ?? describeInput(input), opts);
  }
  const name = opts.name ?? describeInput(input);
  if (input instanceof URL) return fromBytes(await fetchBytes(input.href, opts), name, opts);
  if (input instanceof ArrayBuffer) return fromBytes(new Uint8Array(input), name, opts);
  if (ArrayBuffer.isView(input)) return fromBytes(new Uint8Array(input.buffer, input.byteOffset, input.byteLength), name, opts);
  if (typeof Blob !== "undefined" && input instanceof Blob) {
    if (input.size > (opts.maxBytes ?? DEFAULT_MAX_BYTES)) {
      throw new PerceiverError("IMAGE_TOO_LARGE", `${name}: ${input.size} bytes, more than ${opts.maxBytes ?? DEFAULT_MAX_BYTES}`);
    }
    return fromBytes(new Uint8Array(await input.arrayBuffer()), name, opts);
  }
  if (isPixelSource(input)) {
    const n = input.width * input.height;
    const channels = input.data.length === n * 3 ? 3 : 4;
    return fromPixels(input.data, input.width, input.height, channels);
  }
  if (input !== null && typeof input === "object" && canDraw()) return drawToRgb(input as unknown as CanvasImageSource, opts, name);
  throw new PerceiverError("INPUT_INVALID",
    `unsupported image input (${describeInput(input)}): expected a path or URL, bytes, a Blob, ImageData, or (in a browser) an ImageBitmap, image or canvas`);
}

function isPixelSource(x: unknown): x is PixelSource {
  if (x === null || typeof x !== "object") return false;
  const o = x as Partial<PixelSource>;
  return typeof o.width === "number" && typeof o.height === "number" && (o.data instanceof Uint8Array || o.data instanceof Uint8ClampedArray);
}

const canDraw = () => typeof OffscreenCanvas !== "undefined";

/** Bytes -> RGB by the library's decoder; in a browser, what it cannot read goes to the browser's decoder. */
async function fromBytes(bytes: Uint8Array, name: string, opts: ImageInputOptions): Promise<RgbImage> {
  try {
    // `await`: the decoder may become asynchronous (a decoder that needs initialising); both forms work here
    return await decodeImage(bytes, { source: name, exifOrientation: opts.exifOrientation, maxPixels: opts.maxPixels });
  } catch (e) {
    const browserMayRead = !(e instanceof PerceiverError) || e.code === "IMAGE_UNSUPPORTED";
    if (!browserMayRead || typeof createImageBitmap === "undefined" || !canDraw()) throw e;
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]), {
      colorSpaceConversion: "none", premultiplyAlpha: "none", imageOrientation: opts.exifOrientation === false ? "none" : "from-image",
    });
  } catch (e) {
    throw new PerceiverError("IMAGE_DECODE", `${name}: the browser could not decode this file as an image (${errorText(e)})`);
  }
  try {
    return await drawToRgb(bitmap, opts, name);
  } finally {
    bitmap.close();
  }
}

/** Draws a browser image source on an OffscreenCanvas and reads its pixels back (alpha dropped, not composited). */
async function drawToRgb(source: CanvasImageSource, opts: ImageInputOptions, name = describeInput(source)): Promise<RgbImage> {
  if (typeof HTMLImageElement !== "undefined" && source instanceof HTMLImageElement && !source.complete) {
    try {
      await source.decode();
    } catch (e) {
      throw new PerceiverError("IMAGE_DECODE", `${name}: the image element did not load (${errorText(e)})`);
    }
  }
  const s = source as { width?: number; height?: number; naturalWidth?: number; naturalHeight?: number; displayWidth?: number; displayHeight?: number };
  const width = s.naturalWidth || s.displayWidth || s.width || 0;
  const height = s.naturalHeight || s.displayHeight || s.height || 0;
  if (width === 0 || height === 0) throw new PerceiverError("IMAGE_EMPTY", `${name}: image is empty (${width}x${height})`);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (width * height > maxPixels) throw new PerceiverError("IMAGE_TOO_LARGE", `${name}: ${width}x${height} is more than ${maxPixels} pixels`);
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (ctx === null) throw new PerceiverError("IMAGE_DECODE", `${name}: no 2D canvas here`);
  ctx.drawImage(source, 0, 0);
  return fromPixels(ctx.getImageData(0, 0, width, height).data, width, height, 4);
}

/** GET a URL's bytes: bounded size, a stall timeout, errors that name the URL. */
async function fetchBytes(url: string, opts: ImageInputOptions): Promise<Uint8Array> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const ctrl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(), timeoutMs);
  };
  const shown = opts.name ?? describeInput(url);
  arm();
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: ctrl.signal });
    } catch (e) {
      throw new PerceiverError("INPUT_INVALID", `${shown}: could not fetch the image (${ctrl.signal.aborted ? `no answer for ${timeoutMs / 1000} s` : errorText(e)})`);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new PerceiverError("INPUT_INVALID", `${shown}: HTTP ${res.status} ${res.statusText}`.trimEnd());
    }
    const length = Number(res.headers.get("content-length") ?? NaN);
    if (length > maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw new PerceiverError("IMAGE_TOO_LARGE", `${shown}: ${length} bytes, more than ${maxBytes}`);
    }
    if (res.body === null) return new Uint8Array(0);
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw new PerceiverError("INPUT_INVALID", `${shown}: the download broke off after ${size} bytes (${ctrl.signal.aborted ? `no data for ${timeoutMs / 1000} s` : errorText(e)})`);
      }
      if (r.done) break;
      arm();
      size += r.value.length;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new PerceiverError("IMAGE_TOO_LARGE", `${shown}: more than ${maxBytes} bytes`);
      }
      chunks.push(r.value);
    }
    return concatBytes(chunks);
  } finally {
    clearTimeout(timer);
  }
}
