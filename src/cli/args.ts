/**
 * The one option parser of the CLI commands: node:util parseArgs (strict, typed values), with its errors turned into
 * one-line USAGE errors that name the command and the option, and, for an unknown option, the closest valid one
 * (`--topk` -> "did you mean --top-k?").
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { PerceiverError } from "../errors.js";

type Options = NonNullable<ParseArgsConfig["options"]>;
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>;

/**
 * Edit distance with insertions, deletions, substitutions and swaps of two neighbours, each 1 (the "optimal string
 * alignment" distance: `modle` is 1 from `model`), O(|a|·|b|) time and O(|b|) memory: cur[j] = d(a[0..i), b[0..j)),
 * from the two rows before (prev, prev2).
 */
export function editDistance(a: string, b: string): number {
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j], prev2[j - 2] + 1);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The valid option closest to `name` (both without dashes), or null when none is plausibly meant: the distance must
 * be at most a third of the longer name (at least 1), or one name must contain the other.
 * Ties go to the option listed first.
 */
export function closestOption(name: string, valid: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const v of valid) {
    const d = editDistance(name.toLowerCase(), v);
    const plausible = d <= Math.max(1, Math.floor(Math.max(name.length, v.length) / 3)) ||
      (name.length >= 3 && (v.includes(name) || name.includes(v)));
    if (plausible && d < bestD) {
      best = v;
      bestD = d;
    }
  }
  return best;
}

function usage(command: string, message: string): PerceiverError {
  return new PerceiverError("USAGE", `${command}: ${message} (see perceiver ${command} --help)`);
}

/**
 * Parses `args` for `perceiver <command>` against `options` (parseArgs' option table; positionals allowed).
 * Checks every option token first (unknown names, a string option without its value, a value given to a switch),
 * so each mistake gets its own one-line message; then parseArgs builds the typed values.
 */
export function parseCommandArgs<O extends Options>(command: string, args: string[], options: O): Parsed<O> {
  const names = Object.keys(options);
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens ?? []) {
    if (t.kind !== "option") continue;
    const name = t.name; // the long name, also for a known short alias like -h
    if (!Object.hasOwn(options, name)) {
      const guess = t.rawName.startsWith("--") ? closestOption(t.name, names) : null;
      const hint = guess !== null ? `did you mean --${guess}?` : `valid options: ${names.map((n) => `--${n}`).join(", ")}`;
      throw usage(command, `unknown option ${t.rawName} (${hint})`);
    }
    const type = options[name].type;
    if (type === "string" && t.value === undefined) throw usage(command, `${t.rawName} needs a value`);
    if (type === "string" && !t.inlineValue && t.value!.startsWith("-") && t.value !== "-") {
      // parseArgs would call this "ambiguous": `--top-k --json` forgot the value, `--alpha -1` needs the = form
      // (a lone "-" is a value: stdin, as in `--files-from -`)
      throw usage(command, `${t.rawName} needs a value, got ${t.value} (for a value that starts with -, write ${t.rawName}=${t.value})`);
    }
    if (type === "boolean" && t.inlineValue) throw usage(command, `${t.rawName} is a switch and takes no value (got ${JSON.stringify(t.value)})`);
  }
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as Parsed<O>;
  } catch (e) {
    // anything the checks above did not foresee: parseArgs' own message, first sentence only
    throw usage(command, String((e as Error).message).split(/\.\s/)[0].replace(/\.$/, ""));
  }
}
