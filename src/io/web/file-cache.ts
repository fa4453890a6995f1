/**
 * Downloaded files kept across page loads in the Cache API (browsers; secure contexts, which include localhost),
 * keyed by their URL. A file the server said is absent (an optional preprocessor_config.json, model.safetensors on a
 * revision with only pytorch_model.bin) is remembered too, so a reload asks the network nothing at all.
 * A download interrupted by closing the page leaves its whole segments (fetch-file.ts) under
 * `{url}?perceiver-ts-segment={i}`; the next load continues after them and drops them once the file is complete.
 * Where the Cache API is missing or refuses (Node, a private window, storage full) nothing is cached and loading
 * still works.
 */
import type { PartialFile, PartialMeta } from "./fetch-file.js";

export const DEFAULT_CACHE_NAME = "perceiver-ts-models";

/** Marks a cached answer meaning "this URL has no file". */
const MISSING_HEADER = "x-perceiver-ts-missing";

export interface FileCache {
  /** The cached bytes, "missing" when the file is known to be absent, or null when nothing is cached. */
  get(url: string): Promise<Uint8Array | "missing" | null>;
  put(url: string, bytes: Uint8Array): Promise<void>;
  putMissing(url: string): Promise<void>;
  /** The segments kept from an interrupted download of `url`, or null. */
  getPartial(url: string): Promise<PartialFile | null>;
  putSegment(url: string, index: number, bytes: Uint8Array, meta: PartialMeta): Promise<void>;
  clearPartial(url: string): Promise<void>;
}

function segmentKey(url: string, index: number): string {
  return `${url}${url.includes("?") ? "&" : "?"}perceiver-ts-segment=${index}`;
}

const NO_CACHE: FileCache = {
  get: async () => null,
  put: async () => {},
  putMissing: async () => {},
  getPartial: async () => null,
  putSegment: async () => {},
  clearPartial: async () => {},
};

/** `setting`: true (the default cache), a cache name, or false (no caching). */
export async function openFileCache(setting: boolean | string | undefined): Promise<FileCache> {
  if (setting === false) return NO_CACHE;
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (storage === undefined) return NO_CACHE;
  let cache: Cache;
  try {
    cache = await storage.open(typeof setting === "string" ? setting : DEFAULT_CACHE_NAME);
  } catch {
    return NO_CACHE;
  }
  return {
    async get(url) {
      try {
        const res = await cache.match(url);
        if (res === undefined) return null;
        if (res.headers.get(MISSING_HEADER) === "1") return "missing";
        return new Uint8Array(await res.arrayBuffer());
      } catch {
        return null;
      }
    },
    async put(url, bytes) {
      try {
        const body = new Blob([bytes as Uint8Array<ArrayBuffer>]);
        await cache.put(url, new Response(body, { headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length) } }));
      } catch {
        // storage full or refused: the model still loads, the next load downloads again
      }
    },
    async putMissing(url) {
      try {
        await cache.put(url, new Response(null, { status: 200, headers: { [MISSING_HEADER]: "1" } }));
      } catch {
        // as above
      }
    },
    async getPartial(url) {
      const segments: Uint8Array[] = [];
      let meta: PartialMeta | null = null;
      try {
        // segment i covers bytes [i·segmentBytes, (i+1)·segmentBytes) of a file of `total` bytes
        for (let i = 0; meta === null || i * meta.segmentBytes < meta.total; i++) {
          const res = await cache.match(segmentKey(url, i));
          if (res === undefined) break;
          const m = {
            total: Number(res.headers.get("x-total")), etag: res.headers.get("x-etag") || null, segmentBytes: Number(res.headers.get("x-segment-bytes")),
          };
          // every segment must belong to the same file and be whole
          if (meta !== null && (m.total !== meta.total || m.etag !== meta.etag || m.segmentBytes !== meta.segmentBytes)) break;
          if (!(m.segmentBytes >= 1 && m.total >= m.segmentBytes)) break;
          const bytes = new Uint8Array(await res.arrayBuffer());
          if (bytes.length !== m.segmentBytes) break;
          meta ??= m;
          segments.push(bytes);
        }
      } catch {
        return null;
      }
      return meta === null ? null : { ...meta, segments };
    },
    async putSegment(url, index, bytes, meta) {
      try {
        const headers = { "x-total": String(meta.total), "x-etag": meta.etag ?? "", "x-segment-bytes": String(meta.segmentBytes) };
        await cache.put(segmentKey(url, index), new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]), { headers }));
      } catch {
        // as above: the download goes on, only the resume after a reload is lost
      }
    },
    async clearPartial(url) {
      try {
        // segments are written in order from 0: the first one missing ends them
        for (let i = 0; await cache.delete(segmentKey(url, i)); i++);
      } catch {
        // nothing to do
      }
    },
  };
}
