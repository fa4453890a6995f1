/**
 * The ImageFolder layout (torchvision's convention), as train-head reads it and eval labels it:
 * <root>/<class folder>/.../<image>. The class of an image is the first folder below the root on its path; the
 * images are what a directory input contributes (inputs.ts: a known image extension or PNG/JPEG magic bytes,
 * names starting with "." skipped, links followed, code-unit order). train-head indexes the classes by their
 * folder names in the same order.
 */
import { readdir, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, sep } from "node:path";
import { PerceiverError } from "../../errors.js";
import { compareCodeUnits, imageFilesUnder } from "./inputs.js";

/** The path of `file` below the root among `roots` that holds it most closely, "/"-separated; null under none. */
export function pathUnderRoot(file: string, roots: readonly string[]): string | null {
  let best: string | null = null;
  for (const r of roots) {
    const rel = relative(r, file);
    if (rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) && (best === null || rel.length < best.length)) best = rel;
  }
  return best === null ? null : best.split(sep).join("/");
}

/**
 * The class folder of `file`: the first folder below its root among `roots`, or for a file under no root (a file
 * or pattern given directly) the name of the folder it is in; null for a file directly in a root.
 */
export function classFolderOf(file: string, roots: readonly string[]): string | null {
  const rel = pathUnderRoot(file, roots);
  const folder = rel === null ? basename(dirname(file)) : rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : null;
  return folder === null || folder === "" || folder === "." ? null : folder;
}

export interface FolderImage {
  /** path as found (the root joined with the path below it) */
  path: string;
  /** path relative to the root, "/"-separated */
  relPath: string;
  label: number;
}

export interface ImageFolder {
  root: string;
  classes: string[];
  /** grouped by class in class order, each class's images in walk order */
  images: FolderImage[];
}

/** Most images read from one dataset (a guard against pointing at a whole disk). */
export const MAX_DATASET_IMAGES = 1_000_000;

/**
 * Reads the class folders of `root` (its sub-folders, hidden ones skipped; an image directly in the root belongs to
 * no class and is left out). `classes` (from the training set) fixes the label indices of a validation folder,
 * whose classes must be among them. Errors (INPUT_INVALID): not a folder, no class folders, a class folder without
 * images, a validation class the training set does not have, more than MAX_DATASET_IMAGES images.
 */
export async function readImageFolder(root: string, classes?: readonly string[]): Promise<ImageFolder> {
  let st;
  try {
    st = await stat(root);
  } catch (e) {
    throw new PerceiverError("INPUT_INVALID", `${root}: no such folder`, { cause: e });
  }
  if (!st.isDirectory()) throw new PerceiverError("INPUT_INVALID", `${root} is not a folder (expected one sub-folder of images per class)`);
  const found: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true })) {
    if (e.name.startsWith(".")) continue;
    // a linked class folder counts, as the walk follows links
    const isDir = e.isDirectory() || (e.isSymbolicLink() && ((await stat(join(root, e.name)).catch(() => null))?.isDirectory() ?? false));
    if (isDir) found.push(e.name);
  }
  found.sort(compareCodeUnits);
  if (found.length === 0) {
    throw new PerceiverError("INPUT_INVALID", `${root} has no class folders: put each class's images in a sub-folder named after the class (e.g. ${join(root, "cat")}/*.jpg)`);
  }
  const names = classes ? [...classes] : found;
  if (classes) {
    const unknown = found.filter((c) => !classes.includes(c));
    if (unknown.length) throw new PerceiverError("INPUT_INVALID", `${root}: classes not in the training set: ${unknown.join(", ")}`);
  }
  const byClass = new Map<string, string[]>(found.map((c) => [c, []]));
  for (const f of await imageFilesUnder(root, { max: MAX_DATASET_IMAGES })) {
    const c = classFolderOf(f, [root]);
    if (c !== null) byClass.get(c)?.push(f);
  }
  const images: FolderImage[] = [];
  const empty: string[] = [];
  for (const c of found) {
    const files = byClass.get(c)!;
    if (files.length === 0) empty.push(c);
    const label = names.indexOf(c);
    for (const f of files) images.push({ path: f, relPath: pathUnderRoot(f, [root])!, label });
  }
  if (empty.length) throw new PerceiverError("INPUT_INVALID", `${root}: class folders without images: ${empty.join(", ")}`);
  return { root, classes: names, images };
}
