/**
 * The docs cannot drift from the code: README.md's size, every `symbol path:line` link in README.md and docs/,
 * the diagram and FLOP table generated from the config, and the error-code page against src/errors.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkRef, docFiles, docsLines, findRefs, locate, ROOT } from "../scripts/docs-lines.js";
import { convModelBoxes, DIAGRAM_PATH, flopTable, loadDiagramConfig, renderDiagram, WALKTHROUGH_PATH, withFlopTable } from "../scripts/make-diagram.js";

const read = (rel: string) => readFileSync(join(ROOT, rel), "utf8");

describe("README.md", () => {
  it("is at most 10,000 characters", () => {
    const n = [...read("README.md")].length;
    expect(n, `README.md has ${n} characters; move detail to docs/`).toBeLessThanOrEqual(10_000);
  });

  it("README.md and docs/ link only to files and headings that exist", () => {
    // GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens
    const slug = (h: string) => h.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    for (const doc of docFiles()) {
      for (const m of read(doc).matchAll(/\]\(([^)#\s]+)(?:#([^)]*))?\)/g)) {
        if (/^[a-z]+:/.test(m[1])) continue; // https:, mailto:
        const target = join(ROOT, dirname(doc), m[1]);
        expect(() => readFileSync(target), `${doc} links to ${m[1]}`).not.toThrow();
        if (m[2] === undefined || /^L\d+$/.test(m[2])) continue;
        const headings = [...readFileSync(target, "utf8").matchAll(/^#+ (.*)$/gm)].map((h) => slug(h[1]));
        expect(headings, `${doc} links to ${m[1]}#${m[2]}`).toContain(m[2]);
      }
    }
  });
});

describe("code links in the docs (scripts/docs-lines.ts)", () => {
  it("every `symbol path:line` link points at a line holding its symbol", () => {
    const r = docsLines();
    expect(r.refs).toBeGreaterThan(30);
    expect(r.problems, "run: npx tsx scripts/docs-lines.ts").toEqual([]);
  });

  it("finds a broken link, and the script moves it to the symbol's new line", () => {
    const root = mkdtempSync(join(tmpdir(), "docs-lines-"));
    try {
      mkdirSync(join(root, "docs"));
      mkdirSync(join(root, "src"));
      writeFileSync(join(root, "src", "a.ts"), "// header\n\nexport function other() {}\n\nexport function target() {\n  return target;\n}\n");
      writeFileSync(join(root, "README.md"), "see [`target` src/a.ts:2](src/a.ts#L2)\n");
      writeFileSync(join(root, "docs", "x.md"), "| [`other` src/a.ts:3](../src/a.ts#L3) | [`gone` src/a.ts:1](../src/a.ts#L1) |\n");
      const refs = findRefs("README.md", readFileSync(join(root, "README.md"), "utf8"));
      expect(refs).toHaveLength(1);
      expect(checkRef(refs[0], root)).toMatch(/does not contain `target`/);

      const r = docsLines({ fix: true, root });
      // target moved to its definition (line 5, not the use on line 6); `gone` cannot be found and stays broken
      expect(readFileSync(join(root, "README.md"), "utf8")).toBe("see [`target` src/a.ts:5](src/a.ts#L5)\n");
      expect(r.fixed).toHaveLength(1);
      expect(r.problems).toHaveLength(1);
      expect(r.problems[0]).toMatch(/`gone`/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("prefers a definition, then the line nearest the old one", () => {
    const lines = ["x(1);", "const x = 2;", "x(3);", "y(x);", "x(4);"];
    expect(locate("x", lines, 5)).toBe(2); // the definition, though line 5 is nearer
    expect(locate("y", lines, 1)).toBe(4);
    expect(locate("z", lines, 1)).toBeNull();
  });

  it("a link whose text and target disagree is reported", () => {
    const [ref] = findRefs("docs/x.md", "[`forward` src/perceiver/model.ts:10](../src/perceiver/model.ts#L11)");
    expect(checkRef(ref)).toMatch(/line 10, the link #L11/);
  });
});

describe("generated from the config (scripts/make-diagram.ts)", () => {
  const cfg = loadDiagramConfig();

  it("docs/images/conv-model.svg is what the script draws today", () => {
    expect(readFileSync(DIAGRAM_PATH, "utf8"), "run: npx tsx scripts/make-diagram.ts").toBe(renderDiagram(cfg));
  });

  it("the diagram shows the walkthrough's shapes", () => {
    const svg = renderDiagram(cfg);
    for (const s of ["[1, 3, 224, 224]", "[1, 64, 112, 112]", "[1, 64, 55, 55]", "[3025, 64]", "byte array [3025, 322]",
      "latent array [512, 1024]", "output query [1, 1024]", "logits [1, 1000]", "369.2 GFLOP"]) {
      expect(svg).toContain(s);
    }
  });

  it("README.md's and the walkthrough's hand-drawn shapes are the config's", () => {
    const { input, boxes } = convModelBoxes(cfg);
    for (const doc of ["README.md", "docs/walkthrough.md"]) {
      const text = read(doc);
      for (const shape of [input.replace("pixel_values ", ""), ...boxes.map((b) => b.out), ...boxes.flatMap((b) => (b.side ? [b.side] : []))]) {
        const dims = /\[[\d, ]+\]/.exec(shape)![0];
        expect(text, `${doc} lacks ${shape}`).toContain(dims);
      }
    }
  });

  it("the walkthrough's FLOP table is what flops.ts computes today", () => {
    const text = readFileSync(WALKTHROUGH_PATH, "utf8");
    expect(text, "run: npx tsx scripts/make-diagram.ts").toBe(withFlopTable(text, flopTable(cfg)));
    expect(text).toContain("| **total** | | | | **369.245** |");
  });
});

describe("docs/reference/errors.md", () => {
  it("lists exactly the codes of src/errors.ts", () => {
    const source = read("src/errors.ts");
    const union = source.slice(source.indexOf("export type PerceiverErrorCode"), source.indexOf("export class PerceiverError"));
    const codes = [...union.matchAll(/\|\s*"([A-Z0-9_]+)"/g)].map((m) => m[1]);
    expect(codes.length).toBeGreaterThan(40);
    const documented = [...read("docs/reference/errors.md").matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    const missing = codes.filter((c) => !documented.includes(c));
    const extra = documented.filter((c) => !codes.includes(c));
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    expect(new Set(documented).size).toBe(documented.length);
  });
});

/** The names in the `export { ... }` and `export type { ... }` lists of an entry file's source. */
function exportedNames(source: string): string[] {
  const names: string[] = [];
  for (const m of source.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}/gm)) {
    for (const item of m[1].split(",")) {
      const name = item.trim().replace(/^type\s+/, "").split(/\s+as\s+/).pop()!.trim();
      if (name) names.push(name);
    }
  }
  return names;
}

/** The names of `names` that `doc` does not mention as a whole word. */
function unmentioned(names: readonly string[], doc: string): string[] {
  return names.filter((n) => !new RegExp(`(?<![\\w$])${n.replace(/\$/g, "\\$")}(?![\\w$])`).test(doc));
}

describe("docs/reference/api.md", () => {
  it("names every export of src/index.ts and src/node.ts", () => {
    const api = read("docs/reference/api.md");
    for (const entry of ["src/index.ts", "src/node.ts"]) {
      const names = exportedNames(read(entry));
      expect(names.length, entry).toBeGreaterThan(entry === "src/index.ts" ? 80 : 15);
      expect(unmentioned(names, api), `${entry} exports these, docs/reference/api.md does not mention them`).toEqual([]);
    }
  });

  it("reads export lists, type-only exports and renames, and finds a name the page lacks", () => {
    const src = 'export { a, type B, c as d } from "./x.js";\nexport type { E } from "./y.js";\nexport {\n  f,\n  g,\n} from "./z.js";\n';
    expect(exportedNames(src)).toEqual(["a", "B", "d", "E", "f", "g"]);
    // a word inside a longer name does not count: `topKx` does not mention topK
    expect(unmentioned(["topK", "pipeline", "f"], "`topKx`, `pipeline()`, f")).toEqual(["topK"]);
  });
});
