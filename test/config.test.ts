import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import { parsePerceiverConfig } from "../src/perceiver/config.js";
import { expectedWeights } from "../src/perceiver/weights.js";
import { fixture } from "./helpers/golden.js";

const full = JSON.parse(readFileSync(fixture("full", "config.json"), "utf8"));

function expectConfigError(json: unknown, code: string, text: RegExp) {
  try {
    parsePerceiverConfig(json);
  } catch (e) {
    expect(e).toBeInstanceOf(PerceiverError);
    expect((e as PerceiverError).code).toBe(code);
    expect((e as Error).message).toMatch(text);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe("PerceiverConfig", () => {
  it("reads the full vision-perceiver-conv config", () => {
    const c = parsePerceiverConfig(full);
    expect(c).toMatchObject({ numLatents: 512, dLatents: 1024, numBlocks: 8, numSelfAttendsPerBlock: 6, numSelfAttentionHeads: 8, numCrossAttentionHeads: 1, numLabels: 1000 });
    expect(c.id2label[281]).toBe("tabby, tabby cat");
  });
  it("maps to exactly the 142 state-dict keys and 48,646,651 elements of the spec", () => {
    const m = expectedWeights(parsePerceiverConfig(full));
    expect(m.size).toBe(142);
    let n = 0;
    for (const s of m.values()) n += s.reduce((p, d) => p * d, 1);
    expect(n).toBe(48_646_651);
  });
  it("applies transformers' defaults to missing keys and ignores unknown ones", () => {
    const c = parsePerceiverConfig({ whatever: 1 });
    expect(c).toMatchObject({ numLatents: 256, dLatents: 1280, numBlocks: 1, numSelfAttendsPerBlock: 26, numLabels: 2, crossAttentionShapeForAttention: "kv" });
    expect(c.id2label[1]).toBe("LABEL_1");
  });
  it("rejects impossible values naming the field", () => {
    expectConfigError({ ...full, num_self_attention_heads: 7 }, "CONFIG_INVALID", /num_self_attention_heads.*must divide d_latents/);
    expectConfigError({ ...full, num_latents: -3 }, "CONFIG_INVALID", /"num_latents" must be at least 1/);
    expectConfigError({ ...full, d_latents: "1024" }, "CONFIG_INVALID", /"d_latents" must be an integer/);
    expectConfigError({ ...full, num_latents: 1e9 }, "CONFIG_INVALID", /over the limit/);
    expectConfigError({ ...full, qk_channels: 100 }, "CONFIG_INVALID", /"qk_channels" \(100\) must be divisible/);
    expectConfigError({ ...full, v_channels: 512 }, "CONFIG_INVALID", /"v_channels" \(512\) must equal d_latents/);
    expectConfigError({ ...full, cross_attention_shape_for_attention: "x" }, "CONFIG_INVALID", /cross_attention_shape_for_attention/);
    expectConfigError({ ...full, num_labels: 5 }, "CONFIG_INVALID", /num_labels.*id2label has 1000/);
    expectConfigError({ ...full, id2label: { "0": "a", "5": "b" } }, "CONFIG_INVALID", /id2label.*index 5/);
    expectConfigError([], "CONFIG_INVALID", /expected a JSON object/);
    expectConfigError({ ...full, hidden_act: "relu" }, "CONFIG_UNSUPPORTED", /hidden_act/);
    expectConfigError({ ...full, architectures: ["BertModel"] }, "CONFIG_UNSUPPORTED", /BertModel is not supported/);
    expectConfigError({ ...full, model_type: "bert" }, "CONFIG_UNSUPPORTED", /model_type/);
  });
});
