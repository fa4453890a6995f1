/** Reading pytorch_model.bin from a file (Node). */
import { readFile, stat } from "node:fs/promises";
import { PerceiverError } from "../../errors.js";
import { readTorchBin, type ReadTorchBinOptions, type TorchStateDict } from "./torch-bin.js";

export async function readTorchBinFile(path: string, opts: ReadTorchBinOptions = {}): Promise<TorchStateDict> {
  let bytes: Uint8Array;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error("not a regular file");
    const buf = await readFile(path);
    // a fresh, aligned Uint8Array (Node Buffers may be views into a shared pool)
    bytes = new Uint8Array(buf.byteLength);
    bytes.set(buf);
  } catch (e) {
    throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return readTorchBin(bytes, { ...opts, source: opts.source ?? path });
}
