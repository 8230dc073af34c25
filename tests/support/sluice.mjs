// Starts the real sluice binary for the Node test suites (tests/sdk/ts,
// tests/clients/ts): $SLUICE_BIN, else target/release/sluice, else
// target/debug/sluice, on a free port; every process started is killed when
// the test file ends.
import { after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const binary =
  process.env.SLUICE_BIN ??
  ["release", "debug"].map((p) => join(root, "target", p, "sluice")).find(existsSync);

const running = [];
after(() => running.forEach((child) => child.kill("SIGTERM")));

/** Starts sluice with `config`; resolves to its base URL once the banner names it. */
export async function startSluice(config) {
  return (await startSluiceWithAdmin(config)).url;
}

/**
 * Starts sluice with `config`; resolves to `{ url, admin }` from the file its
 * `--ready-file` flag writes once both ports are bound (docs/testing.md,
 * "Starting sluice from a script").
 */
export async function startSluiceWithAdmin(config) {
  assert.ok(binary, "no sluice binary: run `cargo build --release` or set SLUICE_BIN");
  const work = mkdtempSync(join(tmpdir(), "sluice-"));
  const file = join(work, "sluice.toml");
  const ready = join(work, "ready.json");
  writeFileSync(file, config);
  const { PORT, ERROR_RATE, SLUICE_CONFIG, SLUICE_READY_FILE, ...env } = process.env;
  const args = ["mock", "--config", file, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"];
  const child = spawn(binary, [...args, "--ready-file", ready], { env, stdio: "ignore" });
  running.push(child);
  const deadline = Date.now() + 10_000;
  while (!existsSync(ready)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("sluice exited or was not ready within 10 s");
    }
    await new Promise((done) => setTimeout(done, 10));
  }
  const { api, admin } = JSON.parse(readFileSync(ready, "utf8"));
  return { url: api, admin };
}
