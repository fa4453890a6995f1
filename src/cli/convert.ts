/** `perceiver convert <pytorch_model.bin> <model.safetensors>`: rewrite a PyTorch checkpoint as safetensors, losslessly. */
import { parseArgs } from "node:util";
import { PerceiverError } from "../errors.js";
import { writeSafetensorsFile } from "../io/safetensors-node.js";
import type { SafetensorsTensor } from "../io/safetensors.js";
import { readTorchBinFile } from "../io/torch-bin-node.js";

export const CONVERT_HELP = `Usage: perceiver convert <pytorch_model.bin> <model.safetensors>

Read a PyTorch checkpoint with the restricted unpickler (no code is executed) and write its tensors,
with the same names, dtypes and values, as a safetensors file (metadata format=pt, like the HF converter).`;

export async function convert(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { help: { type: "boolean", short: "h", default: false }, debug: { type: "boolean", default: false }, quiet: { type: "boolean", default: false } },
  });
  if (values.help) {
    console.log(CONVERT_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new PerceiverError("USAGE", "convert: expected <pytorch_model.bin> <model.safetensors> (see perceiver convert --help)");
  const [input, output] = positionals;
  if (!output.endsWith(".safetensors")) throw new PerceiverError("USAGE", `convert: the output file should end in .safetensors, got ${output}`);
  const t0 = performance.now();
  const sd = await readTorchBinFile(input);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const name of sd.names()) {
    const info = sd.info(name);
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data: sd.getBytes(name) });
  }
  await writeSafetensorsFile(output, tensors, { format: "pt" });
  if (!values.quiet) console.error(`wrote ${tensors.size} tensors to ${output} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}
