/**
 * Structure-aware config.json / preprocessor_config.json edits: a value replaced (huge, negative, float, wrong
 * type), a key removed, added or renamed, id2label entries dropped or re-indexed; the text is written back compact
 * or pretty.
 */
import { bitFlip, type Mutator } from "./mutators.js";
import { interestingValue, JsonObj, nearbyNumber, nodeText, parseNode, removeSlot, setSlot, slots, slotValue } from "./json-edit.js";

/** Keys of config.json and preprocessor_config.json the parsers read. */
const KNOWN_KEYS = [
  "architectures", "model_type", "num_latents", "d_latents", "d_model", "num_blocks", "num_self_attends_per_block",
  "num_self_attention_heads", "num_cross_attention_heads", "qk_channels", "v_channels",
  "cross_attention_shape_for_attention", "self_attention_widening_factor", "cross_attention_widening_factor",
  "hidden_act", "use_query_residual", "layer_norm_eps", "image_size", "num_labels", "id2label",
  "do_center_crop", "crop_size", "do_resize", "size", "resample", "do_rescale", "rescale_factor", "do_normalize",
  "image_mean", "image_std",
];

const ARCHS = [
  "PerceiverForImageClassificationConvProcessing", "PerceiverForImageClassificationFourier",
  "PerceiverForImageClassificationLearned", "PerceiverForMaskedLM", "",
];

export const mutateJson: Mutator = (input, rng, others) => {
  const root = parseNode(new TextDecoder().decode(input));
  if (root === undefined) return bitFlip(input, rng, others);
  const all = slots(root);
  const obj = root instanceof JsonObj ? root : null;
  switch (rng.int(7)) {
    case 0:
    case 1: { // a value: nearby number (same type) or interesting
      if (all.length === 0) break;
      const s = rng.pick(all);
      const v = slotValue(s);
      setSlot(s, typeof v === "number" && rng.chance(0.6) ? nearbyNumber(v, rng) : interestingValue(rng));
      break;
    }
    case 2: // remove a key or element
      if (all.length > 0) removeSlot(rng.pick(all));
      break;
    case 3: // add or duplicate a known key
      if (obj) obj.entries.push([rng.pick(KNOWN_KEYS), interestingValue(rng)]);
      break;
    case 4: { // id2label: drop an entry, add one out of range, or re-key one
      const labels = obj?.get("id2label");
      if (!(labels instanceof JsonObj) || labels.entries.length === 0) break;
      const r = rng.int(3);
      if (r === 0) labels.entries.splice(rng.int(labels.entries.length), 1);
      else if (r === 1) labels.entries.push([String(labels.entries.length + rng.range(0, 5)), "extra"]);
      else labels.entries[rng.int(labels.entries.length)][0] = rng.pick(["-1", "01", "1.5", "", "x", "1e2", "4294967296", "0"]);
      break;
    }
    case 5: // architectures / model_type
      if (obj) {
        const r = rng.int(3);
        const key = r === 2 ? "model_type" : "architectures";
        const e = obj.entries.find(([k]) => k === key);
        const v = r === 0 ? [rng.pick(ARCHS)] : r === 1 ? [rng.pick(ARCHS), rng.pick(ARCHS)] : rng.pick(["perceiver", "bert", ""]);
        if (e) e[1] = v;
        else obj.entries.push([key, v]);
      }
      break;
    default: // the same key twice with different values (JSON.parse keeps the last)
      if (obj && obj.entries.length > 0) {
        const [k] = rng.pick(obj.entries);
        obj.entries.push([k, interestingValue(rng)]);
      }
  }
  return new TextEncoder().encode(nodeText(root, rng.chance(0.5)));
};
