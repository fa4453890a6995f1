/** Reading pytorch_model.bin from a file (Node). */
import { open } from "node:fs/promises";
import { PerceiverError } from "../../errors.js";
import { readTorchBin, type ReadTorchBinOptions, type TorchStateDict } from "./torch-bin.js";

/**
 * Reads the file into one fresh buffer of its size (read in place: no second copy) and parses it with readTorchBin.
 * Errors: CHECKPOINT_NOT_FOUND (cannot open or read), MEMORY_LIMIT (the file does not fit in memory), and those of
 * readTorchBin.
 */
export async function readTorchBinFile(path: string, opts: ReadTorchBinOptions = {}): Promise<TorchStateDict> {
  let bytes: Uint8Array;
  let fh;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read ${path}: not a regular file`);
    try {
      bytes = new Uint8Array(st.size);
    } catch (e) {
      throw new PerceiverError("MEMORY_LIMIT", `${path}: cannot hold the ${st.size}-byte file in memory (${(e as Error).message})`, { cause: e });
    }
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await fh.read(bytes, done, Math.min(bytes.length - done, 1 << 30), done);
      if (bytesRead === 0) throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read ${path}: it ended after ${done} bytes (changed on disk?)`);
      done += bytesRead;
    }
  } catch (e) {
    if (e instanceof PerceiverError) throw e;
    throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh.close();
  }
  return readTorchBin(bytes, { ...opts, source: opts.source ?? path });
}
