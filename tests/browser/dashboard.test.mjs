// Browser test of the PitWall dashboard: `pitwall demo` + headless Chromium (the Debian package,
// driven by playwright-core; no browser download). Exits non-zero on the first failed check.
//
// Env:
//   PITWALL_BIN            the binary (default target/release/pitwall under the repository root)
//   PITWALL_CHROMIUM       the browser (default /usr/bin/chromium)
//   PITWALL_BROWSER_OUT    where the screenshots and results.json go (default target/browser)
//   PITWALL_DASHBOARD_DIR  development only: serve index.html/app.js/app.css from this directory
//                          instead of the binary's embedded copies (to try edits without a rebuild)
//   PITWALL_EXPECT_INSIGHTS=1  fail when no insight_update arrives after laps complete
//   PITWALL_MIN_FPS        frame-rate floor asserted at 20 cars x 50 Hz (default 50)
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, createWriteStream, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = resolve(REPO, process.env.PITWALL_BIN ?? "target/release/pitwall");
const CHROMIUM = process.env.PITWALL_CHROMIUM ?? "/usr/bin/chromium";
const OUT = resolve(REPO, process.env.PITWALL_BROWSER_OUT ?? "target/browser");
const DEV_ASSETS = process.env.PITWALL_DASHBOARD_DIR ? resolve(REPO, process.env.PITWALL_DASHBOARD_DIR) : null;
const MIN_FPS = Number(process.env.PITWALL_MIN_FPS ?? 50);
const CARS = 20;
const ASSETS = ["/", "/assets/app.js", "/assets/app.css", "/assets/vendor/uPlot.iife.min.js", "/assets/vendor/uPlot.min.css"];

mkdirSync(OUT, { recursive: true });
const results = { started_at: new Date().toISOString(), binary: BIN, chromium: CHROMIUM, dev_assets: DEV_ASSETS, checks: [] };
const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Failure extends Error {}
function check(name, ok, detail) {
  results.checks.push({ name, ok: !!ok, detail });
  log(`${ok ? "ok  " : "FAIL"} ${name}${detail !== undefined ? `: ${typeof detail === "string" ? detail : JSON.stringify(detail)}` : ""}`);
  if (!ok) throw new Failure(name);
}
async function until(what, fn, timeoutMs, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(everyMs);
  }
  return last;
}

// ------------------------------------------------------------------ the server
const dataDir = mkdtempSync(join(tmpdir(), "pitwall-browser-"));
let server = null, serverNo = 0;
function startServer(http, speed) {
  const n = ++serverNo;
  return new Promise((resolveP, reject) => {
    const args = ["demo", "--http", http, "--udp", "off", "--data-dir", join(dataDir, `d${n}`), "--speed", String(speed), "--start-lap", "1"];
    const p = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    const errLog = createWriteStream(join(OUT, `server-${n}.log`));
    p.stderr.pipe(errLog);
    let buf = "", done = false;
    const timer = setTimeout(() => { if (!done) { done = true; p.kill("SIGKILL"); reject(new Error(`server did not print its address in 20 s (${BIN} ${args.join(" ")})`)); } }, 20000);
    p.stdout.on("data", (d) => {
      buf += d;
      const m = /pitwall listening http=(\S+)/.exec(buf);
      if (m && !done) { done = true; clearTimeout(timer); resolveP({ proc: p, addr: m[1] }); }
    });
    p.on("exit", (code) => { if (!done) { done = true; clearTimeout(timer); reject(new Error(`server exited with ${code} before listening; see ${join(OUT, `server-${n}.log`)}`)); } });
    p.on("error", (e) => { if (!done) { done = true; clearTimeout(timer); reject(e); } });
  });
}
async function startServerRetry(http, speed) {
  let err;
  for (let i = 0; i < 10; i++) {
    try { return await startServer(http, speed); } catch (e) { err = e; await sleep(300); }
  }
  throw err;
}
function killServer(sig = "SIGKILL") {
  return new Promise((r) => {
    if (!server || server.proc.exitCode !== null) return r();
    server.proc.once("exit", () => r());
    server.proc.kill(sig);
  });
}
async function metrics(base) {
  const r = await fetch(`${base}/metrics`);
  const text = await r.text();
  const get = (prefix) => text.split("\n").filter((l) => l.startsWith(prefix)).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  return { text, get };
}

// ------------------------------------------------------------------ helpers on the page
const pstats = (page) => page.evaluate(() => window.pitwall.stats());
async function measure(page, ms) {
  await page.evaluate(() => window.pitwall.resetStats());
  const a = await pstats(page);
  const wallA = Date.now();
  await sleep(ms);
  const b = await pstats(page);
  const wall_s = (Date.now() - wallA) / 1000;
  const r = (x) => (x == null ? null : Math.round(x * 100) / 100);
  return {
    seconds: r(wall_s),
    frames: b.frames && Object.fromEntries(Object.entries(b.frames).map(([k, v]) => [k === "n" ? "n" : `${k}_ms`, k === "n" ? v : r(v)])),
    fps: r(b.fps),
    slow_frames_over_25ms: b.slowFrames,
    render_work_ms: b.work && { mean: r(b.work.mean), p95: r(b.work.p95), max: r(b.work.max) },
    render_max_ms_by_panel: Object.fromEntries(Object.entries(b.renderMaxMsByPanel || {}).map(([k, v]) => [k, r(v)])),
    ws_messages: b.msgs, points: b.points, points_per_s: r(b.points / wall_s),
    ws_handler_ms_per_s: r(b.msgHandlerMs / wall_s),
    max_ws_messages_between_frames: b.maxMsgsPerFrame,
    session_time_advanced_s: a.latestT != null && b.latestT != null ? r(b.latestT - a.latestT) : null,
  };
}
async function shot(locator) { return (await locator.screenshot()).toString("base64"); }

// ------------------------------------------------------------------ the test
let browser;
async function main() {
  server = await startServerRetry("127.0.0.1:0", 1);
  const base = `http://${server.addr}`;
  const port = server.addr.split(":").pop();
  log(`pitwall demo at ${base} (speed x1: 20 cars at 50 Hz = 1000 points/s)`);

  // Assets: all from the binary, small.
  let gz = 0, raw = 0;
  const sizes = {};
  for (const a of ASSETS) {
    const r = await fetch(base + a);
    check(`GET ${a} is served by the binary`, r.ok, r.status);
    const body = Buffer.from(await r.arrayBuffer());
    const fromDisk = DEV_ASSETS && (a === "/" ? readFileSync(join(DEV_ASSETS, "index.html")) : readFileSync(join(DEV_ASSETS, a.replace("/assets/", ""))));
    const b = fromDisk || body;
    sizes[a] = { bytes: b.length, gzip_bytes: gzipSync(b, { level: 9 }).length };
    raw += b.length; gz += sizes[a].gzip_bytes;
  }
  results.assets = { total_bytes: raw, total_gzip_bytes: gz, files: sizes };
  // The page's Content-Security-Policy: no inline script or style, no framing.
  const csp = (await fetch(base + "/")).headers.get("content-security-policy") || "";
  check("the dashboard is served with a CSP without inline script", /(^|;)\s*script-src 'self'\s*(;|$)/.test(csp) && !csp.includes("unsafe-inline") && csp.includes("frame-ancestors 'none'"), csp);
  check("dashboard assets under 500 KB gzipped", gz < 500 * 1024, `${(gz / 1024).toFixed(1)} KB gzipped (${(raw / 1024).toFixed(1)} KB raw)`);

  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: [
      // CI containers (and root) have no user namespaces for Chromium's sandbox; the page is our own.
      "--no-sandbox", "--disable-dev-shm-usage",
      // A document fulfilled by context.route has no address, so Chromium's Local Network Access
      // would block its WebSocket to 127.0.0.1: only relevant to PITWALL_DASHBOARD_DIR.
      ...(DEV_ASSETS ? ["--disable-features=LocalNetworkAccessChecks"] : []),
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  // Every CSP violation of every page of the context is recorded (and must not happen).
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
  const cspViolations = async (p) => p.evaluate(() => window.__csp || []);
  const page = await context.newPage();
  const foreign = [], pageErrors = [];
  page.on("request", (req) => { const u = new URL(req.url()); if (!["127.0.0.1", "localhost"].includes(u.hostname) && u.protocol !== "data:") foreign.push(req.url()); });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Failed HTTP requests are judged by their responses below (the seed endpoint may still be 404).
  page.on("console", (m) => { if (m.type() === "error" && !/^Failed to load resource|^WebSocket connection to .* failed/.test(m.text())) pageErrors.push(`console: ${m.text()}`); });
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (r.status() >= 400 && !(u.pathname === "/api/dashboard/live" && r.status() === 404)) pageErrors.push(`HTTP ${r.status()} ${u.pathname}`);
  });
  if (DEV_ASSETS) {
    const types = { html: "text/html", js: "text/javascript", css: "text/css" };
    await context.route(/\/(assets\/(app\.js|app\.css)|)(\?.*)?(#.*)?$/, (route) => {
      const p = new URL(route.request().url()).pathname;
      const f = p === "/" ? "index.html" : p.replace("/assets/", "");
      return route.fulfill({ body: readFileSync(join(DEV_ASSETS, f)), contentType: types[f.split(".").pop()] });
    });
  }

  // 1. First render and the timing tower.
  // Warm the browser up on the same origin first (renderer process start-up is not the page's).
  await page.goto(base + "/health");
  const nav = Date.now();
  await page.goto(base + "/", { waitUntil: "commit" });
  const filled = await until("tower", () => page.locator("#tower tr[data-car]").count().then((n) => (n >= CARS ? n : 0)), 10000);
  const first = await page.evaluate(() => ({
    fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
    firstData: window.pitwall.stats().firstDataMs,
    dcl: performance.getEntriesByType("navigation")[0]?.domContentLoadedEventEnd ?? null,
  }));
  results.first_render = { first_contentful_paint_ms: first.fcp, first_tower_rows_ms: first.firstData, dom_content_loaded_ms: first.dcl, wall_ms_to_20_rows: Date.now() - nav };
  check("timing tower fills with every car", filled === CARS, `${filled} rows`);
  check("first render under 1 s on localhost", first.firstData != null && first.firstData < 1000, results.first_render);
  const towerText = await page.locator("#tower").innerText();
  check("tower rows have positions and car ids", /^1\t/m.test(towerText) && /Leader/.test(towerText), towerText.split("\n").slice(0, 3).join(" | "));
  check("connection state is visible and live", (await page.locator("#conn").getAttribute("data-state")) === "live", await page.locator("#conn").innerText());

  // 2. A trace updates.
  const sel0 = await page.locator("#car-id").innerText();
  const traceA = await page.evaluate(() => { const s = window.pitwall.state, c = s.cars.get(s.selected); return c?.cur?.filled ?? 0; });
  const imgA = await shot(page.locator("#tr-speed"));
  await sleep(1500);
  const traceB = await page.evaluate(() => { const s = window.pitwall.state, c = s.cars.get(s.selected); return c?.cur?.filled ?? 0; });
  const imgB = await shot(page.locator("#tr-speed"));
  check("speed trace of the viewed car updates", traceB > traceA && imgA !== imgB, `${sel0}: ${traceA} -> ${traceB} distance bins, canvas changed: ${imgA !== imgB}`);
  const mapA = await shot(page.locator("#map"));
  await sleep(300);
  check("track map moves", mapA !== (await shot(page.locator("#map"))));

  // 3. Switching cars changes the view (keyboard and tap).
  await page.keyboard.press("ArrowDown");
  await until("switch", async () => (await page.locator("#car-id").innerText()) !== sel0, 2000);
  const sel1 = await page.locator("#car-id").innerText();
  await sleep(250);
  const imgC = await shot(page.locator("#tr-speed"));
  const selRow = await page.locator("#tower tr.sel td:nth-child(2)").innerText();
  check("ArrowDown switches the viewed car", sel1 !== sel0 && selRow === sel1 && imgC !== imgB, `${sel0} -> ${sel1}`);
  await page.keyboard.press("5");
  const p5 = await until("P5", async () => { const t = await page.locator("#c-pos").innerText(); return t === "P5" ? t : null; }, 2000);
  check("key 5 views the car in P5", p5 === "P5", await page.locator("#car-id").innerText());
  const rowCar = await page.locator("#tower tr[data-car]").nth(2).getAttribute("data-car");
  await page.locator("#tower tr[data-car]").nth(2).click();
  await sleep(300);
  check("tapping a tower row views that car", (await page.locator("#car-id").innerText()) === rowCar && page.url().includes(`#car=${encodeURIComponent(rowCar)}`), rowCar);
  await page.keyboard.press("l");
  await sleep(300);

  // 4. Frame times at 20 cars x 50 Hz, and no WebSocket backlog.
  const perf1 = await measure(page, 10000);
  results.frame_times_x1 = perf1;
  const m1 = await metrics(base);
  const slowDrops = m1.get('pitwall_ws_clients_dropped_total{reason="slow"}');
  results.frame_times_x1.server_dropped_slow_clients = slowDrops;
  check(`frame rate at 1000 points/s >= ${MIN_FPS} fps`, perf1.fps >= MIN_FPS, perf1);
  check("every point rendered (no piling up: ~1000 points/s received, none dropped)", perf1.points_per_s > 800 && slowDrops === 0 && perf1.max_ws_messages_between_frames < 20,
    { points_per_s: perf1.points_per_s, slow_client_drops: slowDrops, max_msgs_between_frames: perf1.max_ws_messages_between_frames });

  // 5. The screenshot (laptop, 1440x900).
  await page.screenshot({ path: join(OUT, "dashboard.png") });
  results.screenshots = [join(OUT, "dashboard.png")];
  check("no page errors", pageErrors.length === 0, pageErrors.slice(0, 5));
  const violations = await cspViolations(page);
  check("no Content-Security-Policy violations", violations.length === 0, violations.slice(0, 5));

  // 6. Kill the server; restart it on the same port; the page reconnects.
  const sessionBefore = (await pstats(page)).session;
  await killServer("SIGKILL");
  const down = await until("reconnecting", async () => { const s = await page.locator("#conn").getAttribute("data-state"); return s === "reconnecting" ? s : null; }, 5000);
  check("connection loss is shown", down === "reconnecting", await page.locator("#conn").innerText());
  await sleep(1000);
  const restartAt = Date.now();
  server = await startServerRetry(`127.0.0.1:${port}`, 10);
  log(`restarted on port ${port} at speed x10 (10000 points/s)`);
  const back = await until("reconnected", async () => {
    const s = await pstats(page);
    const rows = await page.locator("#tower tr[data-car]").count();
    return s.conn === "live" && s.reconnects >= 1 && s.session !== sessionBefore && rows === CARS ? s : null;
  }, 20000);
  results.reconnect_ms = Date.now() - restartAt;
  check("reconnects after the server restarts", !!back, back ? `${results.reconnect_ms} ms after restart, session ${back.session}` : await page.locator("#conn").innerText());

  // 7. Laps complete (x10): lap times in the tower; a car whose whole lap the page saw gets a
  //    best-lap trace beside its current one.
  const timed = await until("lap", () => page.evaluate(() => {
    const withTimes = [...document.querySelectorAll("#tower tr[data-car]")].filter((tr) => /\d:\d\d\.\d{3}/.test(tr.children[5].textContent));
    const traced = [...window.pitwall.state.cars.values()].find((c) => c.best);
    return withTimes.length && traced ? traced.id : null;
  }), 40000, 250);
  check("a completed lap puts lap times in the tower", !!timed, timed);
  await page.locator(`#tower tr[data-car="${timed}"]`).click();
  const lapDone = await until("best", async () => { const t = await page.locator("#best-lap").innerText(); return /lap \d+/.test(t) ? t : null; }, 3000);
  check("the car's best lap is drawn beside the current lap", !!lapDone, `${timed} ${lapDone}`);
  const lastCells = await page.locator("#tower tr[data-car] td:nth-child(5)").allInnerTexts();
  check("tower shows last-lap times", lastCells.some((t) => /\d:\d\d\.\d{3}/.test(t)), lastCells.filter((t) => t !== "—").slice(0, 3));
  const perf10 = await measure(page, 5000);
  results.frame_times_x10 = perf10;
  log("frame times at x10 (10000 points/s):", JSON.stringify(perf10));
  const insights = (await pstats(page)).insights;
  results.live_insight_updates = insights;
  if (process.env.PITWALL_EXPECT_INSIGHTS === "1") check("insight_update arrives after a completed lap", insights > 0, insights);
  else log(`insight_update messages received so far: ${insights} (set PITWALL_EXPECT_INSIGHTS=1 to require them)`);
  // First paint from GET /api/dashboard/live once the server knows a completed lap of the car.
  const seedRes = await fetch(`${base}/api/dashboard/live?track=Austin&vehicle=${encodeURIComponent(timed)}`);
  results.seed_endpoint_status = seedRes.status;
  if (seedRes.ok) {
    const fresh = await context.newPage();
    const seedP = fresh.waitForResponse((r) => r.url().includes("/api/dashboard/live"), { timeout: 5000 }).catch(() => null);
    await fresh.goto(`${base}/#car=${encodeURIComponent(timed)}`);
    const seeded = await seedP;
    const painted = await until("seed paint", async () => {
      const t = await fresh.locator("#tire-model").innerText();
      return /waiting for first completed lap/.test(t) ? null : t;
    }, 3000);
    check("first paint of a car with a completed lap uses the seed (or a live insight)", !!painted, (painted ?? "").replace(/\n/g, " | "));
    results.seed_first_paint = { response: seeded ? seeded.status() : null, tire_panel: painted };
    await fresh.close();
  } else {
    log(`GET /api/dashboard/live -> ${seedRes.status} (the page shows "waiting for first completed lap" instead)`);
  }
  await page.screenshot({ path: join(OUT, "dashboard-after-restart.png") });
  results.screenshots.push(join(OUT, "dashboard-after-restart.png"));

  // 8. The insight panels render the contract's messages (a fixture fed through the page's
  //    message handler, after the real-data screenshots) and the Speak button speaks them.
  const car = await page.locator("#car-id").innerText();
  await page.evaluate(() => { window.__spoken = []; if (window.speechSynthesis) window.speechSynthesis.speak = (u) => window.__spoken.push(u.text); });
  await page.evaluate((chassis) => {
    const st = window.pitwall.state, s = st.cars.get(chassis).last;
    window.pitwall.handle({ type: "insight_update", meta: { generated_at: new Date().toISOString() }, data: [{
      chassis, track: s.track, session_id: s.session, lap: s.lap, lap_time_s: 152.3, best_lap_time_s: 151.9,
      sector_times_s: [50.1, 60.2, 42.0], validity: { out_lap: false, pit: false, safety_car: false, incomplete: false },
      lap_tire_stress: 1234.5, predicted_loss_per_lap_seconds: 0.21, loss_interval80_s: [0.05, 0.4],
      laps_until_0_5s_loss: 6, recommended_pit_lap: 18, tire_wear: { fl: 23.1, fr: 25.0, rl: 12.0, rr: 13.3 },
      explanation: ["FIXTURE sentence one.", "FIXTURE sentence two.", "FIXTURE sentence three."],
      gaps: { position: 3, gap_to_leader_s: 4.2, gap_ahead_s: 0.8, gap_behind_s: 1.9, closing_rate_s_per_lap: 0.1 },
      pit_window: { open_lap: 15, close_lap: 18, text: "Box between laps 15 and 18", best_plan: "1-stop L16", plans: [
        { name: "stay out", pit_laps: [], expected_position: 4.1, win_probability: 0.05, p5_position: 7, position_distribution: [0.05, 0.1, 0.2, 0.3, 0.2, 0.1, 0.05] },
        { name: "1-stop L16", pit_laps: [16], expected_position: 3.2, win_probability: 0.12, p5_position: 5, position_distribution: [0.12, 0.2, 0.3, 0.2, 0.1, 0.05, 0.03] }] },
    }] });
    window.pitwall.handle({ type: "coaching_alert", data: [{ chassis, track: s.track, lap: s.lap, corner: 3, metric: "brake_point_m", z: 2.4,
      message: "FIXTURE Braking 12 m later than your baseline into Turn 3", expected_delta_s: -0.08 }] });
  }, car);
  await sleep(400);
  const tm = await page.locator("#tire-model").innerText();
  check("tyre panel shows predicted loss per lap and laps until +0.5 s", /\+0\.21 s/.test(tm) && /Laps until \+0\.5 s\s+6/.test(tm), tm.replace(/\n/g, " | "));
  const pitTxt = await page.locator("#pit").innerText();
  check("pit window and plan distributions render", /Box between laps 15 and 18/.test(pitTxt) && (await page.locator("#pit .dist").count()) === 2, pitTxt.split("\n")[0]);
  check("three radio sentences", (await page.locator("#radio li").count()) === 3);
  await page.locator("#speak").click();
  const spoken = await page.evaluate(() => window.__spoken);
  check("Speak button speaks the sentences", spoken.length === 1 && spoken[0].includes("FIXTURE sentence two."), spoken[0]);
  check("coaching alert appears in the feed", /FIXTURE Braking 12 m later/.test(await page.locator("#coach").innerText()));
  await page.screenshot({ path: join(OUT, "dashboard-insight-fixture.png") });
  results.screenshots.push(join(OUT, "dashboard-insight-fixture.png"));

  // 9. ?sub=car subscribes to the viewed car only (weak links): only its points arrive.
  const solo = await context.newPage();
  await solo.goto(`${base}/?sub=car#car=${encodeURIComponent(car)}`);
  const soloCars = await until("solo", () => solo.evaluate(() => (window.pitwall && window.pitwall.stats().points > 200 ? [...window.pitwall.state.cars.keys()] : null)), 5000);
  check("?sub=car keeps only the viewed car", Array.isArray(soloCars) && soloCars.length === 1 && soloCars[0] === car, soloCars);
  const soloA = await solo.evaluate(() => window.pitwall.stats().points);
  await sleep(1000);
  const soloRate = (await solo.evaluate(() => window.pitwall.stats().points)) - soloA;
  check("?sub=car: the server sends that car's points only (1/20 of the feed)", soloRate > 0 && soloRate < perf10.points_per_s / 5, `${soloRate} points/s vs ${perf10.points_per_s} for all cars`);
  await solo.close();

  // 10. Tablet (portrait): one scrollable column, no sideways scrolling.
  await page.setViewportSize({ width: 820, height: 1180 });
  await sleep(500);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check("tablet portrait layout has no horizontal overflow", overflow <= 0, `${overflow} px`);
  await page.screenshot({ path: join(OUT, "dashboard-tablet.png") });
  results.screenshots.push(join(OUT, "dashboard-tablet.png"));

  check("offline: no request left localhost", foreign.length === 0, foreign.slice(0, 5));
  check("no page errors after restart", pageErrors.length === 0, pageErrors.slice(0, 5));
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  results.error = String(e && e.stack || e);
  if (!(e instanceof Failure)) console.error(e);
} finally {
  results.finished_at = new Date().toISOString();
  results.duration_s = (Date.now() - t0) / 1000;
  results.ok = !failed;
  writeFileSync(join(OUT, "results.json"), JSON.stringify(results, null, 2));
  if (browser) await browser.close().catch(() => {});
  await killServer("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
  log(`${failed ? "FAILED" : "passed"}; results in ${join(OUT, "results.json")}`);
  process.exit(failed ? 1 : 0);
}
