// Starts the real sluice binary for the Node test suites (tests/sdk/ts,
// tests/clients/ts): $SLUICE_BIN, else target/release/sluice, else
// target/debug/sluice, on a free port; every process started is killed when
// the test file ends.
import { after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

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

/** Starts sluice with `config`; resolves to `{ url, admin }` once the banner names both. */
export async function startSluiceWithAdmin(config) {
  assert.ok(binary, "no sluice binary: run `cargo build --release` or set SLUICE_BIN");
  const file = join(mkdtempSync(join(tmpdir(), "sluice-")), "sluice.toml");
  writeFileSync(file, config);
  const { PORT, ERROR_RATE, SLUICE_CONFIG, ...env } = process.env;
  const child = spawn(binary, ["mock", "--config", file, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"], {
    env,
    stdio: ["ignore", "pipe", "ignore"],
  });
  running.push(child);
  const lines = createInterface({ input: child.stdout });
  const timeout = setTimeout(() => child.kill("SIGKILL"), 10_000);
  let url;
  try {
    for await (const line of lines) {
      const match = line.match(/running on (https?:\/\/127\.0\.0\.1:\d+)/);
      if (match) url = match[1];
      const admin = line.match(/Admin: (http:\/\/127\.0\.0\.1:\d+)/);
      if (url && admin) return { url, admin: admin[1] };
    }
  } finally {
    clearTimeout(timeout);
  }
  throw new Error("sluice exited without printing its address");
}
