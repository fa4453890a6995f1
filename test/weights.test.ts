/** The explicit state-dict mapping fails loudly on missing, unexpected, mis-shaped and mis-typed keys. */
import { describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from "../src/io/checkpoint/safetensors.js";
import { readSafetensorsFile } from "../src/io/checkpoint/safetensors-node.js";
import { PerceiverForImageClassification } from "../src/perceiver/model.js";
import { readConfigFile } from "../src/perceiver/load.js";
import { fixture } from "./helpers/golden.js";

async function tinyTensors(): Promise<Map<string, SafetensorsTensor>> {
  const sd = await readSafetensorsFile(fixture("tiny-conv", "model.safetensors"));
  const m = new Map<string, SafetensorsTensor>();
  for (const n of sd.names()) m.set(n, { dtype: sd.info(n).dtype, shape: sd.info(n).shape, data: sd.getRaw(n) });
  return m;
}

async function load(mutate: (m: Map<string, SafetensorsTensor>) => void) {
  const config = await readConfigFile(fixture("tiny-conv", "config.json"));
  const m = await tinyTensors();
  mutate(m);
  return PerceiverForImageClassification.fromStateDict(config, readSafetensors(writeSafetensors(m)), "test.safetensors");
}

async function expectLoadError(mutate: (m: Map<string, SafetensorsTensor>) => void, code: string, text: RegExp) {
  const e = await load(mutate).then(() => null, (err) => err);
  expect(e).toBeInstanceOf(PerceiverError);
  expect(e.code).toBe(code);
  expect(e.message).toMatch(text);
}

describe("weight mapping", () => {
  it("loads the unmodified checkpoint", async () => {
    await expect(load(() => {})).resolves.toBeInstanceOf(PerceiverForImageClassification);
  });
  it("lists missing keys", async () => {
    await expectLoadError((m) => {
      m.delete("perceiver.embeddings.latents");
      m.delete("perceiver.encoder.self_attends.1.mlp.dense2.bias");
    }, "CHECKPOINT_MISSING_KEYS", /missing keys \(2\):\n {2}perceiver\.embeddings\.latents\n {2}perceiver\.encoder\.self_attends\.1\.mlp\.dense2\.bias/);
  });
  it("lists unexpected keys", async () => {
    await expectLoadError((m) => m.set("perceiver.encoder.self_attends.9.mlp.dense1.bias", { dtype: "F32", shape: [1], data: new Float32Array(1) }),
      "CHECKPOINT_UNEXPECTED_KEYS", /unexpected keys \(1\):\n {2}perceiver\.encoder\.self_attends\.9/);
  });
  it("lists mis-shaped keys with both shapes", async () => {
    await expectLoadError((m) => m.set("perceiver.embeddings.latents", { dtype: "F32", shape: [16, 65], data: new Float32Array(16 * 65) }),
      "CHECKPOINT_SHAPE_MISMATCH", /perceiver\.embeddings\.latents: checkpoint \[16,65\], model expects \[16,64\]/);
  });
  it("refuses integer weights", async () => {
    await expectLoadError((m) => m.set("perceiver.embeddings.latents", { dtype: "I32", shape: [16, 64], data: new Int32Array(16 * 64) }),
      "CHECKPOINT_DTYPE", /perceiver\.embeddings\.latents: I32/);
  });
  it("hints when the 'perceiver.' prefix is missing", async () => {
    await expectLoadError((m) => {
      for (const [k, v] of [...m]) {
        m.delete(k);
        m.set(k.replace(/^perceiver\./, ""), v);
      }
    }, "CHECKPOINT_MISSING_KEYS", /lack the 'perceiver\.' prefix/);
  });
});
