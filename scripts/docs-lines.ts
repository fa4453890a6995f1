/**
 * Keeps the docs' code references true. A reference is a markdown link that names a symbol and a line:
 *
 *   [`forwardSync` src/perceiver/model.ts:135](../src/perceiver/model.ts#L135)
 *
 * and it holds when line 135 of that file contains the text `forwardSync`. test/docs.test.ts checks every one in
 * README.md and docs/; this script rewrites the line numbers after the code moved, by finding each symbol again:
 *
 *   npx tsx scripts/docs-lines.ts           # rewrite the line numbers of the references that went stale
 *   npx tsx scripts/docs-lines.ts --check   # list the stale ones, exit 1 if there are any
 *
 * A moved symbol is looked for in the same file: its definition (`function x`, `class x`, `x(…) {`, `readonly x`,
 * …) if it has one, else any line holding it, the one nearest the old line number when there are several.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, posix, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** [`symbol` path:line](target#Lline) */
const REF = /\[`([^`]+)` ([\w./-]+):(\d+)\]\(([^)#\s]+)#L(\d+)\)/g;

export interface DocRef {
  /** the markdown file, relative to the repository root */
  doc: string;
  /** 1-based line of the reference in the doc */
  docLine: number;
  symbol: string;
  /** the code file as written in the link text, relative to the repository root */
  path: string;
  line: number;
  /** the link target as written, relative to the doc */
  target: string;
  targetLine: number;
  /** the whole link text */
  raw: string;
}

/** README.md and every .md file under docs/, relative to the root. */
export function docFiles(root = ROOT): string[] {
  const out = ["README.md"];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const rel = posix.join(dir, name);
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (name.endsWith(".md")) out.push(rel);
    }
  };
  walk("docs");
  return out;
}

export function findRefs(doc: string, text: string): DocRef[] {
  const refs: DocRef[] = [];
  text.split("\n").forEach((lineText, i) => {
    for (const m of lineText.matchAll(REF)) {
      refs.push({ doc, docLine: i + 1, symbol: m[1], path: m[2], line: Number(m[3]), target: m[4], targetLine: Number(m[5]), raw: m[0] });
    }
  });
  return refs;
}

const fileCache = new Map<string, string[] | null>();
function fileLines(root: string, path: string): string[] | null {
  const key = join(root, path);
  if (!fileCache.has(key)) {
    try {
      fileCache.set(key, readFileSync(key, "utf8").split("\n"));
    } catch {
      fileCache.set(key, null);
    }
  }
  return fileCache.get(key)!;
}

/** What is wrong with one reference, or null when it holds. */
export function checkRef(ref: DocRef, root = ROOT): string | null {
  const where = `${ref.doc}:${ref.docLine}: ${ref.raw}`;
  const resolved = posix.normalize(posix.join(posix.dirname(ref.doc), ref.target));
  if (resolved !== ref.path) return `${where}: the link goes to ${resolved}, the text says ${ref.path}`;
  if (ref.line !== ref.targetLine) return `${where}: the text says line ${ref.line}, the link #L${ref.targetLine}`;
  const lines = fileLines(root, ref.path);
  if (!lines) return `${where}: ${ref.path} does not exist`;
  const at = lines[ref.line - 1];
  if (at === undefined || !at.includes(ref.symbol)) return `${where}: line ${ref.line} of ${ref.path} does not contain \`${ref.symbol}\``;
  return null;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The line (1-based) the symbol lives on now, or null when the file does not contain it. */
export function locate(symbol: string, lines: string[], oldLine: number): number | null {
  const holding: number[] = [];
  lines.forEach((l, i) => {
    if (l.includes(symbol)) holding.push(i + 1);
  });
  if (holding.length === 0) return null;
  const s = escapeRe(symbol);
  const mods = "(?:(?:export|public|private|protected|static|async|override|readonly|declare|get|set)\\s+)*";
  const definition = [
    // function x, class x, const x, readonly x, …
    new RegExp(`\\b(?:function\\*?|class|interface|type|const|let|var|enum|readonly|get|set|static|async|private|protected)\\s+${s}\\b`),
    // a method: x(…) {   or a signature that goes on to the next line: x(
    new RegExp(`^\\s*${mods}${s}\\s*(?:<[^>]*>)?\\((?:.*\\)\\s*(?::[^;]*)?\\{|[^)]*)\\s*$`),
    // a field: x: T   or x?: T
    new RegExp(`^\\s*${mods}${s}\\s*[?!]?\\s*:`),
  ];
  const defs = holding.filter((n) => definition.some((re) => re.test(lines[n - 1])));
  const pool = defs.length ? defs : holding;
  return pool.reduce((best, n) => (Math.abs(n - oldLine) < Math.abs(best - oldLine) ? n : best));
}

/** Check (and with fix, rewrite) every reference in the docs. Returns the problems left. */
export function docsLines(opts: { fix?: boolean; root?: string } = {}): { refs: number; fixed: string[]; problems: string[] } {
  const root = opts.root ?? ROOT;
  fileCache.clear();
  const problems: string[] = [];
  const fixed: string[] = [];
  let count = 0;
  for (const doc of docFiles(root)) {
    const text = readFileSync(join(root, doc), "utf8");
    let changed = false;
    const out = text.split("\n").map((lineText, i) =>
      lineText.replace(REF, (raw, symbol: string, path: string, line: string, target: string, targetLine: string) => {
        count++;
        const ref: DocRef = { doc, docLine: i + 1, symbol, path, line: Number(line), target, targetLine: Number(targetLine), raw };
        const problem = checkRef(ref, root);
        if (!problem) return raw;
        const lines = fileLines(root, path);
        const resolved = posix.normalize(posix.join(posix.dirname(doc), target));
        const now = lines && resolved === path ? locate(symbol, lines, ref.line) : null;
        if (!opts.fix || now === null) {
          problems.push(problem);
          return raw;
        }
        changed = true;
        fixed.push(`${doc}:${i + 1}: \`${symbol}\` ${path}:${line} -> ${now}`);
        return `[\`${symbol}\` ${path}:${now}](${target}#L${now})`;
      }),
    );
    if (changed) writeFileSync(join(root, doc), out.join("\n"));
  }
  return { refs: count, fixed, problems };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const check = process.argv.includes("--check");
  const r = docsLines({ fix: !check });
  for (const f of r.fixed) console.log(`fixed ${f}`);
  for (const p of r.problems) console.error(p);
  console.log(`${r.refs} references in ${relative(process.cwd(), ROOT) || "."}/README.md and docs/, ${r.fixed.length} rewritten, ${r.problems.length} broken`);
  if (r.problems.length) process.exit(1);
}
