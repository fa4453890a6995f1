/**
 * The pipeline API: labels for images given by path, URL or bytes, in one call.
 *   npx tsx examples/pipeline.ts [model (repo id | folder | file | URL)] [image (path | URL)...]
 * (imports the package by its own name, so run `npm run build` first)
 */
import { pipeline } from "perceiver-ts";

const [model = "deepmind/vision-perceiver-conv", ...images] = process.argv.slice(2);
const classify = await pipeline("image-classification", model, {
  progress_callback: (e) => {
    if (e.status === "done" && !e.cached) console.error(`downloaded ${e.file} (${e.total} bytes)`);
  },
});
const inputs = images.length > 0 ? images : ["samples/cat.png"];
const results = await classify(inputs, { topK: 3 }); // one list per image
inputs.forEach((image, i) => {
  console.log(image);
  for (const { label, score } of results[i]) console.log(`  ${score.toFixed(4)}  ${label}`);
});
await classify.dispose();
