/**
 * `npm run try -- --tiny` (scripts/try-offline.ts): classify, embed and attention-map run offline on the committed
 * tiny checkpoint, the output says the labels are meaningless and how to open the demo. (The full-size variant
 * differs only in the checkpoint, which test/e2e-cli.test.ts covers.)
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli.js";

describe("npm run try", () => {
  it("is a package script that runs every CLI command offline on the tiny checkpoint", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.try).toBe("tsx scripts/try-offline.ts");
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/try-offline.ts"), "--tiny"], {
      cwd: ROOT, encoding: "utf8", env: { ...process.env, HF_ENDPOINT: "http://127.0.0.1:9" }, timeout: 240_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out.match(/THE LABELS ARE MEANINGLESS/g)).toHaveLength(2); // before the commands and at the end
    expect(out).toMatch(/\$ perceiver classify samples\/cat\.png --model test\/fixtures\/tiny-conv/);
    expect(out).toMatch(/ 1 {2}class_\d +\d +0\.\d{4}/); // a top-5 table
    expect(out).toMatch(/samples\/cat\.png {2}dim 64 {2}L2 norm/); // embed
    expect(out).toMatch(/wrote weights\/try-offline\/attention\.png/);
    expect(out).toMatch(/npm run demo:dev[\s\S]*test\/fixtures\/tiny-conv\/config\.json[\s\S]*test\/fixtures\/tiny-conv\/model\.safetensors/);
    for (const f of ["attention.png", "attention.latents.png"]) {
      const st = statSync(join(ROOT, "weights/try-offline", f));
      expect(st.mtimeMs).toBeGreaterThanOrEqual(t0 - 1000); // written by this run
    }
    expect(existsSync(join(ROOT, "weights/try-offline/attention.png"))).toBe(true);
  }, 300_000);
});
