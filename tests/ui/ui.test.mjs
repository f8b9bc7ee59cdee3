// Perch's web UI in a real browser (Debian's Chromium, driven by playwright-core) against
// the real `perch serve` with the SmolLM2 test model, started by
// crates/cli/tests/ui_e2e.rs. Each step asserts what a person would see, and what the
// server did; screenshots go to $SCREENSHOTS for people to look at.
//
// Environment: PERCH_URL (the server's root), MODEL (the test model's name), PULL_NAME (a
// model the hub look-alike at HUB_URL serves, slowly), SCREENSHOTS (a folder).
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const root = process.env.PERCH_URL;
const model = process.env.MODEL;
const pullName = process.env.PULL_NAME;
const hub = process.env.HUB_URL;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.PERCH_CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

async function api(path, init) {
  const response = await fetch(root + path, init);
  const text = await response.text();
  assert.ok(response.ok, `${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function until(what, check, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function cancelledRequests() {
  const text = await (await fetch(root + "/metrics")).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("perch_requests_cancelled_total"))
    .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}

let failures = 0;
async function step(name, body) {
  try {
    await body();
    console.log(`ok - ${name}`);
  } catch (e) {
    failures += 1;
    console.log(`not ok - ${name}\n${e.stack}`);
  }
}

const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
page.on("pageerror", (e) => {
  failures += 1;
  console.log(`not ok - the page threw: ${e.stack}`);
});

await step("the models page shows the model with the planner's verdict", async () => {
  await page.goto(root + "/#/models");
  const row = page.locator(`[data-testid=model-row][data-model="${model}"]`);
  await row.waitFor();
  const verdict = await row.getByTestId("verdict").innerText();
  assert.match(verdict, /fits/i);
  const catalogVerdict = await page.getByTestId("catalog-row").first().getByTestId("verdict").innerText();
  assert.match(catalogVerdict, /fits|short by/i);
  await page.screenshot({ path: `${shots}/models-1280.png`, fullPage: false });
});

await step("the gauge moves when a model is unloaded and loaded again", async () => {
  const headroom = page.getByTestId("gauge-headroom");
  await until("a memory reading", async () => /free/.test(await headroom.innerText()));
  const before = await headroom.innerText();
  const row = page.locator(`[data-testid=model-row][data-model="${model}"]`);
  await row.getByTestId("unload").click();
  await until("the headroom to grow", async () => (await headroom.innerText()) !== before);
  await until("the model to show unloaded", async () => (await row.getByTestId("load").count()) > 0);
  const loaded = (await api("/api/perch/models")).models.find((m) => m.name === model).loaded;
  assert.equal(loaded, false, "the server unloaded it");
  await row.getByTestId("load").click();
  await until("the headroom to shrink back", async () => (await headroom.innerText()) === before, 60);
  await row.getByTestId("unload").waitFor();
});

await step("a download from the hub shows progress and can be cancelled", async () => {
  const slow = await fetch(hub + "/_control", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ rate: 1_000_000 }),
  });
  assert.ok(slow.ok, "the look-alike takes the rate");
  await page.getByTestId("pull-input").fill(pullName);
  await page.getByTestId("pull-submit").click();
  const progress = page.getByTestId("download-progress").first();
  await progress.waitFor();
  await until("bytes, a rate and time left", async () => /%.*\/s.*left/s.test(await progress.innerText()));
  await page.screenshot({ path: `${shots}/download-1280.png`, fullPage: false });
  await progress.getByTestId("cancel-download").click();
  const stage = await until("the server to stop the download", async () => {
    const all = await api("/api/perch/downloads");
    const d = all.find((x) => x.name === pullName);
    return d && d.stage !== "downloading" && d.stage !== "resolving" ? d.stage : null;
  });
  assert.equal(stage, "cancelled");
  await until("the progress bar to go", async () => (await page.getByTestId("download-progress").count()) === 0);
  const local = (await api("/api/perch/models")).models.map((m) => m.name);
  assert.ok(!local.includes(pullName), "a cancelled model never enters the store");
});

await step("a chat message streams an answer that renders, with its numbers", async () => {
  await page.goto(root + "/#/chat");
  await page.getByTestId("model-picker").selectOption(model);
  await page.getByTestId("prompt").fill("Say hello in one short sentence.");
  await page.getByTestId("send").click();
  const answer = page.getByTestId("answer").last();
  const stats = answer.getByTestId("answer-stats");
  await stats.waitFor({ timeout: 120_000 });
  assert.match(await stats.innerText(), /tokens\/s/);
  assert.match(await stats.innerText(), /first token/);
  const text = await answer.locator(".markdown").innerText();
  assert.ok(text.trim().length > 0, "the answer has text");
  await page.screenshot({ path: `${shots}/chat-1280.png`, fullPage: false });
});

await step("regenerate asks again and replaces the answer", async () => {
  const answers = await page.getByTestId("answer").count();
  const asked = page.waitForRequest((r) => r.url().endsWith("/api/chat") && r.method() === "POST");
  await page.getByTestId("regenerate").click();
  const request = await asked;
  assert.equal(request.postDataJSON().messages.at(-1).role, "user", "the question is asked again, without the old answer");
  const answer = page.getByTestId("answer").last();
  await until("the old answer to go", async () => (await answer.getByTestId("answer-stats").count()) === 0, 30);
  await answer.getByTestId("answer-stats").waitFor({ timeout: 120_000 });
  assert.equal(await page.getByTestId("answer").count(), answers, "the last answer is replaced");
});

await step("stop ends a generation on the server", async () => {
  const before = await cancelledRequests();
  await page.getByTestId("prompt").fill("Tell me a very long story about a lighthouse keeper, in many chapters.");
  await page.getByTestId("send").click();
  const answer = page.getByTestId("answer").last();
  await until("the answer to start", async () => (await answer.locator(".markdown").count()) > 0, 60);
  await page.getByTestId("stop").click();
  await until("the server to count a cancelled request", async () => (await cancelledRequests()) > before);
  await until("the answer to say it stopped", async () => /stopped/.test(await answer.innerText()));
});

await step("a settings change takes effect", async () => {
  await page.goto(root + "/#/settings");
  const keepAlive = page.getByTestId("keep-alive");
  await keepAlive.fill("7m");
  await page.getByTestId("save-settings").click();
  await until("the server to keep the new keep-alive", async () => (await api("/api/perch/settings")).keep_alive === "7m");
  await keepAlive.fill("soon");
  await page.getByTestId("save-settings").click();
  await until("the refusal to show", async () => /keep_alive/.test(await page.locator("main").innerText()));
  assert.equal((await api("/api/perch/settings")).keep_alive, "7m", "a bad value changes nothing");
  await keepAlive.fill("7m");
  await page.getByTestId("parallel").fill("2");
  await page.getByTestId("save-settings").click();
  await until("the server to answer two requests at once", async () => (await api("/api/perch/settings")).parallel === 2);
  await page.screenshot({ path: `${shots}/settings-1280.png`, fullPage: false });
});

await step("an API key is created once, listed by prefix and revoked", async () => {
  await page.getByTestId("key-name").fill("laptop");
  await page.getByTestId("create-key").click();
  const shown = (await page.getByTestId("new-key").innerText()).match(/perch-[0-9a-f]{40}/)[0];
  // As another machine, through a proxy: only then is a key asked for.
  const fromElsewhere = (key) =>
    fetch(root + "/v1/models", {
      headers: { "x-forwarded-for": "192.0.2.7", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    });
  assert.equal((await fromElsewhere(shown)).status, 200, "the key shown works");
  assert.equal((await fromElsewhere(null)).status, 401, "and is needed");
  const keys = (await api("/api/perch/keys")).keys;
  const made = keys.find((k) => k.name === "laptop");
  assert.ok(made && shown.startsWith(made.prefix.replace("…", "")));
  const row = page.locator("[data-testid=key-row]", { hasText: "laptop" });
  page.once("dialog", (d) => d.accept());
  await row.getByTestId("revoke-key").click();
  await until("the key to be revoked", async () => !(await api("/api/perch/keys")).keys.some((k) => k.name === "laptop"));
  assert.equal((await fromElsewhere(shown)).status, 401, "a revoked key no longer works");
});

await step("a Hugging Face token is kept, never shown back, and forgotten", async () => {
  assert.equal((await api("/api/perch/settings")).hub_token, false);
  await page.getByTestId("hub-token-input").fill("hf_perchtesttoken");
  await page.getByTestId("save-hub-token").click();
  await until("the server to have a token", async () => (await api("/api/perch/settings")).hub_token);
  await until("the page to say so", async () => /token is set/.test(await page.getByTestId("hub-token-status").innerText()));
  assert.equal(await page.getByTestId("hub-token-input").inputValue(), "", "the field is cleared");
  assert.ok(!(await page.content()).includes("hf_perchtesttoken"), "the token is not on the page");
  await page.getByTestId("clear-hub-token").click();
  await until("the token to be forgotten", async () => !(await api("/api/perch/settings")).hub_token);
});

await step("every page works at 400 px, with no sideways scrolling", async () => {
  await page.setViewportSize({ width: 400, height: 760 });
  for (const name of ["models", "chat", "settings"]) {
    await page.goto(`${root}/#/${name}`);
    await page.getByTestId("gauge").waitFor();
    await page.waitForTimeout(300);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 400, `#/${name} is ${wide} px wide`);
    await page.screenshot({ path: `${shots}/${name}-400.png`, fullPage: false });
  }
});

await step("the keyboard reaches the navigation and the prompt", async () => {
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.goto(root + "/#/chat");
  await page.getByTestId("prompt").waitFor();
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.getAttribute("data-testid") === "prompt");
  }
  assert.ok(reached, "Tab reaches the prompt");
});

await browser.close();
console.log(failures === 0 ? "all passed" : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
