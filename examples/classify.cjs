// The README's library example from CommonJS (require() of the ES module package: Node >= 20.19 / 22.12):
//   node examples/classify.cjs [model (repo id | folder | file)] [image]
const { PerceiverForImageClassification, preprocessBatch, topK } = require("perceiver-ts");
const { loadImageFile } = require("perceiver-ts/node");

async function main() {
  const [modelSpec = "deepmind/vision-perceiver-conv", image = "samples/cat.png"] = process.argv.slice(2);
  const model = await PerceiverForImageClassification.fromPretrained(modelSpec);
  const pixels = preprocessBatch([await loadImageFile(image)]); // Tensor [1, 3, 224, 224]
  const { logits } = await model.forward(pixels); // Tensor [1, numLabels]
  for (const p of topK(logits.data, 5, model.config.id2label)) console.log(`${p.score.toFixed(4)}  ${p.label}`);
}
main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
