// The run report's page (docs/report.md, "The page") in a real browser:
// Debian's Chromium, headless, driven by playwright-core. A run with
// refusals, retries and a stream fault is reported; the page must render
// with no console error and nothing fetched, its plots must carry data, and
// its verdict table must say what the JSON says. A screenshot is written to
// $REPORT_SCREENSHOT when set (the README's picture).
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startSluiceWithAdmin } from "../support/sluice.mjs";

const CONFIG = `
seed = 3
first_token_delay = "20ms"
token_interval = "2ms"
tokens_per_response = 8
error_rate = 0.3

[[faults]]
kind = "http"
status = 429
retry_after = "200ms"
weight = 2

[[faults]]
kind = "stream_error"
after_tokens = 2
weight = 1
`;

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

async function call(url, key, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": key },
    body: JSON.stringify(body),
  });
  await response.text();
  return response;
}

test("the report page renders its plots and verdicts with no console error", async () => {
  const { url, admin } = await startSluiceWithAdmin(CONFIG);
  const run = await (await fetch(`${admin}/runs`, { method: "POST", body: '{"name":"browser"}' })).json();
  const message = { model: "m", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hi" }] };
  // Two clients: one waits its retry-after, one comes back at once.
  for (let round = 0; round < 20; round++) {
    for (const [key, patient] of [["patient", true], ["hasty", false]]) {
      const response = await call(`${url}/v1/messages`, key, message);
      if (response.status === 429 && patient) {
        await new Promise((done) => setTimeout(done, 220));
      }
    }
  }
  const report = await (await fetch(`${admin}/runs/${run.id}/end`, { method: "POST" })).json();
  const earlyCount = report.report.verdicts.find((v) => v.rule === "no_early_retries").count;

  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems = [];
    page.on("console", (entry) => entry.type() === "error" && problems.push(entry.text()));
    page.on("pageerror", (error) => problems.push(String(error)));
    const fetched = [];
    page.on("request", (request) => fetched.push(request.url()));
    const response = await page.goto(`${admin}/runs/${run.id}/report.html`);
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), `sluice run ${run.id} (browser)`);
    // Plots with data: bars over time, both histograms, each refusal.
    assert.ok((await page.locator("#over-time rect.series").count()) > 0, "bars over time");
    assert.equal(await page.locator("#over-time polyline.in-flight").count(), 1);
    assert.ok((await page.locator("#hist-ft rect.bucket").count()) > 0, "first-token histogram");
    assert.ok((await page.locator("#hist-gap rect.bucket").count()) > 0, "gap histogram");
    assert.ok((await page.locator("#retries circle.told").count()) > 0, "refusals");
    // Laid out: the plot has a size on screen.
    const box = await page.locator("#over-time").boundingBox();
    assert.ok(box.width > 500 && box.height > 50, JSON.stringify(box));
    // The verdict the JSON gives.
    const early = page.locator("#verdicts tr", { hasText: "no_early_retries" });
    assert.ok(earlyCount > 0, "the hasty client retried early");
    assert.equal(await early.locator("td").nth(1).textContent(), "FAIL");
    assert.equal(await early.locator("td").nth(2).textContent(), String(earlyCount));
    assert.deepEqual(problems, []);
    assert.deepEqual(fetched, [`${admin}/runs/${run.id}/report.html`], "nothing but the page");
    if (process.env.REPORT_SCREENSHOT) {
      await page.screenshot({ path: process.env.REPORT_SCREENSHOT, fullPage: true });
    }
  } finally {
    await browser.close();
  }
});
