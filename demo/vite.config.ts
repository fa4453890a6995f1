/**
 * Vite config of the browser demo. Run from the repository root:
 *   npx vite --config demo/vite.config.ts              dev server (http://localhost:5173)
 *   npx vite build --config demo/vite.config.ts        static build into demo/dist
 * The page imports the library from ../src (TypeScript, no prior `npm run build` needed).
 */
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

/**
 * `node:*` modules are reachable from src/index.ts only through `fromPretrained`'s dynamic import (Node-only
 * loading from files and the hub cache). Keep them as external imports of that chunk, which the page never loads,
 * instead of Vite's browser stubs and their warnings.
 */
function nodeBuiltinsExternal(): Plugin {
  return {
    name: "perceiver-demo:node-builtins-external",
    enforce: "pre",
    resolveId(id) {
      return id.startsWith("node:") ? { id, external: true } : null;
    },
  };
}

export default defineConfig({
  root: here("."),
  base: "./",
  // samples/cat.png is served as ./cat.png for the "try the sample cat" button
  publicDir: here("../samples"),
  plugins: [nodeBuiltinsExternal()],
  worker: {
    format: "es",
    plugins: () => [nodeBuiltinsExternal()],
  },
  build: {
    outDir: here("dist"),
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 1024,
  },
  // Cross-origin isolation (SharedArrayBuffer), so the inference worker can run the matrix products on Web Worker
  // threads; the hub's CORS responses satisfy require-corp. Static hosts must send the same two headers.
  server: {
    fs: { allow: [here("..")] },
    headers: ISOLATION_HEADERS,
  },
  preview: { headers: ISOLATION_HEADERS },
});
