#!/usr/bin/env node
/** The `perceiver` command line. */
import { readFileSync } from "node:fs";
import { PerceiverError } from "../errors.js";
import { ATTENTION_MAP_HELP, attentionMap } from "./attention-map.js";
import { classify, CLASSIFY_HELP } from "./classify.js";
import { printable } from "./common.js";
import { convert, CONVERT_HELP } from "./convert.js";
import { embed, EMBED_HELP } from "./embed.js";
import { evaluate, EVAL_HELP } from "./eval.js";
import { trainHead } from "./train-head.js";

const HELP = `Usage: perceiver <command> [options]

Perceiver IO image classification in pure TypeScript (Hugging Face deepmind/vision-perceiver-* checkpoints).

Commands:
  classify <image|dir|glob...>             top-k ImageNet labels for PNG/JPEG images
  attention-map <image>                    PNG heat maps of the model's cross-attention over the image
  embed <image|dir|glob...>                image feature vectors (pooled latents), as text or JSON
  eval <dir...>                            top-1/top-5 accuracy on a labelled folder (ImageFolder or --labels)
  convert <pytorch_model.bin> <out.safetensors>   convert a PyTorch checkpoint safely
  train-head <dir> --out <outdir>          train a new classifier head on a folder of labelled images

Options:
  -h, --help       show help (also: perceiver <command> --help)
  -v, --version    print the version

Examples:
  perceiver classify samples/cat.png --top-k 3
  perceiver attention-map samples/cat.png --out cat-attention.png`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Runs the CLI; returns the exit code: 0 ok, 1 failure, 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "-h":
      case "--help":
      case "help":
        console.log(HELP);
        return command === undefined ? 2 : 0;
      case "-v":
      case "--version":
        console.log(version());
        return 0;
      case "classify":
        return await classify(rest);
      case "attention-map":
        return await attentionMap(rest);
      case "embed":
        return await embed(rest);
      case "convert":
        return await convert(rest);
      case "eval":
        return await evaluate(rest);
      case "train-head":
        return await trainHead(rest);
      default:
        throw new PerceiverError("USAGE", `unknown command ${JSON.stringify(command)} (commands: classify, attention-map, embed, eval, convert, train-head; see perceiver --help)`);
    }
  } catch (e) {
    const usage = (e instanceof PerceiverError && e.code === "USAGE") || (e as { code?: string })?.code?.startsWith("ERR_PARSE_ARGS");
    if (debug) console.error(e);
    // messages may quote names read from files: escape control characters so nothing reaches the terminal raw
    else if (e instanceof PerceiverError || usage) console.error(`perceiver: error: ${printable((e as Error).message, { keepNewlines: true })}`);
    else console.error(`perceiver: internal error: ${(e as Error)?.message ?? String(e)} (run with --debug for details)`);
    return usage ? 2 : 1;
  }
}

/**
 * When the reader of stdout or stderr goes away (`perceiver classify *.png --json | head -1`), the next write fails
 * with EPIPE (Node ignores SIGPIPE), emitted as an 'error' event that would crash with a stack trace. The reader
 * has what it wanted: stop at once, quietly, with exit code 0, like a Unix filter killed by SIGPIPE in a pipeline
 * that only looks at its last command. Any other output error is reported on the stream that still works.
 */
export function exitQuietlyOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0);
      const other = stream === process.stdout ? process.stderr : process.stdout;
      other.write(`perceiver: error: cannot write output: ${e.message}\n`);
      process.exit(1);
    });
  }
}

// run when executed directly (bin or tsx), not when imported by tests
const invoked = process.argv[1] ?? "";
if (/(^|[\\/])(main\.(ts|js)|perceiver)$/.test(invoked)) {
  exitQuietlyOnBrokenPipe();
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

export { ATTENTION_MAP_HELP, CLASSIFY_HELP, CONVERT_HELP, EMBED_HELP, EVAL_HELP, HELP };
