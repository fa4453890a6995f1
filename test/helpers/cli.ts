/** Run the perceiver CLI as a subprocess (from source through tsx, or the built dist/). */
import { spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; built?: boolean; timeoutMs?: number } = {}): Promise<CliResult> {
  const cmd = opts.built
    ? [process.execPath, join(ROOT, "dist/cli/main.js")]
    : [process.execPath, "--import", "tsx", join(ROOT, "src/cli/main.ts")];
  return new Promise((res, rej) => {
    const child = spawn(cmd[0], [...cmd.slice(1), ...args], {
      cwd: ROOT,
      env: { ...process.env, HF_HUB_OFFLINE: undefined, HF_ENDPOINT: undefined, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", rej);
    child.on("close", (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}
