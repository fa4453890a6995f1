/** Labels with control and bidi characters are escaped on terminals and in --json (src/cli/terminal-text.ts). */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { terminalJson, terminalText } from "../src/cli/terminal-text.js";
import { ROOT, runCli } from "./helpers/cli.js";

const HOSTILE = ["cat\u202Egnp.exe", "csi\u009B31m", "esc\u001b[2J", "nul\u0000", "del\u007f", "iso\u2066x\u2069", "zw\u200Bj", "ls\u2028x", "bom\uFEFF"];
const ACTIVE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;

describe("terminalText / terminalJson", () => {
  it("escape every active character, keep everything else (accents, CJK, emoji) as is", () => {
    for (const s of HOSTILE) expect(terminalText(s)).not.toMatch(ACTIVE);
    expect(terminalText("cat\u202Egnp.exe")).toBe("cat\\u202egnp.exe");
    expect(terminalText("csi\u009B31m")).toBe("csi\\u009b31m");
    expect(terminalText("a\nb\tc", { keepNewlines: true })).toBe("a\nb\tc");
    expect(terminalText("a\nb")).toBe("a\\u000ab");
    expect(terminalText("Pokémon 猫 🐈")).toBe("Pokémon 猫 🐈");
  });
  it("terminalJson parses back to the same value and shows no active character", () => {
    const v = { labels: HOSTILE, n: 1 };
    const text = terminalJson(v);
    expect(text).not.toMatch(ACTIVE);
    expect(JSON.parse(text)).toEqual(v);
  });
});

describe("perceiver classify prints hostile labels escaped", () => {
  const dir = mkdtempSync(join(tmpdir(), "perceiver-labels-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const model = join(dir, "model");
  cpSync(join(ROOT, "test/fixtures/tiny-conv"), model, { recursive: true });
  const config = JSON.parse(readFileSync(join(model, "config.json"), "utf8")) as { id2label: Record<string, string> };
  const n = Object.keys(config.id2label).length;
  config.id2label = Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), HOSTILE[i % HOSTILE.length]]));
  writeFileSync(join(model, "config.json"), JSON.stringify(config));
  const cat = join(ROOT, "test/fixtures/images/chelsea.png");

  it("as a table and as --json", async () => {
    const table = await runCli(["classify", cat, "--model", model, "--top-k", String(n), "--quiet"]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.replaceAll("\n", "")).not.toMatch(ACTIVE);
    expect(table.stdout).toContain("cat\\u202egnp.exe");
    const json = await runCli(["classify", cat, "--model", model, "--top-k", String(n), "--json", "--quiet"]);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout.trim()).not.toMatch(ACTIVE);
    const labels = (JSON.parse(json.stdout) as { top_k: { label: string }[] }).top_k.map((p) => p.label);
    expect(labels.sort()).toEqual(Array.from({ length: n }, (_, i) => HOSTILE[i % HOSTILE.length]).sort());
  }, 120_000);
});
