/** The default model and hub repo ids, without the Node hub client (browser-safe). */

/** The hub repo of the default model, and the commit where its safetensors conversion lives (unmerged PR). */
export const DEFAULT_MODEL = "deepmind/vision-perceiver-conv";
export const SAFETENSORS_COMMIT = "9e887ddb738d7de3bb0dc357003fec3ab44af668";

/** `org/name` (not a checkpoint file name): what the hub accepts as a repo id. */
export function looksLikeRepoId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.endsWith(".safetensors") && !s.endsWith(".bin");
}
