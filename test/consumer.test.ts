/**
 * perceiver-ts as a user installs it: `npm pack` makes the tarball the registry would serve, a fresh project
 * installs it, and the README's library example runs from an ES module, from CommonJS `require`, and type-checks
 * under TypeScript `strict`; the `perceiver` bin runs through `npx`. With CI=true (or PERCEIVER_TEST_GIT_INSTALL=1)
 * the same project is also installed from a git URL, which must build dist/ through the `prepare` script.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli.js";
import { PerceiverForImageClassification } from "../src/perceiver/model.js";
import { preprocessBatch } from "../src/io/image/image-processor.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { topK } from "../src/perceiver/labels.js";

const TINY = join(ROOT, "test/fixtures/tiny-conv");
const CAT = join(ROOT, "samples/cat.png");
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
/** A TypeScript user's project has Node's types; the same pinned version as ours. */
const TYPES_NODE = `@types/node@${JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).devDependencies["@types/node"]}`;

/** The top-5 lines the examples print, computed in this process with the library from source. */
async function expectedLines(): Promise<string> {
  const model = await PerceiverForImageClassification.fromPretrained(TINY);
  const { logits } = await model.forward(preprocessBatch([await loadImageFile(CAT)]));
  return topK(logits.data, 5, model.config.id2label).map((p) => `${p.score.toFixed(4)}  ${p.label}`).join("\n") + "\n";
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_yes: "true" }, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A fresh consumer project holding the three examples and a strict tsconfig. */
function makeProject(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }, null, 2));
  copyFileSync(join(ROOT, "examples/classify.mjs"), join(dir, "classify.mjs"));
  copyFileSync(join(ROOT, "examples/classify.cjs"), join(dir, "classify.cjs"));
  copyFileSync(join(ROOT, "examples/classify.ts"), join(dir, "classify.ts"));
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, types: ["node"] }, files: ["classify.ts"] }),
  );
}

function checkProject(dir: string, expected: string): void {
  for (const f of ["classify.mjs", "classify.cjs"]) {
    expect(run(process.execPath, [f, TINY, CAT], dir), f).toBe(expected);
  }
  // TypeScript strict, resolving the package's own .d.ts files through its "exports"
  run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], dir);
  // the bin, as `npx perceiver` finds it (not a registry package of the same name)
  const out = run(NPM, ["exec", "--no", "--", "perceiver", "classify", CAT, "--model", TINY, "--json"], dir);
  const rec = JSON.parse(out.trim().split("\n")[0]);
  expect(rec.top_k[0].label).toBe(expected.split("\n")[0].slice(8));
}

describe("installed as a consumer project would", () => {
  let work: string;
  let expected: string;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "perceiver-consumer-"));
    expected = await expectedLines();
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("from the packed tarball: ESM, CommonJS, TypeScript strict and npx perceiver", () => {
    run(NPM, ["pack", "--pack-destination", work, "--silent"], ROOT);
    const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
    expect(tarball).toBeDefined();
    const listing = execFileSync("tar", ["-tzf", join(work, tarball!)], { encoding: "utf8" });
    expect(listing).toContain("package/LICENSE");
    expect(listing).toContain("package/dist/index.js");
    expect(listing).not.toContain("package/tools/"); // the fuzzer stays out of the published package
    const dir = join(work, "tarball");
    makeProject(dir);
    run(NPM, ["install", "--prefer-offline", "--no-audit", "--no-fund", join(work, tarball!), TYPES_NODE], dir);
    checkProject(dir, expected);
  }, 600_000);

  it.runIf(process.env.CI === "true" || process.env.PERCEIVER_TEST_GIT_INSTALL === "1")(
    "from a git URL (prepare builds dist/): the same examples run",
    () => {
      // a clone of the committed tree, as `npm install git+https://...` would fetch it
      const repo = join(work, "repo");
      run("git", ["clone", "--quiet", "--depth", "1", `file://${ROOT}`, repo], work);
      const dir = join(work, "git");
      makeProject(dir);
      run(NPM, ["install", "--prefer-offline", "--no-audit", "--no-fund", `git+file://${repo}`, TYPES_NODE], dir);
      checkProject(dir, expected);
    },
    900_000,
  );
});
