/**
 * The true label of each image for `perceiver eval`, from one of two layouts:
 *
 * - ImageFolder: <root>/<class folder>/.../<image>. The class folder's name is matched to the model's id2label
 *   through --label-map FILE if given, else by exact label ("tabby, tabby cat"), else as a WordNet synset id
 *   ("n02123045", ImageNet's folder names) through the ImageNet-1k mapping shipped in
 *   src/perceiver/imagenet-synsets.ts (for models with the 1000 ImageNet-1k classes). A class folder that matches
 *   nothing is an error before the run: a typo would otherwise count every image of the class as wrong.
 * - Flat, with --labels FILE: lines "relative/path label", the path relative to the root directory given (or as
 *   given on the command line for other inputs), separated from the label by a tab, or else by the first space;
 *   the label an id2label name, a synset id, or a class index. Blank lines and lines starting with "#" are skipped.
 *   An image without a line fails (its record says so); it is not guessed from its folder.
 *
 * --label-map FILE: a JSON object {"folder": label} or lines "folder label" (tab or first space), the label
 * given as in --labels.
 */
import { readFile, stat } from "node:fs/promises";
import { PerceiverError } from "../../errors.js";
import { imagenetClassOfSynset } from "../../perceiver/imagenet-synsets.js";
import { printable } from "../common.js";
import { classFolderOf, pathUnderRoot } from "./image-folder.js";
import type { RecordError } from "./run.js";

export interface LabelSpace {
  numLabels: number;
  id2label: Readonly<Record<number, string>>;
}

const byName = new WeakMap<LabelSpace, Map<string, number>>();

/** A label as written (name, synset id, index) -> its class index, or undefined. */
export function resolveLabel(text: string, space: LabelSpace, { allowIndex = true } = {}): number | undefined {
  let names = byName.get(space);
  if (!names) {
    names = new Map();
    // a name two classes share (ImageNet's "crane", 134 and 517) matches neither: give its synset or index
    for (let i = 0; i < space.numLabels; i++) {
      const name = space.id2label[i];
      if (name !== undefined) names.set(name, names.has(name) ? -1 : i);
    }
    byName.set(space, names);
  }
  const named = names.get(text);
  if (named !== undefined && named >= 0) return named;
  if (/^n\d{8}$/.test(text) && space.numLabels === 1000) {
    const i = imagenetClassOfSynset(text);
    if (i !== undefined) return i;
  }
  if (allowIndex && /^\d+$/.test(text) && Number(text) < space.numLabels) return Number(text);
  return undefined;
}

/** "path<TAB>label" or "path label" (split at the first space) -> [path, label]; null for a line without both. */
function splitLine(line: string): [string, string] | null {
  const tab = line.indexOf("\t");
  const at = tab >= 0 ? tab : line.indexOf(" ");
  if (at <= 0) return null;
  const label = line.slice(at + 1).trim();
  return label === "" ? null : [line.slice(0, at), label];
}

async function readPairs(path: string, flag: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new PerceiverError("INPUT_INVALID", `cannot read ${flag} ${path}: ${(e as Error).message}`, { cause: e });
  }
  const out = new Map<string, string>();
  if (flag === "--label-map" && text.trimStart().startsWith("{")) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new PerceiverError("INPUT_INVALID", `${flag} ${path}: not valid JSON: ${(e as Error).message}`);
    }
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      if (typeof v !== "string" && typeof v !== "number") throw new PerceiverError("INPUT_INVALID", `${flag} ${path}: the label of ${JSON.stringify(k)} must be a string or an index`);
      out.set(k, String(v));
    }
    return out;
  }
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.startsWith("#")) return;
    const pair = splitLine(line);
    if (!pair) throw new PerceiverError("INPUT_INVALID", `${flag} ${path}, line ${i + 1}: expected "path label", got ${JSON.stringify(printable(line))}`);
    const key = pair[0].replace(/\\/g, "/").replace(/^\.\//, "");
    if (out.has(key) && out.get(key) !== pair[1]) throw new PerceiverError("INPUT_INVALID", `${flag} ${path}, line ${i + 1}: ${key} has two labels`);
    out.set(key, pair[1]);
  });
  return out;
}

export interface TrueLabels {
  /** class index of each image that has one */
  labels: Map<string, number>;
  /** images without a true label, with why (they fail without being decoded) */
  missing: Map<string, RecordError>;
  layout: "imagefolder" | "labels-file";
  /** for the log: class folders and how they matched */
  matched: { byMap: number; byName: number; bySynset: number };
}

/** Directories among the inputs (ImageFolder roots, and what --labels paths are relative to). */
export async function directoryInputs(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of inputs) if ((await stat(a).catch(() => null))?.isDirectory()) out.push(a);
  return out;
}

export async function trueLabels(
  files: readonly string[],
  roots: readonly string[],
  space: LabelSpace,
  opts: { labelsFile?: string; labelMapFile?: string },
): Promise<TrueLabels> {
  const labels = new Map<string, number>();
  const missing = new Map<string, RecordError>();
  const matched = { byMap: 0, byName: 0, bySynset: 0 };
  if (opts.labelsFile !== undefined) {
    const pairs = await readPairs(opts.labelsFile, "--labels");
    const bad: string[] = [];
    for (const file of files) {
      const key = pathUnderRoot(file, roots) ?? file.replace(/\\/g, "/").replace(/^\.\//, "");
      const text = pairs.get(key);
      if (text === undefined) {
        missing.set(file, { code: "LABEL_MISSING", message: `${file}: no line for ${key} in --labels ${opts.labelsFile}` });
        continue;
      }
      const i = resolveLabel(text, space);
      if (i === undefined) bad.push(text);
      else labels.set(file, i);
    }
    if (bad.length) throw unknownLabels([...new Set(bad)], space, `--labels ${opts.labelsFile}`);
    return { labels, missing, layout: "labels-file", matched };
  }
  const map = opts.labelMapFile === undefined ? null : await readPairs(opts.labelMapFile, "--label-map");
  const classOf = new Map<string, number | undefined>();
  const unmatched: string[] = [];
  for (const file of files) {
    const folder = classFolderOf(file, roots);
    if (folder === null) {
      missing.set(file, { code: "LABEL_MISSING", message: `${file}: not in a class folder (an ImageFolder has <root>/<class>/<image>; for a flat folder give --labels FILE)` });
      continue;
    }
    if (!classOf.has(folder)) {
      let i: number | undefined;
      const mapped = map?.get(folder);
      if (mapped !== undefined) {
        i = resolveLabel(mapped, space);
        if (i === undefined) throw unknownLabels([mapped], space, `--label-map ${opts.labelMapFile}`);
        matched.byMap++;
      } else if ((i = resolveLabel(folder, space, { allowIndex: false })) !== undefined) {
        if (/^n\d{8}$/.test(folder) && space.id2label[i] !== folder) matched.bySynset++;
        else matched.byName++;
      } else unmatched.push(folder);
      classOf.set(folder, i);
    }
    const i = classOf.get(folder);
    if (i !== undefined) labels.set(file, i);
  }
  if (unmatched.length) {
    const shown = unmatched.slice(0, 5).map((f) => JSON.stringify(printable(f))).join(", ");
    throw new PerceiverError(
      "INPUT_INVALID",
      `${unmatched.length} class folder${unmatched.length > 1 ? "s" : ""} (${shown}${unmatched.length > 5 ? ", …" : ""}) match no label of the model: `
        + `a folder name must be an id2label label exactly, an ImageNet synset id (1000-class models), or mapped by --label-map FILE`,
    );
  }
  return { labels, missing, layout: "imagefolder", matched };
}

function unknownLabels(labels: string[], space: LabelSpace, where: string): PerceiverError {
  const shown = labels.slice(0, 5).map((l) => JSON.stringify(printable(l))).join(", ");
  return new PerceiverError(
    "INPUT_INVALID",
    `${where}: ${labels.length} label${labels.length > 1 ? "s" : ""} (${shown}${labels.length > 5 ? ", …" : ""}) name no class of the model `
      + `(a label is an id2label name, a synset id for 1000-class models, or an index from 0 to ${space.numLabels - 1})`,
  );
}
