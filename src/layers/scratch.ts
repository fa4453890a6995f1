/**
 * The attention's queries and the MLP's hidden activations share one buffer: a layer's queries are dead once its
 * attention has run, before its MLP starts (2 MB less per image for the ImageNet models).
 */
export const QUERIES_THEN_MLP_HIDDEN = "attn.q/mlp.hidden";

/** Named float32 buffers that grow on demand and are reused across calls (allocate once, reuse). */
export class Scratch {
  private readonly buffers = new Map<string, Float32Array>();

  /** A buffer of at least `size` floats (a view of exactly `size`). Contents are unspecified. */
  get(name: string, size: number): Float32Array {
    let b = this.buffers.get(name);
    if (!b || b.length < size) {
      b = new Float32Array(size);
      this.buffers.set(name, b);
    }
    return b.length === size ? b : b.subarray(0, size);
  }

  /** Drop all buffers (e.g. after a large batch). */
  clear(): void {
    this.buffers.clear();
  }
}
