/** `perceiver convert <pytorch_model.bin> <model.safetensors>`: rewrite a PyTorch checkpoint as safetensors, losslessly. */
import { PerceiverError } from "../errors.js";
import { parseCommandArgs } from "./args.js";
import { DTYPE_SIZE, writeSafetensors, type SafetensorsTensor } from "../io/checkpoint/safetensors.js";
import type { TorchStateDict } from "../io/checkpoint/torch-bin.js";
import { readTorchBinFile } from "../io/checkpoint/torch-bin-node.js";
import { availableMemoryBytes } from "../perceiver/memory.js";
import { checkOutputPath, FORCE_HELP, writeOutputFile } from "./output.js";

export const CONVERT_HELP = `Usage: perceiver convert <pytorch_model.bin> <model.safetensors> [options]

Read a PyTorch checkpoint with the restricted unpickler (no code is executed) and write its tensors,
with the same names, dtypes and values, as a safetensors file (metadata format=pt, like the HF converter).
The file appears complete or not at all (written to a temp file in the same folder, then renamed).

Options:
${FORCE_HELP}
  --quiet                     no summary line on stderr
  --debug                     print stack traces on errors
  -h, --help                  show this help`;

/**
 * The output holds every tensor, so a small hostile file whose many views repeat one storage (or broadcast it with
 * stride 0) could ask for far more memory than it occupies. Refuse before materializing: more than 64x the file
 * (real checkpoints are about 1x; shared storages, e.g. tied weights, make it 2x), or more than is available.
 */
function checkConvertSize(input: string, sd: TorchStateDict): void {
  let total = 0;
  for (const name of sd.names()) {
    const info = sd.info(name);
    total += info.shape.reduce((p, d) => p * d, 1) * DTYPE_SIZE[info.dtype];
  }
  const cap = 64 * sd.byteLength + 64 * 2 ** 20;
  if (total > cap) {
    throw new PerceiverError("MEMORY_LIMIT",
      `${input}: its ${sd.names().length} tensors expand to ${total} bytes from a ${sd.byteLength}-byte file ` +
      `(views repeating a shared storage?), over the ${cap} bytes convert accepts`);
  }
  const avail = availableMemoryBytes();
  if (avail !== null && 2 * total > avail) {
    throw new PerceiverError("MEMORY_LIMIT", `${input}: converting needs about ${2 * total} bytes of memory, only ${avail} are available`);
  }
}

export async function convert(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("convert", argv, {
    force: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    debug: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(CONVERT_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new PerceiverError("USAGE", "convert: expected <pytorch_model.bin> <model.safetensors> (see perceiver convert --help)");
  const [input, output] = positionals;
  if (!output.endsWith(".safetensors")) throw new PerceiverError("USAGE", `convert: the output file should end in .safetensors, got ${output}`);
  await checkOutputPath(output, values.force); // before reading a 200 MB checkpoint
  const t0 = performance.now();
  const sd = await readTorchBinFile(input);
  checkConvertSize(input, sd);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const name of sd.names()) {
    const info = sd.info(name);
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data: sd.getBytes(name) });
  }
  await writeOutputFile(output, writeSafetensors(tensors, { format: "pt" }), values.force);
  if (!values.quiet) console.error(`wrote ${tensors.size} tensors to ${output} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}
