// browser.test.mjs — the serve page in a real browser: Debian's chromium driven by playwright-core,
// with a fake camera playing a clip this test writes. Checks that generated frames arrive, that they
// change when the prompt changes, that two pages at once each get their own prompt's frames, that a
// page beyond --max-sessions shows the queue, and txt2img; saves screenshots for a person to look at.
// Run by ctest (test_serve_browser) or: SD_BIN=build/sdstream node --test tests/web/browser.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const bin = process.env.SD_BIN || path.join(root, "build/sdstream");
const ref = process.env.SD_REFERENCE_DIR || path.resolve(root, "../shared/reference");
const out = process.env.SD_BROWSER_OUT || path.join(root, "build/test-tmp/browser");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

// A static 4:3 clip (YUV4MPEG2, 4:2:0): a sky gradient, a sun and a hill. Static frames give
// identical generated frames, so a change of output can only come from the prompt.
function writeClip(file, w = 160, h = 120, frames = 10) {
  const y = Buffer.alloc(w * h), u = Buffer.alloc((w / 2) * (h / 2)), v = Buffer.alloc((w / 2) * (h / 2));
  for (let j = 0; j < h; j++)
    for (let i = 0; i < w; i++) {
      const sun = (i - 110) ** 2 + (j - 35) ** 2 < 300, hill = j > 80 + 15 * Math.sin(i / 20);
      y[j * w + i] = sun ? 220 : hill ? 90 : 150 - j / 2;
    }
  for (let j = 0; j < h / 2; j++)
    for (let i = 0; i < w / 2; i++) {
      const hill = 2 * j > 80 + 15 * Math.sin((2 * i) / 20), sun = (2 * i - 110) ** 2 + (2 * j - 35) ** 2 < 300;
      u[j * (w / 2) + i] = sun ? 40 : hill ? 100 : 170;
      v[j * (w / 2) + i] = sun ? 170 : hill ? 90 : 110;
    }
  const parts = [Buffer.from(`YUV4MPEG2 W${w} H${h} F10:1 Ip A1:1 C420jpeg\n`)];
  for (let f = 0; f < frames; f++) parts.push(Buffer.from("FRAME\n"), y, u, v);
  writeFileSync(file, Buffer.concat(parts));
}

function startServer(extra) {
  const args = ["serve", "--model", path.join(ref, "models/tiny-sd15"), "--taesd", path.join(ref, "models/taesd"),
                "--port", "0", "--width", "64", "--height", "64", "--strength", "0.5", "--cfg-type", "none",
                "--prompt", "a red apple", ...extra];
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stderr.on("data", (d) => { log += d; });
  const url = new Promise((resolve, reject) => {
    proc.stdout.on("data", (d) => {
      const m = /http:\/\/[\d.]+:(\d+)/.exec(String(d));
      if (m) resolve(`http://127.0.0.1:${m[1]}/`);
    });
    proc.on("exit", (code) => reject(new Error(`serve exited ${code}: ${log}`)));
    setTimeout(() => reject(new Error(`serve did not start in 30 s: ${log}`)), 30000);
  });
  return { proc, url, log: () => log };
}

const frameHash = (page) => page.evaluate(() => window.sdstream.lastFrame && Array.from(window.sdstream.lastFrame))
  .then((bytes) => (bytes ? createHash("sha256").update(Buffer.from(bytes)).digest("hex") : null));
const framesOut = (page) => page.evaluate(() => window.sdstream.framesOut);

// Waits until the page shows the same generated frame `n` times in a row after at least `after`
// frames: the stream has settled on the current prompt.
async function stableFrame(page, after, n = 3, timeout = 30000) {
  const end = Date.now() + timeout;
  let last = null, same = 0, seen = await framesOut(page);
  while (Date.now() < end) {
    const count = await framesOut(page);
    if (count > seen) {
      seen = count;
      const h = await frameHash(page);
      same = h === last ? same + 1 : 1;
      last = h;
      if (count >= after && same >= n) return h;
    }
    await page.waitForTimeout(50);
  }
  throw new Error(`no stable frame within ${timeout} ms (${seen} frames)`);
}

async function setPrompt(page, text) {
  await page.fill("#prompt", text);
  await page.waitForTimeout(300);  // the page debounces config messages by 150 ms
}

test("serve page in chromium: frames, prompt changes, two pages, queue, txt2img", { timeout: 240000 }, async () => {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} missing: apt-get install chromium (.ci/run does)`);
  assert.ok(existsSync(bin), `${bin} missing: build first`);
  mkdirSync(out, { recursive: true });
  const clip = path.join(out, "clip.y4m");
  writeClip(clip);
  const server = startServer(["--max-sessions", "2", "--max-queue", "2"]);
  const url = await server.url;
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
           `--use-file-for-fake-video-capture=${clip}`, "--no-sandbox"],
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const a = await ctx.newPage();
    await a.goto(url);
    await a.waitForFunction(() => window.sdstream.status === "streaming");
    await a.click("#btn-camera");
    const apple = await stableFrame(a, 3);
    assert.ok(apple, "generated frames arrive");
    assert.notEqual(await a.textContent("#latency"), "–", "latency is shown");
    assert.notEqual(await a.textContent("#fps"), "–", "fps is shown");
    await a.screenshot({ path: path.join(out, "page-img2img.png") });

    await setPrompt(a, "a blue sea at night");
    const sea = await stableFrame(a, (await framesOut(a)) + 3);
    assert.notEqual(sea, apple, "the frames change when the prompt changes");

    // a second page at once, on the server's default prompt: it gets the apple frames, the first
    // page keeps getting the sea
    const b = await ctx.newPage();
    await b.goto(url);
    await b.waitForFunction(() => window.sdstream.status === "streaming");
    await b.click("#btn-camera");
    const [bFrame, aFrame] = await Promise.all([stableFrame(b, 3), stableFrame(a, (await framesOut(a)) + 3)]);
    assert.equal(bFrame, apple, "the second page gets its own prompt's frames");
    assert.equal(aFrame, sea, "the first page still gets its prompt's frames while the second streams");
    await b.screenshot({ path: path.join(out, "page-second-session.png") });

    // a third page waits in the queue with a clear message, and streams once a slot frees
    const c = await ctx.newPage();
    await c.goto(url);
    await c.waitForFunction(() => window.sdstream.status === "waiting");
    const notice = await c.textContent("#notice");
    assert.match(notice, /Server busy: you are number 1 in the queue/);
    await c.screenshot({ path: path.join(out, "page-queued.png") });
    await b.close();
    await c.waitForFunction(() => window.sdstream.status === "streaming", null, { timeout: 10000 });

    // txt2img: prompt -> images
    await c.check("input[name=mode][value=txt2img]");
    await setPrompt(c, "a lighthouse");
    await c.waitForFunction(() => window.sdstream.framesOut >= 1, null, { timeout: 20000 });
    const t1 = await frameHash(c);
    await c.check("#continuous");
    await c.waitForFunction(() => window.sdstream.framesOut >= 4, null, { timeout: 20000 });
    assert.notEqual(await frameHash(c), t1, "txt2img keeps making new images");
    await c.screenshot({ path: path.join(out, "page-txt2img.png") });
    assert.deepEqual(await a.evaluate(() => window.sdstream.errors), [], "no errors on the first page");
  } finally {
    await browser.close();
    server.proc.kill("SIGINT");
    const code = await new Promise((resolve) => server.proc.on("exit", resolve));
    assert.equal(code, 0, `serve exits 0 on SIGINT: ${server.log().slice(-500)}`);
  }
});
