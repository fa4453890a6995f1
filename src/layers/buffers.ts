/**
 * The working buffers of a PerceiverLayer (its layer norms, attention and MLP). Layers that run one after another
 * share one LayerBuffers (the model shares one across all its layers), so each buffer is as large as its largest
 * use; contents do not survive from one layer call to the next. Shapes below: B images, Tq query tokens (latents),
 * Tkv key/value tokens (inputs), per layer.
 */
export class LayerBuffers {
  /** LN1(hidden), then LN(attention output): [B·Tq, qDim] */
  readonly normed = new GrowingBuffer();
  /** LN2(inputs) of a cross-attention whose inputs may not be overwritten: [B·Tkv, kvDim] */
  readonly kv = new GrowingBuffer();
  /** the attention's output plus the query residual: [B·Tq, qDim] */
  readonly attnOut = new GrowingBuffer();
  /**
   * The attention's queries Q [B·Tq, qkChannels], then the MLP's hidden activations [B·Tq, widening·qDim]: one
   * buffer, because a layer's queries are dead once its attention has run, before its MLP starts.
   */
  readonly queriesThenMlpHidden = new GrowingBuffer();
  /** one image's keys K [Tkv, qkChannels] and values V [Tkv, vChannels] */
  readonly keys = new GrowingBuffer();
  readonly values = new GrowingBuffer();
  /** the heads' outputs side by side, before the output projection: [B·Tq, vChannels] */
  readonly context = new GrowingBuffer();
  /** one head's attention probabilities for a chunk of query rows: [chunk, Tkv] */
  readonly scores = new GrowingBuffer();

  /** Drops every buffer (e.g. after a large batch); they grow back on the next call. */
  clear(): void {
    for (const b of [this.normed, this.kv, this.attnOut, this.queriesThenMlpHidden, this.keys, this.values, this.context, this.scores]) {
      b.clear();
    }
  }
}

/** A float32 buffer that grows on demand and is reused across calls (allocate once, reuse). */
export class GrowingBuffer {
  private data = new Float32Array(0);

  /** A view of exactly `size` floats (the buffer grows if needed). Contents are unspecified. */
  take(size: number): Float32Array {
    if (this.data.length < size) this.data = new Float32Array(size);
    return this.data.length === size ? this.data : this.data.subarray(0, size);
  }

  clear(): void {
    this.data = new Float32Array(0);
  }
}
