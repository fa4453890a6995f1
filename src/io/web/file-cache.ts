/**
 * Downloaded files kept across page loads in the Cache API (browsers; secure contexts, which include localhost),
 * keyed by their URL. A file the server said is absent (an optional preprocessor_config.json, model.safetensors on a
 * revision with only pytorch_model.bin) is remembered too, so a reload asks the network nothing at all.
 * Where the Cache API is missing or refuses (Node, a private window, storage full) nothing is cached and loading
 * still works.
 */

export const DEFAULT_CACHE_NAME = "perceiver-ts-models";

/** Marks a cached answer meaning "this URL has no file". */
const MISSING_HEADER = "x-perceiver-ts-missing";

export interface FileCache {
  /** The cached bytes, "missing" when the file is known to be absent, or null when nothing is cached. */
  get(url: string): Promise<Uint8Array | "missing" | null>;
  put(url: string, bytes: Uint8Array): Promise<void>;
  putMissing(url: string): Promise<void>;
}

const NO_CACHE: FileCache = {
  get: async () => null,
  put: async () => {},
  putMissing: async () => {},
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
  };
}
