/**
 * The source's import graph: no import circles (static, dynamic or type-only imports: `import type` is erased at
 * run time, but a reader still has to hold both files in mind at once), and the main entry `perceiver-ts` (src/index.ts) reaches no Node built-in through static imports, so it
 * loads in a browser; Node-only code is reached only through dynamic imports behind runtime checks.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli.js";

const SRC = join(ROOT, "src");

interface Imports {
  static: string[];
  dynamic: string[];
  builtins: string[];
  /** `import type` / `export type` */
  types: string[];
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

function importsOf(file: string): Imports {
  const text = readFileSync(file, "utf8");
  const local = (spec: string) => resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
  const out: Imports = { static: [], dynamic: [], builtins: [], types: [] };
  // `import x from "..."`, `import "..."`, `export ... from "..."`, but not `import type` / `export type`
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?["']([^"']+)["']/gm)) {
    if (m[1].startsWith(".")) out.static.push(local(m[1]));
    else if (m[1].startsWith("node:")) out.builtins.push(m[1]);
  }
  for (const m of text.matchAll(/^\s*(?:import|export)\s+type\b[^'";]*?\sfrom\s+["'](\.[^"']+)["']/gm)) out.types.push(local(m[1]));
  for (const m of text.matchAll(/\bimport\(\s*["'](\.[^"']+)["']\s*\)/g)) out.dynamic.push(local(m[1]));
  return out;
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const rel = (f: string) => relative(SRC, f);

describe("import graph of src/", () => {
  it("has no import circles", () => {
    const state = new Map<string, 1 | 2>();
    const stack: string[] = [];
    const cycles: string[] = [];
    const visit = (f: string) => {
      state.set(f, 1);
      stack.push(f);
      const g = graph.get(f);
      for (const d of g ? [...g.static, ...g.dynamic, ...g.types] : []) {
        if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(" -> "));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 2);
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it("the main entry reaches no Node built-in through static imports", () => {
    const seen = new Set<string>();
    const offenders: string[] = [];
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      const g = graph.get(f);
      expect(g, `${rel(f)} is imported but does not exist`).toBeDefined();
      if (g!.builtins.length) offenders.push(`${rel(f)}: ${g!.builtins.join(", ")}`);
      g!.static.forEach(visit);
    };
    visit(join(SRC, "index.ts"));
    expect(seen.has(join(SRC, "perceiver/pretrained.ts"))).toBe(true); // the walk really follows the imports
    expect(offenders).toEqual([]);
  });
});
