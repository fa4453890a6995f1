/**
 * The ImageFolder layout for train-head (torchvision's convention): one sub-folder per class under the root,
 * classes sorted by name (index = position), images found recursively in each class folder, sorted by path.
 * Hidden entries (".name") are skipped; files are images by extension (.png, .jpg, .jpeg, any case).
 */
import { readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { PerceiverError } from "../errors.js";

export const IMAGE_EXTENSIONS = /\.(png|jpe?g)$/i;

export interface FolderImage {
  /** path as given (root joined with the relative path) */
  path: string;
  /** path relative to the root, "/"-separated */
  relPath: string;
  label: number;
}

export interface ImageFolder {
  root: string;
  classes: string[];
  images: FolderImage[];
}

/** Most images read from one dataset (a guard against pointing at a whole disk). */
export const MAX_DATASET_IMAGES = 1_000_000;

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => byCodePoint(a.name, b.name));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) await walk(p, out);
    else if ((e.isFile() || e.isSymbolicLink()) && IMAGE_EXTENSIONS.test(e.name)) out.push(p);
    if (out.length > MAX_DATASET_IMAGES) throw new PerceiverError("INPUT_INVALID", `${dir}: more than ${MAX_DATASET_IMAGES} images`);
  }
}

/**
 * Reads the class folders of `root`. `classes` (from the training set) fixes the label indices of a validation
 * folder, whose classes must be among them. Errors (INPUT_INVALID): not a folder, no class folders, a class
 * folder without images, a validation class the training set does not have.
 */
export async function readImageFolder(root: string, classes?: readonly string[]): Promise<ImageFolder> {
  let st;
  try {
    st = await stat(root);
  } catch (e) {
    throw new PerceiverError("INPUT_INVALID", `${root}: no such folder`, { cause: e });
  }
  if (!st.isDirectory()) throw new PerceiverError("INPUT_INVALID", `${root} is not a folder (expected one sub-folder of images per class)`);
  const found = (await readdir(root, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort(byCodePoint);
  if (found.length === 0) {
    throw new PerceiverError("INPUT_INVALID", `${root} has no class folders: put each class's images in a sub-folder named after the class (e.g. ${join(root, "cat")}/*.jpg)`);
  }
  const names = classes ? [...classes] : found;
  if (classes) {
    const unknown = found.filter((c) => !classes.includes(c));
    if (unknown.length) throw new PerceiverError("INPUT_INVALID", `${root}: classes not in the training set: ${unknown.join(", ")}`);
  }
  const images: FolderImage[] = [];
  const empty: string[] = [];
  for (const c of found) {
    const files: string[] = [];
    await walk(join(root, c), files);
    if (files.length === 0) empty.push(c);
    const label = names.indexOf(c);
    for (const f of files) images.push({ path: f, relPath: relative(root, f).split("\\").join("/"), label });
  }
  if (empty.length) throw new PerceiverError("INPUT_INVALID", `${root}: class folders without images (.png/.jpg/.jpeg): ${empty.join(", ")}`);
  return { root, classes: names, images };
}
