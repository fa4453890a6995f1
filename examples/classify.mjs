// The README's library example as a plain ES module (Node):
//   node examples/classify.mjs [model (repo id | folder | file)] [image]
import { PerceiverForImageClassification, preprocessBatch, topK } from "perceiver-ts";
import { loadImageFile } from "perceiver-ts/node";

const [modelSpec = "deepmind/vision-perceiver-conv", image = "samples/cat.png"] = process.argv.slice(2);
const model = await PerceiverForImageClassification.fromPretrained(modelSpec);
const pixels = preprocessBatch([await loadImageFile(image)]); // Tensor [1, 3, 224, 224]
const { logits } = await model.forward(pixels); // Tensor [1, numLabels]
for (const p of topK(logits.data, 5, model.config.id2label)) console.log(`${p.score.toFixed(4)}  ${p.label}`);
