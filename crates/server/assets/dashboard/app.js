// PitWall live dashboard. No framework, no CDN: uPlot (vendored) draws the traces, plain canvas
// draws the g-g diagram and the track map, the rest is DOM updated in place.
//
// Data flow: WebSocket messages are parsed and folded into `S` as they arrive (cheap, per point);
// a requestAnimationFrame loop renders from `S` at a fixed cadence (never per message).
// Numbers shown are either telemetry, measured from telemetry (lap times from line crossings,
// gaps from timing loops every CP_M metres), or the server's models (insight_update, the seed
// REST endpoint). When a model has not spoken, the panel says so instead of showing a number.
"use strict";
(() => {
  const BIN_M = 5;          // trace resolution along the lap, m
  const CP_M = 20;          // timing-loop spacing for gaps, m
  const MAP_BIN_M = 10;     // track outline resolution, m
  const ALERTS_MAX = 200;
  const PLANS_SHOWN = 4;        // pit plans listed before "all N plans"
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  // ?sub=car: subscribe to the viewed car only (weak links); the tower then shows that car alone.
  const subscribeCarOnly = params.get("sub") === "car";
  const pinnedSession = params.get("session");
  let msgNow = 0; // performance.now() of the message being handled

  // ---------------------------------------------------------------- access (API key or token)
  // A server with authentication on needs a viewer key: `?token=KEY` in the page's URL (kept
  // in this tab's sessionStorage and taken out of the address bar) or typed in when the API
  // answers 401/403. Sent as `Authorization: Bearer` to the API, `?token=` to the WebSocket.
  const TOKEN_KEY = "pitwall.token";
  let token = params.get("token") || sessionStorage.getItem(TOKEN_KEY) || "";
  if (params.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    const q = params.toString();
    history.replaceState(null, "", `${location.pathname}${q ? "?" + q : ""}${location.hash}`);
  }
  let askedForKey = false;
  function askForKey(status) {
    if (askedForKey) return;
    askedForKey = true;
    const form = document.createElement("form");
    form.id = "authbar";
    const label = document.createElement("label");
    label.textContent = status === 403
      ? "This key's role cannot read the dashboard: enter a viewer key "
      : (token ? "The key was refused: enter an API key " : "This server needs an API key: ");
    const input = document.createElement("input");
    input.type = "password"; input.autocomplete = "off"; input.placeholder = "pw_...";
    const button = document.createElement("button");
    button.type = "submit"; button.textContent = "Use key";
    label.appendChild(input); form.append(label, button);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      location.reload();
    });
    document.body.prepend(form);
    input.focus();
  }
  /** fetch with the key; a 401/403 asks for one. */
  async function api(url, opts = {}) {
    const headers = { ...(opts.headers || {}) };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(url, { ...opts, headers });
    if (r.status === 401 || r.status === 403) askForKey(r.status);
    return r;
  }

  // ---------------------------------------------------------------- state
  const S = {
    session: null, sessionLastAt: 0, sessionStartAt: 0, track: null, trackLen: 0,
    cars: new Map(),        // car id -> Car
    selected: null,
    insights: new Map(),    // car id -> latest insight_update record
    seeds: new Map(),       // car id -> {rec, at} from GET /api/dashboard/live
    seedTried: new Map(),   // car id -> ms of last attempt
    seedStatus: new Map(),  // car id -> what the seed endpoint said
    alerts: [],             // coaching_alert records, newest last
    coachAll: false, pitAll: false,
    outline: { lat: [], lon: [], filled: 0, drawnFilled: -1 },
    gps: false,
    order: [],              // car ids by position
    dirty: { tower: true, car: true, insight: true, coach: true, map: true },
    conn: { state: "connecting", attempts: 0, reconnectAt: 0, lastMsgAt: 0, opened: 0, errors: 0, lastError: "" },
    speedMax: 100, brakeMax: 1, brakeUnit: null, steerMax: 30, gMax: 1.5,
  };

  const stats = {
    frameDt: [], work: [], msgs: 0, pts: 0, msgMs: 0, maxMsgsPerFrame: 0, msgsThisFrame: 0,
    reconnects: 0, otherSessionPts: 0, backlogMax: 0, backlogWin: 0, partMax: {}, firstDataMs: null, insights: 0, alerts: 0, lastFrame: 0,
    latestT: null, latestAt: null, t0: performance.now(),
    ratePts: 0, rateMsgs: 0, rateAt: performance.now(), ptsWin: 0, msgsWin: 0,
  };

  function newCar(id) {
    return {
      id, last: null, cur: null, best: null, bestLapT: null, bestLapNo: null, lastLapT: null, lastLapNo: null,
      prevT: null, prevD: null, prevLap: null,
      cps: new Map(), cpLap: null, cpK: -1, cpT: 0, cpD: 0, cpMinLap: 0,
      row: null, cells: null, txt: [],
    };
  }
  function newTrace(lap, startT) {
    // channels: 0 speed, 1 throttle, 2 brake, 3 steering, 4 accx, 5 accy, 6 session time
    return { lap, startT, filled: 0, lastBin: -1, ch: [[], [], [], [], [], [], []] };
  }

  function resetSession(session) {
    S.session = session; S.sessionStartAt = performance.now();
    S.cars.clear(); S.insights.clear(); S.seeds.clear(); S.seedTried.clear(); S.seedStatus.clear();
    S.alerts.length = 0; S.order = []; S.trackLen = 0;
    S.outline = { lat: [], lon: [], filled: 0, drawnFilled: -1 };
    $("tower").textContent = "";
    for (const k in S.dirty) S.dirty[k] = true;
  }

  // ---------------------------------------------------------------- ingest
  function num(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }

  /** A point's time, s: `t_s` (exact), else `meta_time` (RFC 3339, or session seconds). */
  function pointTime(s) {
    const t = num(s.t_s);
    if (t != null || s.meta_time == null) return t;
    if (typeof s.meta_time === "number") return num(s.meta_time);
    const ms = Date.parse(s.meta_time);
    return Number.isFinite(ms) ? ms / 1000 : null;
  }

  /** One `telemetry_update` point (a TelemetryPoint: the documented ingest names). */
  function ingestSample(s) {
    const id = s.chassis;
    if (id == null) return;
    if (subscribeCarOnly && id !== S.selected) return; // points sent before the server applied the filter
    if (s.session != null && s.session !== S.session) {
      // One session at a time: a new one takes over when the current one has gone quiet
      // (a restarted demo, the next race), or the one named by ?session= .
      if (pinnedSession ? s.session !== pinnedSession : S.session != null && msgNow - S.sessionLastAt < 3000) { stats.otherSessionPts++; return; }
      resetSession(s.session);
    }
    S.sessionLastAt = msgNow;
    if (S.track == null && s.track) S.track = s.track;
    let car = S.cars.get(id);
    if (!car) { car = newCar(id); S.cars.set(id, car); S.dirty.tower = true; }
    const t = pointTime(s), d = num(s.lapdist_m), lap = s.lap ?? null;
    if (d != null && d > S.trackLen) S.trackLen = d;
    const L = S.trackLen;

    // Lap traces, binned by distance; lap time from the interpolated line crossing.
    if (lap != null && d != null && t != null) {
      if (!car.cur || car.cur.lap !== lap) {
        let startT = null;
        if (car.cur && lap === car.cur.lap + 1 && car.prevD != null && car.prevT != null && L > 0 && t - car.prevT < 1) {
          const before = Math.max(0, L - car.prevD), span = before + d;
          startT = span > 0 ? car.prevT + (t - car.prevT) * (before / span) : t;
          if (car.cur.startT != null) {
            const lapT = startT - car.cur.startT;
            const coverage = car.cur.filled / Math.max(1, Math.ceil(L / BIN_M));
            if (lapT > 0 && coverage > 0.9) {
              car.lastLapT = lapT; car.lastLapNo = car.cur.lap;
              if (car.bestLapT == null || lapT < car.bestLapT) { car.bestLapT = lapT; car.bestLapNo = car.cur.lap; car.best = car.cur; }
            }
          }
        }
        car.cur = newTrace(lap, startT);
        if (id === S.selected) S.dirty.car = true;
      }
      const b = Math.floor(d / BIN_M), ch = car.cur.ch;
      if (ch[0].length <= b) for (const a of ch) while (a.length <= b) a.push(null);
      if (ch[0][b] === null) car.cur.filled++;
      const brake = num(s.brake_pct) ?? num(s.pbrake_f);
      if (S.brakeUnit == null && brake != null) S.brakeUnit = num(s.brake_pct) != null ? "%" : "bar";
      const v = num(s.speed_kmh);
      ch[0][b] = v; ch[1][b] = num(s.aps); ch[2][b] = brake;
      ch[3][b] = num(s.Steering_Angle); ch[4][b] = num(s.accx_can); ch[5][b] = num(s.accy_can); ch[6][b] = t;
      car.cur.lastBin = b;
      if (v != null && v > S.speedMax) S.speedMax = v;
      if (brake != null && brake > S.brakeMax) S.brakeMax = brake;
      const st = ch[3][b]; if (st != null && Math.abs(st) > S.steerMax) S.steerMax = Math.abs(st);

      timingLoops(car, lap, d, t, L);

      // Track outline from GPS, one point per MAP_BIN_M.
      const la = num(s.VBOX_Lat_Min), lo = num(s.VBOX_Long_Minutes);
      if (la != null && lo != null) {
        S.gps = true;
        const mb = Math.floor(d / MAP_BIN_M), o = S.outline;
        if (o.lat[mb] == null) { o.lat[mb] = la; o.lon[mb] = lo; o.filled++; }
      }
    }
    car.prevT = t; car.prevD = d; car.prevLap = lap;
    car.last = s;
    if (t != null && (stats.latestT == null || t > stats.latestT)) { stats.latestT = t; stats.latestAt = performance.now(); }
  }

  // Timing loops every CP_M metres: the time each car crossed each loop, per lap.
  // Gap between two cars = difference of their times at the last loop the follower crossed.
  function cpKey(lap, k) { return lap * 4096 + k; }
  function timingLoops(car, lap, d, t, L) {
    const k = Math.floor(d / CP_M);
    if (car.cpLap == null || L <= 0 || t - car.cpT > 1) { car.cpLap = lap; car.cpK = k; car.cpT = t; car.cpD = d; return; } // start, or a gap in the data
    const pt = car.cpT, pd = car.cpD;
    if (lap === car.cpLap && k > car.cpK) {
      const span = d - pd;
      for (let j = car.cpK + 1; j <= k; j++) car.cps.set(cpKey(lap, j), span > 0 ? pt + (t - pt) * ((j * CP_M - pd) / span) : t);
    } else if (lap === car.cpLap + 1) {
      const before = Math.max(0, L - pd), span = before + d;
      for (let j = car.cpK + 1; j * CP_M < L; j++) car.cps.set(cpKey(car.cpLap, j), span > 0 ? pt + (t - pt) * ((j * CP_M - pd) / span) : t);
      for (let j = 0; j <= k; j++) car.cps.set(cpKey(lap, j), span > 0 ? pt + (t - pt) * ((before + j * CP_M) / span) : t);
      if (lap - car.cpMinLap > 6) { // keep the last few laps only
        for (const key of car.cps.keys()) if (key < cpKey(lap - 5, 0)) car.cps.delete(key);
        car.cpMinLap = lap - 5;
      }
    } else if (lap !== car.cpLap) {
      // jumped (reconnect, session change): start over from here
    } else if (k === car.cpK) {
      return; // same loop, keep the crossing state
    }
    car.cpLap = lap; car.cpK = k; car.cpT = t; car.cpD = d;
  }
  /** Gap of `car` behind `ref` in seconds, or {laps: n} when a lap or more down, or null. */
  function gapTo(car, ref) {
    if (!car || !ref || car.cpLap == null || ref.cpLap == null) return null;
    const down = ref.cpLap - car.cpLap - (ref.cpK < car.cpK ? 1 : 0);
    if (down >= 1) return { laps: down };
    const tc = car.cps.get(cpKey(car.cpLap, car.cpK)), tr = ref.cps.get(cpKey(car.cpLap, car.cpK));
    if (tc == null || tr == null) return null;
    return tc - tr;
  }

  function ingestInsight(r) {
    const id = r.chassis ?? r.car_id;
    if (id == null) return;
    if (r.session_id != null && S.session != null && r.session_id !== S.session) return;
    r._at = Date.now();
    // The lap model and the strategy worker may speak in separate messages: keep a pit window
    // until a newer one comes (it says which lap it is as of), and same-lap fields sent earlier.
    const prev = S.insights.get(id);
    // One insight per (car, lap), revised with a higher `revision` (the pit window arriving
    // later): an older revision of the lap shown is stale.
    if (prev && !prev._seed && prev.session_id === r.session_id && r.lap === prev.lap && num(r.revision) != null && num(prev.revision) != null && r.revision < prev.revision) return;
    if (prev && !prev._seed && prev.session_id === r.session_id) {
      if (r.pit_window == null && prev.pit_window != null) r.pit_window = prev.pit_window;
      if (r.lap === prev.lap) for (const k of Object.keys(prev)) if (r[k] == null && prev[k] != null) r[k] = prev[k];
    }
    S.insights.set(id, r);
    stats.insights++;
    S.dirty.insight = true; S.dirty.tower = true;
  }
  function ingestAlert(a) {
    a._at = Date.now();
    S.alerts.push(a);
    if (S.alerts.length > ALERTS_MAX) S.alerts.splice(0, S.alerts.length - ALERTS_MAX);
    stats.alerts++;
    S.dirty.coach = true;
  }

  function handle(m) {
    switch (m && m.type) {
      case "telemetry_update":
        if (Array.isArray(m.data)) { for (const s of m.data) ingestSample(s); stats.pts += m.data.length; stats.ptsWin += m.data.length; }
        S.dirty.tower = true; S.dirty.car = true;
        break;
      case "insight_update":
        if (Array.isArray(m.data)) m.data.forEach(ingestInsight); else if (m.data) ingestInsight(m.data);
        break;
      case "coaching_alert":
        if (Array.isArray(m.data)) m.data.forEach(ingestAlert); else if (m.data) ingestAlert(m.data);
        break;
      case "error":
        S.conn.lastError = String(m.reason ?? "error");
        break;
      default: break; // subscribed, pong
    }
  }

  // ---------------------------------------------------------------- WebSocket
  let ws = null, retryTimer = 0;

  function wsUrl() {
    const q = token ? `?token=${encodeURIComponent(token)}` : "";
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/realtime${q}`;
  }
  function setConn(state) { S.conn.state = state; }
  function subscribe() {
    if (!ws || ws.readyState !== 1) return;
    const chassis = subscribeCarOnly ? S.selected : null;
    ws.send(JSON.stringify({ type: "subscribe", track: null, chassis }));
  }
  function connect() {
    clearTimeout(retryTimer);
    setConn("connecting");
    let sock;
    try { sock = new WebSocket(wsUrl()); } catch (e) { scheduleReconnect(); return; }
    ws = sock;
    sock.onopen = () => {
      if (S.conn.opened++) stats.reconnects++;
      S.conn.attempts = 0; S.conn.lastMsgAt = performance.now();
      setConn("live"); subscribe();
    };
    sock.onmessage = (ev) => {
      const t0 = performance.now();
      S.conn.lastMsgAt = msgNow = t0;
      stats.msgs++; stats.msgsWin++; stats.msgsThisFrame++;
      let m; try { m = JSON.parse(ev.data); } catch { S.conn.errors++; return; }
      handle(m);
      stats.msgMs += performance.now() - t0;
    };
    sock.onclose = () => { if (ws === sock) { ws = null; scheduleReconnect(); } };
    sock.onerror = () => { S.conn.errors++; };
  }
  function scheduleReconnect() {
    const n = S.conn.attempts++;
    const delay = Math.min(10000, 500 * 2 ** n) * (0.8 + 0.4 * Math.random()); // exponential backoff with jitter
    S.conn.reconnectAt = performance.now() + delay;
    setConn("reconnecting");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }
  window.addEventListener("online", () => { if (!ws) connect(); });
  setInterval(() => { if (ws && ws.readyState === 1) ws.send('{"type":"ping"}'); }, 15000);

  // ---------------------------------------------------------------- seed (first paint)
  async function fetchSeed(id) {
    if (!S.track || !id || S.insights.has(id)) return;
    const last = S.seedTried.get(id) ?? -Infinity;
    if (performance.now() - last < 30000) return;
    S.seedTried.set(id, performance.now());
    const q = new URLSearchParams({ track: S.track, vehicle: id });
    try {
      const r = await api(`/api/dashboard/live?${q}`, { headers: { accept: "application/json" } });
      if (!r.ok) { S.seedStatus.set(id, `seed ${r.status}: waiting for the first completed lap`); return; }
      const j = await r.json();
      if (j && j.status === "waiting") { S.seedStatus.set(id, "waiting for the first completed lap"); S.seedTried.set(id, performance.now() - 25000); return; }
      const rec = normalizeSeed(j);
      if (rec.session_id != null && S.session != null && rec.session_id !== S.session) { S.seedStatus.set(id, "seed: only an earlier session's laps"); return; }
      S.seeds.set(id, rec);
      S.seedStatus.set(id, `seed (REST), lap ${rec.lap ?? "?"}`);
      S.dirty.insight = true; S.dirty.tower = true;
    } catch (e) { S.seedStatus.set(id, "seed unreachable"); }
  }
  /** First paint of every car (lap times, gaps, tyres) from the seed endpoint, four requests at a time. */
  async function seedAll() {
    const ids = [...S.order];
    const next = async () => { while (ids.length) await fetchSeed(ids.shift()); };
    await Promise.all([next(), next(), next(), next()]);
  }
  /** Maps the seed document onto the insight record shape: its `insight` member when present
   *  (the whole insight_update element), else the {tire_wear, performance, gap_analysis, strategy} parts. */
  function normalizeSeed(j) {
    if (!j || typeof j !== "object") return {};
    const o = (x) => (x && typeof x === "object" && !Array.isArray(x) ? x : {});
    if (Object.keys(o(j.insight)).length) return { ...j.insight, _seed: true };
    const tw = o(j.tire_wear), perf = o(j.performance), gap = o(j.gap_analysis), strat = o(j.strategy);
    const rec = { ...perf, _seed: true, lap: j.lap ?? perf.lap };
    rec.predicted_loss_per_lap_seconds = tw.predicted_loss_per_lap_seconds ?? tw.predicted_loss_per_lap_s ?? null;
    rec.loss_interval80_s = tw.loss_interval80_s ?? null;
    rec.laps_until_0_5s_loss = tw.laps_until_0_5s_loss ?? null;
    rec.recommended_pit_lap = tw.recommended_pit_lap ?? null;
    rec.predictor = tw.predictor ?? null;
    const wear = o(tw.tire_wear ?? tw.wear_pct);
    const hasWear = ["fl", "fr", "rl", "rr"].every((c) => num(wear[c]) != null);
    rec.tire_wear = hasWear && tw.wear_source !== "telemetry" && tw.wear_source !== "reported" ? wear : null;
    rec.gaps = Object.keys(gap).length ? gap : null;
    rec.pit_window = Object.keys(strat).length ? strat : null;
    rec.explanation = tw.explanation ?? j.explanation ?? null;
    return rec;
  }

  // ---------------------------------------------------------------- metrics (pipeline health)
  const M = { prev: null, view: {} };
  function parseProm(text) {
    const out = new Map();
    for (const line of text.split("\n")) {
      if (!line || line[0] === "#") continue;
      const sp = line.lastIndexOf(" ");
      if (sp < 0) continue;
      const key = line.slice(0, sp), v = Number(line.slice(sp + 1));
      if (!Number.isFinite(v)) continue;
      out.set(key, v);
    }
    return out;
  }
  function sumOf(m, name) { // sums every label set of a metric
    let s = 0, any = false;
    for (const [k, v] of m) {
      if (k === name || (k.startsWith(name + "{"))) { s += v; any = true; }
    }
    return any ? s : null;
  }
  function buckets(m, name) {
    const b = [];
    for (const [k, v] of m) {
      if (!k.startsWith(name + "_bucket{")) continue;
      const le = /le="([^"]+)"/.exec(k);
      if (le) b.push([le[1] === "+Inf" ? Infinity : Number(le[1]), v]);
    }
    return b.sort((x, y) => x[0] - y[0]);
  }
  async function pollMetrics() {
    try {
      const r = await api("/metrics", { cache: "no-store" });
      if (!r.ok) throw new Error(String(r.status));
      const m = parseProm(await r.text());
      const now = performance.now();
      const cur = {
        at: now,
        acc: sumOf(m, "pitwall_points_accepted_total"),
        rej: sumOf(m, "pitwall_points_rejected_total"),
        ring: sumOf(m, "pitwall_ring_dropped_total"),
        wsDrop: sumOf(m, "pitwall_ws_clients_dropped_total"),
        clients: sumOf(m, "pitwall_ws_clients"),
        latSum: sumOf(m, "pitwall_ingest_to_ws_latency_seconds_sum"),
        latCount: sumOf(m, "pitwall_ingest_to_ws_latency_seconds_count"),
        latB: buckets(m, "pitwall_ingest_to_ws_latency_seconds"),
      };
      const p = M.prev, v = { clients: cur.clients, ring: cur.ring, wsDrop: cur.wsDrop, rej: cur.rej, ok: true };
      if (p && cur.acc != null && p.acc != null && cur.acc >= p.acc) {
        const dt = (cur.at - p.at) / 1000;
        v.accRate = (cur.acc - p.acc) / dt;
        const dc = (cur.latCount ?? 0) - (p.latCount ?? 0);
        if (dc > 0) {
          v.latAvg = ((cur.latSum ?? 0) - (p.latSum ?? 0)) / dc;
          // p95 from the bucket deltas (upper bound of the bucket holding the 95th percentile)
          const pb = new Map(p.latB.map(([le, c]) => [le, c]));
          for (const [le, c] of cur.latB) if (c - (pb.get(le) ?? 0) >= 0.95 * dc) { v.latP95 = le; break; }
        }
      }
      M.prev = cur; M.view = v;
    } catch (e) { M.view = { ok: false }; }
  }

  // ---------------------------------------------------------------- formatting
  function fmtLap(s) {
    if (s == null || !Number.isFinite(s)) return "—";
    const m = Math.floor(s / 60), r = s - m * 60;
    return m > 0 ? `${m}:${r.toFixed(3).padStart(6, "0")}` : r.toFixed(3);
  }
  function fmtGap(g) {
    if (g == null) return "—";
    if (typeof g === "object") return `+${g.laps} L`;
    return (g >= 0 ? "+" : "") + g.toFixed(g < 100 ? 3 : 1);
  }
  function pitText(p) { return p === "pitting" ? "PIT" : p === "in_pit_area" ? "IN PIT" : ""; }
  function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }
  function setText(el, v) { if (el.textContent !== v) el.textContent = v; }

  // ---------------------------------------------------------------- selection & input
  function orderCars() {
    const arr = [...S.cars.values()];
    arr.sort((a, b) => (a.last?.position ?? 999) - (b.last?.position ?? 999) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    S.order = arr.map((c) => c.id);
    return arr;
  }
  function select(id) {
    if (!id || id === S.selected) return;
    S.selected = id;
    history.replaceState(null, "", `${location.pathname}${location.search}#car=${encodeURIComponent(id)}`);
    S.dirty.car = S.dirty.tower = S.dirty.insight = S.dirty.coach = true;
    if (subscribeCarOnly) subscribe();
    fetchSeed(id);
  }
  function step(delta) {
    if (!S.order.length) return;
    const i = S.order.indexOf(S.selected);
    const n = S.order.length;
    select(S.order[((i < 0 ? 0 : i + delta) % n + n) % n]);
  }
  const hashCar = /#car=([^&]+)/.exec(location.hash);
  if (hashCar) S.selected = decodeURIComponent(hashCar[1]);

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tg = e.target;
    if (tg && (/^(TEXTAREA|SELECT)$/.test(tg.tagName) || (tg.tagName === "INPUT" && tg.type !== "checkbox")) && e.key !== "Escape") return;
    const k = e.key;
    if (k === "ArrowDown" || k === "j" || k === "J") step(1);
    else if (k === "ArrowUp" || k === "k" || k === "K") step(-1);
    else if (/^[0-9]$/.test(k)) { const p = k === "0" ? 10 : Number(k); orderCars(); if (S.order[p - 1]) select(S.order[p - 1]); }
    else if (k === "l" || k === "L" || k === "Home") { orderCars(); if (S.order[0]) select(S.order[0]); }
    else if (k === "s" || k === "S") speak();
    else if (k === "c" || k === "C") { $("coach-all").checked = !$("coach-all").checked; S.coachAll = $("coach-all").checked; S.dirty.coach = true; }
    else if (k === "?") $("help").hidden = !$("help").hidden;
    else if (k === "Escape") $("help").hidden = true;
    else return;
    e.preventDefault();
  });
  $("help").addEventListener("click", () => { $("help").hidden = true; });
  $("tower").addEventListener("click", (e) => { const r = e.target.closest("tr[data-car]"); if (r) select(r.dataset.car); });
  $("coach-all").addEventListener("change", (e) => { S.coachAll = e.target.checked; S.dirty.coach = true; });
  $("speak").addEventListener("click", () => speak());
  $("pit").addEventListener("click", (e) => { if (e.target.closest("[data-act=plans]")) { S.pitAll = !S.pitAll; S.dirty.insight = true; } });

  // ---------------------------------------------------------------- speech
  function radioLines() {
    const rec = S.insights.get(S.selected) ?? S.seeds.get(S.selected);
    return rec && Array.isArray(rec.explanation) ? rec.explanation.filter((x) => typeof x === "string" && x.trim()) : [];
  }
  function speak() {
    const lines = radioLines();
    if (!lines.length || !("speechSynthesis" in window)) return;
    const synth = window.speechSynthesis;
    synth.cancel();
    const u = new SpeechSynthesisUtterance(lines.join(" "));
    u.rate = 1.05;
    const b = $("speak");
    u.onstart = () => b.classList.add("speaking");
    u.onend = u.onerror = () => b.classList.remove("speaking");
    synth.speak(u);
  }

  // ---------------------------------------------------------------- render: tower
  const TOWER_COLS = 8;
  function renderTower() {
    const cars = orderCars();
    const body = $("tower");
    if (!cars.length) return;
    if (body.firstElementChild && body.firstElementChild.classList.contains("empty")) body.textContent = "";
    if (stats.firstDataMs == null) {
      stats.firstDataMs = performance.now();
      try { performance.mark("pitwall-first-data"); } catch {}
      setTimeout(seedAll, 0);
    }
    // Default to the leader; the car being viewed (or named in the address) gets 3 s to show up.
    if (S.selected == null || (!S.cars.has(S.selected) && performance.now() - Math.max(stats.firstDataMs, S.sessionStartAt) > 3000)) {
      S.selected = null; select(cars[0].id);
    }
    const leader = cars[0];
    let prevEl = null;
    for (let i = 0; i < cars.length; i++) {
      const c = cars[i], s = c.last || {};
      if (!c.row) {
        c.row = document.createElement("tr");
        c.row.dataset.car = c.id;
        c.cells = [];
        for (let j = 0; j < TOWER_COLS; j++) c.cells.push(c.row.appendChild(document.createElement("td")));
      }
      const ins = S.insights.get(c.id) ?? S.seeds.get(c.id);
      const lastT = num(ins?.lap_time_s) ?? c.lastLapT, bestT = num(ins?.best_lap_time_s) ?? c.bestLapT;
      const gap = i === 0 ? "Leader" : fmtGap(gapTo(c, leader));
      const intv = i === 0 ? "" : fmtGap(gapTo(c, cars[i - 1]));
      const tyre = s.tyre_age_laps != null ? `${s.tyre_compound ? String(s.tyre_compound)[0].toUpperCase() : ""}${s.tyre_age_laps}` : "—";
      const pit = pitText(s.pit_status) || (ins?.validity?.pit ? "in" : "");
      const vals = [String(s.position ?? ""), c.id, gap, intv, fmtLap(lastT), fmtLap(bestT), tyre, pit];
      for (let j = 0; j < TOWER_COLS; j++) if (c.txt[j] !== vals[j]) { c.cells[j].textContent = vals[j]; c.txt[j] = vals[j]; }
      const pb = lastT != null && bestT != null && Math.abs(lastT - bestT) < 1e-6;
      c.cells[4].className = pb ? "pb" : "";
      c.cells[7].className = pit ? "pit" : "";
      const sel = c.id === S.selected ? "sel" : "";
      if (c.row.className !== sel) c.row.className = sel;
      // keep DOM order = position order, moving only rows that are out of place
      const want = prevEl ? prevEl.nextSibling : body.firstChild;
      if (want !== c.row) body.insertBefore(c.row, want);
      prevEl = c.row;
    }
    const lap = leader.last?.lap;
    setText($("tower-sub"), `${cars.length} cars${lap != null ? ` · leader on lap ${lap}` : ""}`);
    setText($("session"), [S.track, S.session].filter(Boolean).join(" · "));
  }

  // ---------------------------------------------------------------- render: car view (uPlot)
  let charts = null, xs = new Float64Array(0), chartH = 110;
  function traceHeight() { return Math.max(80, Math.min(170, Math.floor((window.innerHeight - 600) / 3))); }
  function makeCharts() {
    if (typeof uPlot === "undefined") return null;
    chartH = traceHeight();
    const axis = (label, extra = {}) => ({ stroke: "#8d96a7", grid: { stroke: "#232836", width: 1 }, ticks: { stroke: "#232836" }, size: 44, label, labelSize: 14, font: "10px system-ui", labelFont: "10px system-ui", ...extra });
    const xaxis = { stroke: "#8d96a7", grid: { stroke: "#232836", width: 1 }, ticks: { stroke: "#232836", size: 4 }, size: 24, font: "10px system-ui", values: (u, v) => v.map((m) => (m >= 1000 ? (m / 1000).toFixed(1) + " km" : m + " m")) };
    const xscale = { time: false, range: () => [0, Math.max(S.trackLen, BIN_M * 10)] };
    const base = (el, series, scales, axes) => new uPlot({
      width: Math.max(200, el.clientWidth), height: chartH, series, scales: { x: xscale, ...scales }, axes: [xaxis, ...axes],
      cursor: { sync: { key: "pw-lap" }, points: { size: 5 }, drag: { x: false, y: false } },
      legend: { live: true }, padding: [4, 8, 0, 0],
    }, null, el);
    const s = (label, stroke, scale, dash) => ({ label, stroke, scale, width: dash ? 1 : 1.5, dash: dash ? [4, 3] : undefined, spanGaps: true, points: { show: false }, value: (u, v) => (v == null ? "—" : v.toFixed(1)) });
    const speed = base($("tr-speed"), [{ label: "dist", value: (u, v) => (v == null ? "—" : v.toFixed(0) + " m") },
      s("km/h", "#4fc3f7", "kmh"), s("best", "#c792ea", "kmh", true)],
      { kmh: { range: () => [0, Math.ceil(S.speedMax / 50) * 50] } }, [axis("km/h", { scale: "kmh" })]);
    const pedals = base($("tr-pedals"), [{ label: "dist", value: (u, v) => (v == null ? "—" : v.toFixed(0) + " m") },
      s("thr %", "#66bb6a", "pct"), s("brake " + (S.brakeUnit ?? ""), "#ef5350", "brk"), s("best", "#c792ea", "pct", true), s("best", "#b0708f", "brk", true)],
      { pct: { range: [0, 100] }, brk: { range: () => [0, S.brakeUnit === "%" ? 100 : Math.ceil(S.brakeMax)] } },
      [axis("thr %", { scale: "pct" }), axis(`brake ${S.brakeUnit ?? ""}`, { scale: "brk", side: 1, grid: { show: false } })]);
    const steer = base($("tr-steer"), [{ label: "dist", value: (u, v) => (v == null ? "—" : v.toFixed(0) + " m") },
      s("steer °", "#ffca28", "deg"), s("best", "#c792ea", "deg", true)],
      { deg: { range: () => { const m = Math.ceil(S.steerMax / 10) * 10; return [-m, m]; } } }, [axis("deg", { scale: "deg" })]);
    const ro = new ResizeObserver(() => { for (const u of [speed, pedals, steer]) u.setSize({ width: Math.max(200, u.root.parentElement.clientWidth), height: traceHeight() }); });
    for (const id of ["tr-speed", "tr-pedals", "tr-steer"]) ro.observe($(id));
    return { speed, pedals, steer, brakeUnit: S.brakeUnit, destroy() { ro.disconnect(); speed.destroy(); pedals.destroy(); steer.destroy(); } };
  }
  function padTo(a, n) {
    if (!a) return new Array(n).fill(null);
    if (a.length === n) return a;
    if (a.length > n) return a.slice(0, n);
    const out = a.slice(); while (out.length < n) out.push(null); return out;
  }
  function renderCar() {
    const car = S.cars.get(S.selected);
    setText($("car-id"), S.selected ?? "—");
    if (!car) return;
    const s = car.last || {};
    const ins = S.insights.get(car.id) ?? S.seeds.get(car.id);
    setText($("c-pos"), s.position != null ? `P${s.position}` : "—");
    setText($("c-lap"), s.lap != null ? String(s.lap) : "—");
    setText($("c-speed"), s.speed_kmh != null ? s.speed_kmh.toFixed(0) : "—");
    setText($("c-gear"), s.gear != null ? (s.gear === 0 ? "N" : s.gear < 0 ? "R" : String(s.gear)) : "—");
    setText($("c-rpm"), s.rpm != null ? s.rpm.toFixed(0) : "—");
    setText($("c-fuel"), s.fuel_kg != null ? s.fuel_kg.toFixed(1) : "—");
    setText($("c-tyre"), s.tyre_age_laps != null ? `${s.tyre_compound ?? ""} ${s.tyre_age_laps}L`.trim() : "—");
    // gaps ahead/behind: timing loops (live), else the lap model's (once per lap)
    const i = S.order.indexOf(car.id);
    const g = ins?.gaps;
    const pos = (x) => (x != null && x >= 0 ? x : null);
    const ahead = (i > 0 ? gapOf(gapTo(car, S.cars.get(S.order[i - 1]))) : null) ?? pos(num(g?.gap_ahead_s));
    const behind = (i >= 0 && i + 1 < S.order.length ? gapOf(gapTo(S.cars.get(S.order[i + 1]), car)) : null) ?? pos(num(g?.gap_behind_s));
    setText($("c-gapa"), ahead != null ? ahead.toFixed(2) : i === 0 ? "lead" : "—");
    setText($("c-gapb"), behind != null ? behind.toFixed(2) : "—");
    setText($("c-flags"), g ? [g.overtaking_opportunity ? "ATTACK" : "", g.under_pressure ? "DEFEND" : ""].filter(Boolean).join(" ") : "");
    setText($("cur-lap"), car.cur ? `(lap ${car.cur.lap})` : "");
    // time gained (-) or lost (+) against the best lap at the same distance
    let delta = null;
    const cb = car.cur?.lastBin ?? -1;
    if (car.best && car.cur && car.cur.startT != null && car.best.startT != null && cb >= 0) {
      const tc = car.cur.ch[6][cb], tb = car.best.ch[6][cb];
      if (tc != null && tb != null) delta = (tc - car.cur.startT) - (tb - car.best.startT);
    }
    const dEl = $("c-delta");
    setText(dEl, delta != null ? `${delta >= 0 ? "+" : "−"}${Math.abs(delta).toFixed(2)}` : "—");
    const dCls = delta == null ? "" : delta < 0 ? "gain" : "loss";
    if (dEl.className !== dCls) dEl.className = dCls;
    setText($("best-lap"), car.best ? `(lap ${car.bestLapNo}, ${fmtLap(car.bestLapT)})` : "(no whole lap seen yet)");

    if (!charts || charts.brakeUnit !== S.brakeUnit) {
      if (charts) charts.destroy();
      charts = makeCharts();
      if (!charts) return;
    }
    const n = Math.max(1, Math.ceil(S.trackLen / BIN_M) + 1);
    if (xs.length !== n) { xs = new Float64Array(n); for (let k = 0; k < n; k++) xs[k] = k * BIN_M; }
    const c = car.cur?.ch, b = car.best?.ch;
    charts.speed.setData([xs, padTo(c?.[0], n), padTo(b?.[0], n)]);
    charts.pedals.setData([xs, padTo(c?.[1], n), padTo(c?.[2], n), padTo(b?.[1], n), padTo(b?.[2], n)]);
    charts.steer.setData([xs, padTo(c?.[3], n), padTo(b?.[3], n)]);
  }
  function gapOf(g) { return typeof g === "number" ? g : null; }

  // ---------------------------------------------------------------- canvas helpers
  function fitCanvas(cv) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(cv.clientWidth * dpr)), h = Math.max(1, Math.round(cv.clientHeight * dpr));
    if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; return true; }
    return false;
  }

  // ---------------------------------------------------------------- render: g-g
  function renderGG() {
    const cv = $("gg"); fitCanvas(cv);
    const g = cv.getContext("2d"), W = cv.width, H = cv.height, dpr = window.devicePixelRatio || 1;
    g.clearRect(0, 0, W, H);
    const car = S.cars.get(S.selected);
    const R = Math.min(W, H) / 2 - 14 * dpr, cx = W / 2, cy = H / 2;
    // scale: the largest |g| seen, at least 1.5 g
    const gm = S.gMax;
    g.strokeStyle = "#262b37"; g.lineWidth = 1; g.fillStyle = "#8d96a7"; g.font = `${10 * dpr}px system-ui`;
    for (let r = 0.5; r <= gm + 1e-9; r += 0.5) { g.beginPath(); g.arc(cx, cy, (R * r) / gm, 0, Math.PI * 2); g.stroke(); }
    g.beginPath(); g.moveTo(cx - R, cy); g.lineTo(cx + R, cy); g.moveTo(cx, cy - R); g.lineTo(cx, cy + R); g.stroke();
    g.fillText(`rings 0.5 g · edge ${gm.toFixed(1)} g`, 4 * dpr, 12 * dpr);
    g.fillText("accel", cx + 3 * dpr, cy - R + 10 * dpr); g.fillText("brake", cx + 3 * dpr, cy + R - 2 * dpr);
    if (!car) return;
    let seen = gm;
    const plot = (tr, color, size) => {
      if (!tr) return;
      const ax = tr.ch[4], ay = tr.ch[5];
      g.fillStyle = color;
      for (let k = 0; k < ax.length; k++) {
        const x = ay[k], y = ax[k];
        if (x == null || y == null) continue;
        const a = Math.max(Math.abs(x), Math.abs(y)); if (a > seen) seen = a;
        g.fillRect(cx + (x / gm) * R - size / 2, cy - (y / gm) * R - size / 2, size, size);
      }
    };
    plot(car.best, "rgba(199,146,234,0.35)", 2 * dpr);
    plot(car.cur, "rgba(79,195,247,0.8)", 2 * dpr);
    const s = car.last;
    if (s && num(s.accx_can) != null && num(s.accy_can) != null) {
      g.fillStyle = "#fff"; g.beginPath(); g.arc(cx + (s.accy_can / gm) * R, cy - (s.accx_can / gm) * R, 4 * dpr, 0, Math.PI * 2); g.fill();
    }
    S.gMax = Math.min(6, Math.max(1.5, Math.ceil(seen * 2) / 2));
  }

  // ---------------------------------------------------------------- render: track map
  const mapCache = document.createElement("canvas");
  let mapProj = null, mapDrawn = { w: 0, h: 0, filled: -1, at: 0 };
  function buildProjection(W, H, pad) {
    const o = S.outline; let la0 = Infinity, la1 = -Infinity, lo0 = Infinity, lo1 = -Infinity;
    for (let i = 0; i < o.lat.length; i++) { const a = o.lat[i]; if (a == null) continue; const b = o.lon[i];
      if (a < la0) la0 = a; if (a > la1) la1 = a; if (b < lo0) lo0 = b; if (b > lo1) lo1 = b; }
    if (!Number.isFinite(la0)) return null;
    const k = Math.cos(((la0 + la1) / 2) * Math.PI / 180);
    const w = Math.max(1e-9, (lo1 - lo0) * k), h = Math.max(1e-9, la1 - la0);
    const sc = Math.min((W - 2 * pad) / w, (H - 2 * pad) / h);
    const ox = (W - w * sc) / 2, oy = (H - h * sc) / 2;
    return (lat, lon) => [ox + (lon - lo0) * k * sc, H - (oy + (lat - la0) * sc)];
  }
  function renderMap(now) {
    const cv = $("map"); const resized = fitCanvas(cv);
    const W = cv.width, H = cv.height, dpr = window.devicePixelRatio || 1, o = S.outline;
    // Rebuild the outline layer when it has grown (at most twice a second) or the canvas changed size.
    if (resized || mapDrawn.w !== W || mapDrawn.h !== H || (o.filled !== mapDrawn.filled && now - mapDrawn.at > 500)) {
      mapCache.width = W; mapCache.height = H;
      const g = mapCache.getContext("2d"); g.clearRect(0, 0, W, H);
      mapProj = S.gps ? buildProjection(W, H, 16 * dpr) : null;
      g.strokeStyle = "#3a4252"; g.lineWidth = 6 * dpr; g.lineJoin = g.lineCap = "round";
      if (mapProj) {
        g.beginPath(); let pen = false;
        for (let i = 0; i < o.lat.length; i++) {
          if (o.lat[i] == null) { pen = false; continue; }
          const [x, y] = mapProj(o.lat[i], o.lon[i]);
          if (pen) g.lineTo(x, y); else { g.moveTo(x, y); pen = true; }
        }
        g.stroke();
        if (o.lat[0] != null) { const [x, y] = mapProj(o.lat[0], o.lon[0]); g.strokeStyle = "#fff"; g.lineWidth = 2 * dpr; g.beginPath(); g.moveTo(x - 6 * dpr, y); g.lineTo(x + 6 * dpr, y); g.stroke(); }
      } else if (S.trackLen > 0) {
        // no GPS: lap distance around a circle
        g.beginPath(); g.arc(W / 2, H / 2, Math.min(W, H) / 2 - 16 * dpr, 0, Math.PI * 2); g.stroke();
      }
      mapDrawn = { w: W, h: H, filled: o.filled, at: now };
      setText($("map-sub"), S.gps ? "GPS" : S.trackLen > 0 ? "by lap distance (no GPS)" : "");
    }
    const g = cv.getContext("2d");
    g.clearRect(0, 0, W, H); g.drawImage(mapCache, 0, 0);
    if (!S.cars.size) return;
    g.font = `600 ${9 * dpr}px system-ui`; g.textAlign = "center"; g.textBaseline = "middle";
    let selXY = null;
    markers.length = 0;
    for (const id of S.order) {
      const c = S.cars.get(id); const s = c && c.last; if (!s) continue;
      let xy = null;
      if (mapProj && num(s.VBOX_Lat_Min) != null && num(s.VBOX_Long_Minutes) != null) xy = mapProj(s.VBOX_Lat_Min, s.VBOX_Long_Minutes);
      else if (!mapProj && num(s.lapdist_m) != null && S.trackLen > 0) {
        const a = (s.lapdist_m / S.trackLen) * Math.PI * 2 - Math.PI / 2, r = Math.min(W, H) / 2 - 16 * dpr;
        xy = [W / 2 + r * Math.cos(a), H / 2 + r * Math.sin(a)];
      }
      if (!xy) continue;
      markers.push([xy[0] / dpr, xy[1] / dpr, id]);
      if (id === S.selected) { selXY = [xy, s]; continue; }
      const pit = pitText(s.pit_status);
      g.fillStyle = pit ? "#ffca28" : "#5b6b86"; g.beginPath(); g.arc(xy[0], xy[1], 7 * dpr, 0, Math.PI * 2); g.fill();
      g.fillStyle = "#fff"; g.fillText(String(s.position ?? ""), xy[0], xy[1] + 0.5);
    }
    if (selXY) {
      const [[x, y], s] = selXY;
      g.fillStyle = "#4fc3f7"; g.beginPath(); g.arc(x, y, 9 * dpr, 0, Math.PI * 2); g.fill();
      g.strokeStyle = "#fff"; g.lineWidth = 2 * dpr; g.stroke();
      g.fillStyle = "#000"; g.fillText(String(s.position ?? ""), x, y + 0.5);
    }
  }
  const markers = [];
  $("map").addEventListener("click", (e) => {
    const r = e.target.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    let best = null, bd = 20 * 20;
    for (const [mx, my, id] of markers) { const dd = (mx - x) ** 2 + (my - y) ** 2; if (dd < bd) { bd = dd; best = id; } }
    if (best) select(best);
  });

  // ---------------------------------------------------------------- render: insight panels
  function wearColor(p) { // 0 % green -> 100 % red
    const h = Math.max(0, 120 - Math.min(100, p) * 1.6);
    return `hsl(${h} 45% 22%)`;
  }
  function renderInsight() {
    const id = S.selected, car = S.cars.get(id);
    const live = S.insights.get(id), seed = S.seeds.get(id), rec = live ?? seed;
    const src = live ? `lap ${live.lap ?? "?"} model` : seed ? "seed (REST)" : "";
    const waiting = "waiting for first completed lap";

    // Tyres: live telemetry wear/temperature per corner + the model's wear and loss per lap.
    const tw = car?.last?.tyre_wear_pct, tt = car?.last?.tyre_temp_c, mw = rec?.tire_wear ?? rec?.wear_pct;
    for (const c of ["fl", "fr", "rl", "rr"]) {
      const el = $("t-" + c), b = el.querySelector("b"), sm = el.querySelector("small");
      const w = num(tw?.[c]), m = num(mw?.[c]);
      const shown = w ?? m;
      setText(b, shown != null ? `${shown.toFixed(1)}%` : "—");
      el.style.background = shown != null ? wearColor(shown) : "";
      const parts = [];
      if (w != null && m != null) parts.push(`model ${m.toFixed(1)}%`);
      else if (w == null && m != null) parts.push("model");
      if (num(tt?.[c]) != null) parts.push(`${tt[c].toFixed(0)} °C`);
      setText(sm, parts.join(" · "));
    }
    setText($("tires-sub"), [tw ? "wear: telemetry" : "", src].filter(Boolean).join(" · "));
    const tm = $("tire-model");
    if (!rec) tm.innerHTML = `<dt>Model</dt><dd class="muted">${waiting}</dd>`;
    else {
      const loss = num(rec.predicted_loss_per_lap_seconds ?? rec.predicted_loss_per_lap_s);
      const iv0 = rec.loss_interval80_s, iv = Array.isArray(iv0) ? iv0 : iv0 && typeof iv0 === "object" ? [iv0.lo, iv0.hi] : null;
      const nd = '<span class="muted">not enough data</span>';
      const rows = [
        // Which predictor served: physics+trees, reported wear, timing only.
        ["Predictor", rec.predictor ? esc(rec.predictor) : '<span class="muted">—</span>'],
        ["Loss per lap", loss != null ? `${loss >= 0 ? "+" : ""}${loss.toFixed(2)} s${iv && num(iv[0]) != null && num(iv[1]) != null ? ` <span class="muted">(80%: ${iv[0].toFixed(2)}–${iv[1].toFixed(2)})</span>` : ""}` : nd],
        ["Laps until +0.5 s", num(rec.laps_until_0_5s_loss) != null ? String(rec.laps_until_0_5s_loss) : nd],
        // The tyre view alone (the call in the pit panel weighs it against the race).
        ["Tyres cross +0.5 s", num(rec.call?.tyres_cross_lap ?? rec.recommended_pit_lap) != null ? `L${rec.call?.tyres_cross_lap ?? rec.recommended_pit_lap}` : rec.tire_pit_note ? '<span class="muted">not before the flag</span>' : nd],
      ];
      if (num(rec.lap_tire_stress) != null) rows.push(["Lap tyre stress", rec.lap_tire_stress.toFixed(0)]);
      tm.innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
    }

    // Pit window and each plan's finish-position distribution.
    const pw = rec?.pit_window, pit = $("pit");
    if (!rec) pit.innerHTML = `<p class="note">${waiting}</p>`;
    else if (!pw || pw.status === "not_enough_data" || pw.status === "computing" || (pw.open_lap == null && !Array.isArray(pw.plans) && !pw.text)) {
      const call = rec.call && typeof rec.call === "object" && rec.call.text ? `<div class="call call-${esc(rec.call.action ?? "")}"><b>${esc(rec.call.text)}</b></div>` : "";
      pit.innerHTML = `${call}<p class="note">${pw && pw.status === "computing" ? "the race view is being simulated" : "not enough data for a pit window yet"}${pw && pw.reason ? `: ${esc(pw.reason)}` : ""}</p>`;
    }
    else {
      const lap = car?.last?.lap;
      const open = num(pw.open_lap), close = num(pw.close_lap);
      const state = open != null && close != null && lap != null ? (lap < open ? `opens in ${open - lap} laps` : lap <= close ? "OPEN now" : "closed") : "";
      // The one call (tyre view and race view reconciled, with the reason), then the race view.
      const call = rec.call && typeof rec.call === "object" && rec.call.text ? rec.call : null;
      let h = call ? `<div class="call call-${esc(call.action ?? "")}"><b>${esc(call.text)}</b></div>` : "";
      h += `<div class="window">${esc(pw.text ?? (open != null && close != null ? `Box between laps ${open} and ${close}` : ""))} <span class="muted">${esc(state)}</span></div>`;
      const allPlans = Array.isArray(pw.plans) ? pw.plans : [];
      // the best plans first (as sent); the named best plan always shown
      let plans = S.pitAll ? allPlans : allPlans.slice(0, PLANS_SHOWN);
      const bp = allPlans.find((p) => p.name === pw.best_plan);
      if (bp && !plans.includes(bp)) plans = [bp, ...plans.slice(0, PLANS_SHOWN - 1)];
      if (plans.length) {
        h += `<table><tr><th>Plan</th><th>E[P]</th><th>Win</th><th>P5</th><th>finish P1 → P${Math.max(...plans.map((p) => (p.position_distribution || []).length), 1)}</th></tr>`;
        for (const p of plans) {
          const dist = Array.isArray(p.position_distribution) ? p.position_distribution : [];
          const mx = Math.max(1e-9, ...dist.map((x) => num(x) ?? 0));
          const bars = dist.map((x, k) => `<i class="${k === 0 ? "p1" : ""}" data-h="${(((num(x) ?? 0) / mx) * 100).toFixed(0)}" title="P${k + 1}: ${((num(x) ?? 0) * 100).toFixed(1)}%"></i>`).join("");
          const best = p.name === pw.best_plan ? "bestplan" : "";
          h += `<tr class="${best}"><td title="pit laps: ${esc((p.pit_laps || []).join(", ") || "none")}">${esc(p.name ?? "?")}</td>` +
            `<td>${num(p.expected_position) != null ? p.expected_position.toFixed(1) : "—"}</td>` +
            `<td>${num(p.win_probability) != null ? (p.win_probability * 100).toFixed(0) + "%" : "—"}</td>` +
            `<td>${num(p.p5_position) != null ? "P" + p.p5_position : "—"}</td><td><div class="dist">${bars}</div></td></tr>`;
        }
        h += "</table>";
        if (allPlans.length > PLANS_SHOWN) h += `<button type="button" class="more" data-act="plans">${S.pitAll ? `top ${PLANS_SHOWN} plans` : `all ${allPlans.length} plans`}</button>`;
      }
      h += `<div class="muted">${pw.best_plan ? `best plan: ${esc(pw.best_plan)}` : ""}${num(pw.as_of_lap) != null ? ` · as of lap ${pw.as_of_lap}` : ""}${num(pw.races_simulated) != null ? ` · ${pw.races_simulated} races simulated` : ""}</div>`;
      pit.innerHTML = h;
      // Bar heights through the CSSOM: the page's CSP allows no inline style attributes.
      for (const i of pit.querySelectorAll("i[data-h]")) i.style.height = `${i.dataset.h}%`;
    }

    // Radio: the three sentences, and the button that speaks them.
    const lines = radioLines(), radio = $("radio");
    radio.innerHTML = lines.length ? lines.map((l) => `<li>${esc(l)}</li>`).join("") : `<li class="note">${rec ? "not enough data" : waiting}</li>`;
    const canSpeak = lines.length > 0 && "speechSynthesis" in window;
    $("speak").disabled = !canSpeak;
    $("speak").title = "speechSynthesis" in window ? "Speak (S)" : "this browser has no speech synthesis";
  }

  function renderCoach() {
    const list = S.coachAll ? S.alerts : S.alerts.filter((a) => (a.chassis ?? a.car_id) === S.selected);
    const el = $("coach");
    if (!list.length) { el.innerHTML = `<li class="note">${S.alerts.length ? "no alerts for this car yet" : "waiting for coaching alerts"}</li>`; return; }
    const rows = [];
    for (let i = list.length - 1; i >= 0 && rows.length < 60; i--) {
      const a = list[i], d = num(a.expected_delta_s);
      const meta = [S.coachAll ? a.chassis ?? a.car_id : null, a.lap != null ? `L${a.lap}` : null, a.corner_name ?? (a.corner != null ? `T${a.corner}` : null),
        d != null ? `${d > 0 ? "+" : ""}${d.toFixed(2)} s` : null, num(a.z) != null ? `z ${a.z.toFixed(1)}` : null].filter(Boolean).join(" · ");
      rows.push(`<li class="${d != null && d < 0 ? "gain" : ""}"><span class="meta">${esc(meta)}</span>${esc(a.message ?? a.metric ?? "")}</li>`);
    }
    el.innerHTML = rows.join("");
  }

  // ---------------------------------------------------------------- render: health & connection
  function renderConn(now) {
    const el = $("conn"), c = S.conn;
    let state = c.state, txt;
    if (state === "live" && now - c.lastMsgAt > 3000) { state = "stale"; txt = `no data for ${((now - c.lastMsgAt) / 1000).toFixed(0)} s`; }
    else if (state === "live") txt = "live";
    else if (state === "reconnecting") txt = `reconnecting in ${Math.max(0, (c.reconnectAt - now) / 1000).toFixed(1)} s (try ${c.attempts})`;
    else txt = state;
    if (el.dataset.state !== state) el.dataset.state = state;
    const title = c.lastError ? `server: ${c.lastError}` : `${c.opened} connection(s) to /ws/realtime`;
    if (el.title !== title) el.title = title;
    setText(el, txt);
    document.body.classList.toggle("offline", state === "reconnecting" || state === "connecting" && c.opened > 0);
  }
  function frameSummary(arr) {
    if (!arr.length) return null;
    const a = Float64Array.from(arr).sort();
    const q = (p) => a[Math.min(a.length - 1, Math.floor(p * a.length))];
    let sum = 0; for (const v of a) sum += v;
    return { n: a.length, mean: sum / a.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: a[a.length - 1] };
  }
  function renderHealth(now) {
    const dt = (now - stats.rateAt) / 1000;
    if (dt >= 1) {
      stats.ratePts = stats.ptsWin / dt; stats.rateMsgs = stats.msgsWin / dt; stats.ptsWin = stats.msgsWin = 0; stats.rateAt = now;
      stats.backlogWin = stats.backlogMax; stats.backlogMax = 0;
    }
    setText($("h-pts"), `${stats.ratePts.toFixed(0)} points/s · ${stats.rateMsgs.toFixed(0)} msg/s · ≤${stats.backlogWin} msg/frame`);
    const v = M.view;
    setText($("h-acc"), v.ok === false ? "metrics unreachable" : v.accRate != null ? `${v.accRate.toFixed(0)} points/s` : "—");
    setText($("h-lag"), v.latAvg != null ? `avg ${(v.latAvg * 1000).toFixed(1)} ms · p95 ≤ ${Number.isFinite(v.latP95) ? (v.latP95 * 1000).toFixed(0) + " ms" : "∞"}` : "—");
    const drops = v.ring != null ? `ring ${v.ring} · ws clients ${v.wsDrop ?? 0} · rejected ${v.rej ?? 0}` : "—";
    setText($("h-drops"), drops);
    $("h-drops").className = (v.ring || v.wsDrop) ? "bad" : "";
    setText($("h-clients"), v.clients != null ? String(v.clients) : "—");
    const fs = frameSummary(stats.frameDt.slice(-120));
    setText($("h-frame"), fs ? `${fs.mean.toFixed(1)} ms avg · p95 ${fs.p95.toFixed(1)} ms · ${(1000 / fs.mean).toFixed(0)} fps` : "—");
    const liveIns = S.insights.get(S.selected);
    setText($("h-seed"), liveIns ? `live, lap ${liveIns.lap ?? "?"}` : S.seedStatus.get(S.selected) ?? "—");
  }

  // ---------------------------------------------------------------- frame loop
  let frameNo = 0, lastHealth = 0, lastMetrics = -Infinity, lastTyres = 0;
  function timed(part, fn) {
    const a = performance.now();
    fn();
    const d = performance.now() - a;
    if (d > (stats.partMax[part] ?? 0)) stats.partMax[part] = d;
  }
  function frame(now) {
    const t0 = performance.now();
    if (stats.lastFrame) { stats.frameDt.push(now - stats.lastFrame); if (stats.frameDt.length > 30000) stats.frameDt.splice(0, 10000); }
    stats.lastFrame = now;
    if (stats.msgsThisFrame > stats.maxMsgsPerFrame) stats.maxMsgsPerFrame = stats.msgsThisFrame;
    if (stats.msgsThisFrame > stats.backlogMax) stats.backlogMax = stats.msgsThisFrame;
    stats.msgsThisFrame = 0;
    const phase = frameNo++ % 6; // spread the heavier panels over frames: each at ~10 Hz
    renderConn(now);
    const firstPaint = stats.firstDataMs == null && S.cars.size > 0; // first data: draw the tower at once
    if ((phase === 0 || firstPaint) && S.dirty.tower) { S.dirty.tower = false; timed("tower", renderTower); }
    if (phase === 2 && S.dirty.car) { S.dirty.car = false; timed("car", renderCar); }
    if (phase === 4) timed("gg", renderGG);
    if (phase === 3 && S.dirty.insight) {
      S.dirty.insight = false; timed("insight", renderInsight);
      if (S.selected && !S.insights.has(S.selected)) fetchSeed(S.selected);
    }
    if (phase === 5 && S.dirty.coach) { S.dirty.coach = false; timed("coach", renderCoach); }
    if (now - lastTyres > 1000) { lastTyres = now; S.dirty.insight = true; } // live tyre wear/temps ~1 Hz
    timed("map", () => renderMap(now));
    if (now - lastHealth > 500) { lastHealth = now; timed("health", () => renderHealth(now)); }
    if (now - lastMetrics > 2000 && !document.hidden) { lastMetrics = now; pollMetrics(); }
    stats.work.push(performance.now() - t0); if (stats.work.length > 30000) stats.work.splice(0, 10000);
    requestAnimationFrame(frame);
  }

  // ---------------------------------------------------------------- hooks for the browser test
  window.pitwall = {
    /** Frame-time and message figures since the last reset. */
    stats() {
      const fs = frameSummary(stats.frameDt), ws = frameSummary(stats.work);
      const slow = stats.frameDt.filter((d) => d > 1000 / 60 * 1.5).length;
      return {
        frames: fs, work: ws, slowFrames: slow, fps: fs ? 1000 / fs.mean : 0,
        renderMaxMsByPanel: { ...stats.partMax }, msgs: stats.msgs, points: stats.pts, msgHandlerMs: stats.msgMs, maxMsgsPerFrame: stats.maxMsgsPerFrame,
        reconnects: stats.reconnects, insights: stats.insights, alerts: stats.alerts,
        firstDataMs: stats.firstDataMs, latestT: stats.latestT, latestAt: stats.latestAt, now: performance.now(),
        conn: S.conn.state, cars: S.cars.size, selected: S.selected, trackLen: S.trackLen, session: S.session,
      };
    },
    resetStats() { stats.frameDt = []; stats.work = []; stats.partMax = {}; stats.msgs = stats.pts = stats.msgMs = stats.maxMsgsPerFrame = 0; },
    /** Feeds one message as if it came from /ws/realtime. */
    handle(m) { msgNow = performance.now(); handle(m); },
    select, state: S,
  };

  connect();
  requestAnimationFrame(frame);
})();
