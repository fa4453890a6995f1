/** A stratified, seeded train/validation split: each class keeps its share of the held-out fraction. */
import { Rng } from "./rng.js";

/**
 * labels[i] is example i's class -> indices of the training and validation examples (each sorted). Per class,
 * round(fraction·count) examples are held out, at least 1 when fraction > 0 and the class has 2 or more, and never
 * all of them. fraction 0 holds out nothing.
 */
export function stratifiedSplit(labels: readonly number[], fraction: number, seed: number): { train: number[]; val: number[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => {
    const list = byClass.get(y);
    if (list) list.push(i);
    else byClass.set(y, [i]);
  });
  const rng = new Rng(seed);
  const train: number[] = [], val: number[] = [];
  for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = rng.shuffle(byClass.get(y)!.slice());
    let k = Math.round(fraction * idx.length);
    if (fraction > 0 && idx.length >= 2) k = Math.max(k, 1);
    k = Math.min(k, idx.length - 1);
    val.push(...idx.slice(0, Math.max(k, 0)));
    train.push(...idx.slice(Math.max(k, 0)));
  }
  return { train: train.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}
