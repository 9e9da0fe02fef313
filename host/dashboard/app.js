// The monitor dashboard: the host's API and live stream, drawn. Everything here
// goes through the same authenticated API as the CLI; the token comes in the
// URL's fragment (never sent to a server) and is kept for this tab only.
"use strict";

const TOKEN_KEY = "monitor-token";
const RANGES = { "15m": 900e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
const PANELS = ["machine", "runs", "alerts", "plugins", "jobs", "series", "fleet"];
const TITLES = { machine: "Machine", runs: "Runs", alerts: "Alerts", plugins: "Plugins", jobs: "Watch jobs", series: "Picked series", fleet: "Fleet" };

// The machine's charts: each line is a series of `name`, one per value of `per`.
const MACHINE = [
  { title: "CPU %", lines: [{ name: "monitor_cpu_usage_percent", label: "total" }, { name: "monitor_cpu_core_usage_percent", per: "core", label: "core " }], unit: "%" },
  { title: "Memory", lines: [{ name: "monitor_memory_used_bytes", label: "used" }, { name: "monitor_swap_used_bytes", label: "swap used" }], unit: "B" },
  { title: "Load", lines: [{ name: "monitor_load1", label: "1m" }, { name: "monitor_load5", label: "5m" }, { name: "monitor_load15", label: "15m" }] },
  { title: "Disk space used %", lines: [{ name: "monitor_disk_available_bytes", per: "mount", usedOf: "monitor_disk_total_bytes" }], unit: "%" },
  { title: "Disk read/write", lines: [{ name: "monitor_disk_read_bytes_per_second", per: "device", label: "read " }, { name: "monitor_disk_write_bytes_per_second", per: "device", label: "write " }], unit: "B/s" },
  { title: "Network receive/transmit", lines: [{ name: "monitor_network_receive_bytes_per_second", per: "interface", label: "rx " }, { name: "monitor_network_transmit_bytes_per_second", per: "interface", label: "tx " }], unit: "B/s" },
  { title: "This host: CPU % and memory", lines: [{ name: "monitor_host_cpu_percent", label: "cpu %" }, { name: "monitor_host_rss_bytes", label: "rss", scale: "B" }], unit: "%" },
];
const HEALTH_SERIES = ["monitor_ticks_total", "monitor_database_healthy", "monitor_tick_duration_p99_seconds"];

const state = {
  token: null,
  layout: { panels: PANELS.map((id) => ({ id, hidden: false })), range: "1h", series: [], theme: null },
  layoutName: "default",
  layouts: [],
  charts: new Map(), // id -> chart
  runs: [], openRun: null, alerts: [], plugins: [], jobs: [],
  live: false, lastTick: null, ticks: null, databaseHealthy: true,
  cursor: null, stream: null, dropped: false,
};

const $ = (sel) => document.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

// ---- the API -------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, (json && json.error) || `${res.status} ${res.statusText}`);
  return json;
}

function notice(text, bad = true) {
  const n = $("#notice");
  n.textContent = text;
  n.className = "notice " + (bad ? "bad" : "good");
  n.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => (n.hidden = true), 6000);
}

// ---- formatting ----------------------------------------------------------

function human(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (unit === "B" || unit === "B/s") {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}${unit === "B/s" ? "/s" : ""}`;
  }
  if (unit === "%") return `${v.toFixed(1)}%`;
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

// Axis labels with as many decimals as the ticks' step needs, so close ticks differ.
function ticks(vals, unit) {
  if (unit === "B" || unit === "B/s") return vals.map((v) => human(v, unit));
  const step = vals.length > 1 ? Math.abs(vals[1] - vals[0]) : 1;
  const decimals = step >= 1 || step === 0 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  return vals.map((v) => (v === null ? "" : v.toFixed(decimals) + (unit === "%" ? "%" : "")));
}

const clock = (ms) => new Date(ms).toLocaleTimeString();
const labelsKey = (labels) => Object.entries(labels || {}).sort().map(([k, v]) => `${k}=${v}`).join(",");

// ---- charts ----------------------------------------------------------------

const PALETTE = ["#1967d2", "#e8710a", "#188038", "#d93025", "#9334e6", "#12b5cb", "#f9ab00", "#c5221f", "#5f6368", "#b06000"];

// A chart keeps each line's points ([t seconds, value]) and redraws from them.
class Chart {
  constructor(id, spec, container) {
    this.id = id;
    this.spec = spec;
    this.lines = new Map(); // key -> {label, points: [[t, v]], scale}
    this.totals = new Map(); // for usedOf: labels key -> latest total
    this.box = el("div", { class: "chart", "data-chart": id }, el("h3", {}, spec.title), el("div", { class: "empty" }, "no samples yet"));
    container.append(this.box);
    this.plot = null;
    this.shape = "";
  }

  names() {
    return this.spec.lines.flatMap((l) => (l.usedOf ? [l.name, l.usedOf] : [l.name]));
  }

  lineFor(sample) {
    for (const l of this.spec.lines) {
      if (l.usedOf === sample.name) return { total: true, l };
      if (l.name !== sample.name) continue;
      const per = l.per ? sample.labels[l.per] ?? "" : "";
      const key = `${l.name}|${l.per ? per : labelsKey(sample.labels)}`;
      const label = l.per ? `${l.label ?? ""}${per}` : l.label ?? (labelsKey(sample.labels) || sample.name);
      return { key, label, l };
    }
    return null;
  }

  add(sample, atMs, value) {
    const found = this.lineFor(sample);
    if (!found) return;
    if (found.total) {
      this.totals.set(found.l.per ? sample.labels[found.l.per] ?? "" : "", value);
      return;
    }
    let line = this.lines.get(found.key);
    if (!line) {
      line = { label: found.label, points: [], scale: found.l.scale, usedOf: found.l.usedOf, per: found.l.per ? sample.labels[found.l.per] ?? "" : "" };
      this.lines.set(found.key, line);
    }
    const t = atMs / 1000;
    const last = line.points[line.points.length - 1];
    if (last && last[0] >= t) return; // history and live overlap: keep one
    line.points.push([t, value]);
  }

  trim(sinceMs) {
    const since = sinceMs / 1000;
    for (const line of this.lines.values()) {
      let i = 0;
      while (i < line.points.length && line.points[i][0] < since) i++;
      if (i) line.points.splice(0, i);
    }
  }

  clear() { this.lines.clear(); }

  value(line, v) {
    if (!line.usedOf) return v;
    const total = this.totals.get(line.per);
    return total ? 100 * (1 - v / total) : null;
  }

  draw() {
    const lines = [...this.lines.values()].filter((l) => l.points.length).sort((a, b) => a.label.localeCompare(b.label, undefined, { numeric: true }));
    const empty = this.box.querySelector(".empty");
    if (!lines.length || typeof uPlot === "undefined") {
      if (empty) empty.hidden = false;
      return;
    }
    if (empty) empty.hidden = true;
    // One x axis: every time any line has a point (ticks share their time).
    const times = [...new Set(lines.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b);
    const index = new Map(times.map((t, i) => [t, i]));
    const data = [times];
    for (const line of lines) {
      const ys = new Array(times.length).fill(null);
      for (const [t, v] of line.points) ys[index.get(t)] = this.value(line, v);
      data.push(ys);
    }
    const shape = lines.map((l) => l.label).join("\u0000");
    const width = Math.max(280, this.box.clientWidth || 400);
    if (this.plot && shape === this.shape) {
      this.plot.setData(data);
      if (Math.abs(this.plot.width - width) > 4) this.plot.setSize({ width, height: 180 });
      return;
    }
    if (this.plot) this.plot.destroy();
    this.shape = shape;
    const unit = this.spec.unit;
    const dark = document.documentElement.classList.contains("dark");
    const grid = { stroke: dark ? "#3a3e44" : "#e4e6e8", width: 1 };
    const axis = { stroke: dark ? "#a0a4a8" : "#5f6368", grid, ticks: grid };
    const hasSecond = lines.some((l) => l.scale);
    const opts = {
      width, height: 180,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [axis, { ...axis, size: 80, values: (u, vals) => ticks(vals, unit) }]
        .concat(hasSecond ? [{ ...axis, side: 1, scale: "B", size: 80, grid: { show: false }, values: (u, vals) => ticks(vals, "B") }] : []),
      series: [{}].concat(lines.map((l, i) => ({
        label: l.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false, scale: l.scale || "y",
        value: (u, v) => human(v, l.scale || unit),
      }))),
    };
    this.box.querySelector(".uplot")?.remove();
    this.plot = new uPlot(opts, data, this.box);
    if (!performance.getEntriesByName("monitor-first-chart").length) performance.mark("monitor-first-chart");
  }
}

async function loadHistory(chart, sinceMs) {
  chart.clear();
  const names = [...new Set(chart.names())];
  const answers = await Promise.all(names.map((n) => api(`/v1/metrics/history?name=${encodeURIComponent(n)}&since_ms=${Math.floor(sinceMs)}`)));
  for (const series of answers.flat()) {
    for (const p of series.points) chart.add(series, p.at_ms, p.value);
  }
  chart.draw();
}

// ---- panels ----------------------------------------------------------------

function panelBox(id) {
  const info = state.layout.panels.find((p) => p.id === id);
  const move = (delta) => () => {
    const list = state.layout.panels;
    const i = list.findIndex((p) => p.id === id);
    const j = i + delta;
    if (j < 0 || j >= list.length) return;
    [list[i], list[j]] = [list[j], list[i]];
    arrange();
  };
  const hide = () => {
    info.hidden = !info.hidden;
    arrange();
    if (id === "fleet" && !info.hidden) refreshFleet().catch((e) => notice(e.message));
  };
  const body = el("div", { class: "body" });
  const box = el("section", { class: `panel ${id === "machine" || id === "runs" || id === "fleet" ? "wide" : ""}`, id: `panel-${id}`, "data-panel": id },
    el("header", {}, el("h2", {}, TITLES[id]),
      el("button", { type: "button", title: "Move up", onclick: move(-1) }, "↑"),
      el("button", { type: "button", title: "Move down", onclick: move(1) }, "↓"),
      el("button", { type: "button", class: "hide", title: "Hide or show", onclick: hide }, info?.hidden ? "show" : "hide")),
    body);
  return box;
}

function arrange() {
  const main = $("#panels");
  for (const p of state.layout.panels) {
    let box = document.getElementById(`panel-${p.id}`);
    if (!box) { box = panelBox(p.id); build(p.id, box.querySelector(".body")); }
    main.append(box);
    box.querySelector(".body").hidden = p.hidden;
    box.querySelector("button.hide").textContent = p.hidden ? "show" : "hide";
  }
  for (const c of state.charts.values()) c.draw();
}

function build(id, body) {
  if (id === "machine") {
    const charts = el("div", { class: "charts" });
    body.append(charts);
    MACHINE.forEach((spec, i) => state.charts.set(`machine-${i}`, new Chart(`machine-${i}`, spec, charts)));
  } else if (id === "series") {
    const pick = el("select", { id: "series-pick", "aria-label": "A series to chart" });
    const add = el("button", { type: "button", onclick: () => { if (pick.value && !state.layout.series.includes(pick.value)) { state.layout.series.push(pick.value); seriesCharts(); restartStream(); } } }, "Chart it");
    body.append(el("p", {}, pick, " ", add), el("div", { class: "charts", id: "series-charts" }));
  } else {
    body.append(el("div", { id: `${id}-body` }, el("p", { class: "muted" }, "loading…")));
  }
}

async function seriesOptions() {
  const listing = await api("/v1/metrics/series");
  const names = [...new Set(listing.series.map((s) => s.name))].sort();
  const pick = $("#series-pick");
  if (!pick) return;
  pick.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
}

function seriesCharts() {
  const box = $("#series-charts");
  if (!box) return;
  for (const [id, chart] of state.charts) {
    if (id.startsWith("series:") && !state.layout.series.includes(id.slice(7))) { chart.box.remove(); state.charts.delete(id); }
  }
  for (const name of state.layout.series) {
    const id = `series:${name}`;
    if (state.charts.has(id)) continue;
    const chart = new Chart(id, { title: name, lines: [{ name }] }, box);
    chart.box.querySelector("h3").append(" ", el("button", { type: "button", title: "Remove", onclick: () => { state.layout.series = state.layout.series.filter((s) => s !== name); seriesCharts(); restartStream(); } }, "×"));
    state.charts.set(id, chart);
    loadHistory(chart, Date.now() - RANGES[state.layout.range]).catch((e) => notice(`${name}: ${e.message}`));
  }
}

// Runs: the list, running first; a click opens a run's tree and its timeline.
const RUN_ORDER = { running: 0, paused: 1, pending: 2, failed: 3, cancelled: 4, completed: 5 };

function bar(node) {
  const pct = Math.max(0, Math.min(100, 100 * (node.progress || 0)));
  return el("div", { class: `bar ${node.status}`, role: "progressbar", "aria-valuenow": pct.toFixed(0), "aria-valuemin": "0", "aria-valuemax": "100" }, el("span", { style: null }));
}

function setBars(root) {
  // Widths through the CSSOM: the Content-Security-Policy allows no inline style attributes.
  for (const b of root.querySelectorAll(".bar")) b.firstChild.style.width = `${b.getAttribute("aria-valuenow")}%`;
}

// The host's answer (the same in status, top and the API): seconds left, or since when it stalled.
function eta(node, now) {
  const pace = node.pace || {};
  if (node.status === "completed" || node.status === "failed" || node.status === "cancelled") return "–";
  if (pace.stalled_since_ms) return `stalled ${duration(now - pace.stalled_since_ms)}`;
  if (pace.eta_secs !== undefined) return duration(pace.eta_secs * 1000);
  return "–";
}

function rate(node, now) {
  if (!node.started_ms || !node.done) return "–";
  const end = node.finished_ms || now;
  const secs = (end - node.started_ms) / 1000;
  return secs > 0 ? `${human(node.done / secs)}/s` : "–";
}

async function refreshRuns() {
  const runs = await api("/v1/runs");
  runs.sort((a, b) => (RUN_ORDER[a.status] ?? 9) - (RUN_ORDER[b.status] ?? 9) || b.updated_ms - a.updated_ms);
  state.runs = runs;
  const now = Date.now();
  const rows = runs.map((r) => el("tr", { class: "run-row", "data-run": r.path, onclick: () => openRun(r.path === state.openRun ? null : r.path) },
    el("td", {}, r.path), el("td", {}, r.status), el("td", {}, bar(r)), el("td", { class: "num" }, `${(100 * r.progress).toFixed(1)}%`),
    el("td", { class: "num" }, rate(r, now)), el("td", { class: "num" }, eta(r, now)), el("td", { class: "muted" }, r.message || "")));
  const body = $("#runs-body");
  if (!body) return;
  const table = runs.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ["run", "status", "progress", "", "rate", "ETA", "message"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", { class: "muted" }, "No runs yet: report one with 'monitor progress start RUN' or POST /v1/progress/RUN.");
  body.replaceChildren(table, el("div", { id: "run-detail" }));
  setBars(body);
  if (state.openRun) await openRun(state.openRun);
}

async function openRun(run) {
  state.openRun = run;
  const detail = $("#run-detail");
  if (!detail) return;
  if (!run) { detail.replaceChildren(); return; }
  const [nodes, events] = await Promise.all([api(`/v1/runs/${run.split("/").map(encodeURIComponent).join("/")}`), api(`/v1/runs/${encodeURIComponent(run)}/events?since=0`)]);
  const now = Date.now();
  const rows = nodes.map((n) => {
    const depth = n.path.split("/").length - 1;
    const took = n.started_ms ? duration((n.finished_ms || now) - n.started_ms) : "–";
    const name = el("td", {}, "\u2003".repeat(depth) + n.path.split("/").pop());
    return el("tr", { "data-node": n.path }, name, el("td", {}, n.status), el("td", {}, bar(n)), el("td", { class: "num" }, `${(100 * n.progress).toFixed(1)}%`),
      el("td", { class: "num" }, n.total ? `${human(n.done)}/${human(n.total)}` : human(n.done)), el("td", { class: "num" }, took), el("td", { class: "num" }, eta(n, now)),
      el("td", { class: "num" }, n.resources ? `${n.resources.cpu_secs.toFixed(1)}s` : "–"), el("td", { class: "num" }, n.resources ? human(n.resources.rss_peak_bytes, "B") : "–"),
      el("td", { class: "muted" }, n.message || ""));
  });
  const timeline = events.slice(-100).reverse().map((e) => el("tr", {}, el("td", { class: "muted" }, clock(e.at_ms ?? e.update?.at_ms ?? now)), el("td", {}, e.path),
    el("td", {}, e.update?.op ?? ""), el("td", { class: "muted" }, e.update?.message ?? e.applied ?? "")));
  detail.replaceChildren(el("h3", {}, run),
    el("table", { class: "tree" }, el("thead", {}, el("tr", {}, ["node", "status", "progress", "", "done", "took", "ETA", "CPU", "peak memory", "message"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)),
    el("h3", {}, "Timeline"), el("div", { class: "events" }, el("table", {}, el("tbody", {}, timeline))));
  setBars(detail);
}

// Alerts: as they stand, with what a person does about them; then the history.
async function refreshAlerts() {
  const [alerts, history] = await Promise.all([api("/v1/alerts"), api(`/v1/alerts/history?since_ms=${Date.now() - 86400e3}&limit=1000`)]);
  state.alerts = alerts;
  const body = $("#alerts-body");
  if (!body) return;
  const shown = alerts.filter((a) => a.state !== "resolved" && a.state !== "inactive");
  const act = (a) => {
    const buttons = [];
    if (a.state === "firing") buttons.push(el("button", { type: "button", "data-action": "ack", onclick: () => ack(a) }, "Acknowledge"));
    if (a.state === "firing" || a.state === "acknowledged") buttons.push(el("button", { type: "button", "data-action": "resolve", onclick: () => resolve(a) }, "Resolve"));
    buttons.push(el("select", { "aria-label": "Silence for", onchange: (e) => { if (e.target.value) silence(a, e.target.value); } },
      el("option", { value: "" }, "Silence…"), ...["1h", "4h", "24h", "7d"].map((d) => el("option", { value: d }, d))));
    return buttons;
  };
  const rows = shown.map((a) => el("tr", { "data-alert": a.id },
    el("td", { class: `level-${a.level}` }, a.level.toUpperCase()), el("td", {}, a.rule),
    el("td", {}, a.silenced ? `${a.state} (silenced)` : a.state, a.ack ? el("div", { class: "muted" }, `by ${a.ack.by}${a.ack.note ? ": " + a.ack.note : ""}`) : null),
    el("td", {}, a.message), el("td", { class: "muted" }, clock(a.since_ms)), el("td", {}, act(a))));
  const past = history.slice(-50).reverse().map((h) => el("tr", {}, el("td", { class: "muted" }, clock(h.at_ms)), el("td", { class: `level-${h.level}` }, h.level),
    el("td", {}, h.rule), el("td", {}, `${h.from} → ${h.to}`), el("td", { class: "muted" }, h.message)));
  body.replaceChildren(
    shown.length ? el("table", {}, el("thead", {}, el("tr", {}, ["level", "rule", "state", "message", "since", ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "good" }, "Nothing firing."),
    el("h3", {}, "The last 24 hours"), past.length ? el("div", { class: "events" }, el("table", {}, el("tbody", {}, past))) : el("p", { class: "muted" }, "No transitions."));
  health();
}

// The fleet: every host of the host's api.fleet_hosts, their runs and alerts in
// one table, each row naming its host; a host that did not answer is one line.
async function refreshFleet() {
  const body = $("#fleet-body");
  if (!body || state.noFleet || body.closest(".body").hidden) return;
  let look;
  try { look = await api("/v1/fleet"); }
  catch (e) {
    if (e.status !== 404) throw e;
    state.noFleet = true;
    body.replaceChildren(el("p", { class: "muted" }, `${e.message}; see "Many hosts" in the README.`));
    return;
  }
  const hosts = [...new Set([...look.rows.map((r) => r.host), ...look.unanswered.map((u) => u.host)])];
  if (state.fleetHost && !hosts.includes(state.fleetHost)) state.fleetHost = "";
  const picked = (host) => !state.fleetHost || host === state.fleetHost;
  const pick = el("select", { id: "fleet-host", "aria-label": "Host", onchange: (e) => { state.fleetHost = e.target.value; refreshFleet().catch((err) => notice(err.message)); } },
    el("option", { value: "" }, `All ${hosts.length} hosts`), ...hosts.map((h) => el("option", { value: h }, h)));
  pick.value = state.fleetHost || "";
  const rows = look.rows.filter((r) => picked(r.host)).map((r) => el("tr", { "data-fleet-host": r.host, "data-kind": r.kind },
    el("td", {}, r.host), el("td", {}, r.kind), el("td", {}, r.name), el("td", {}, r.state), el("td", { class: "muted" }, r.detail)));
  const silent = look.unanswered.filter((u) => picked(u.host)).map((u) => el("tr", { "data-fleet-host": u.host, "data-kind": "unanswered" },
    el("td", {}, u.host), el("td", { class: "bad", colspan: "4" }, `did not answer: ${u.error}`)));
  body.replaceChildren(el("p", {}, pick),
    rows.length + silent.length
      ? el("table", {}, el("thead", {}, el("tr", {}, ["host", "what", "name", "state", ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows, silent))
      : el("p", { class: "muted" }, "No runs or alerts on these hosts."));
}

async function ack(a) {
  const note = window.prompt(`Acknowledge ${a.rule}: a note for the others (optional)`, "");
  if (note === null) return;
  try { await api("/v1/alerts/ack", { method: "POST", body: { id: a.id, by: "dashboard", note } }); await refreshAlerts(); }
  catch (e) { notice(`acknowledging ${a.rule}: ${e.message}`); }
}

async function resolve(a) {
  try { await api("/v1/alerts/resolve", { method: "POST", body: { id: a.id } }); await refreshAlerts(); }
  catch (e) { notice(`resolving ${a.rule}: ${e.message}`); }
}

async function silence(a, duration) {
  try {
    await api("/v1/alerts/silences", { method: "POST", body: { matchers: { rule: a.rule, ...a.labels }, for: duration } });
    notice(`${a.rule} silenced for ${duration}`, false);
    await refreshAlerts();
  } catch (e) { notice(`silencing ${a.rule}: ${e.message}`); }
}

function pluginState(p) {
  const s = p.state || {};
  const why = s.reason || s.error || (s.missing ? `needs ${s.missing.join(", ")}` : s.granted_file ? "a new file: confirm with monitor plugins enable" : "");
  return [el("span", { class: s.state === "running" ? "good" : s.state === "quarantined" || s.state === "failed" ? "bad" : "warn" }, s.state), why ? el("div", { class: "muted" }, why) : null];
}

function showPlugins() {
  const body = $("#plugins-body");
  if (!body) return;
  const rows = state.plugins.map((p) => el("tr", { "data-plugin": p.name }, el("td", {}, p.name), el("td", {}, pluginState(p)),
    el("td", { class: "num" }, p.stats?.calls ?? 0), el("td", { class: "num" }, p.stats?.faults ?? 0),
    el("td", { class: "num" }, p.stats ? `${(p.stats.p50_us / 1000).toFixed(2)} / ${(p.stats.p99_us / 1000).toFixed(2)} ms` : "–"),
    el("td", { class: "num" }, human(p.stats?.memory_peak_bytes, "B"))));
  body.replaceChildren(state.plugins.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ["plugin", "state", "calls", "faults", "p50 / p99", "memory"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", { class: "muted" }, "No plugins."));
  health();
}

async function refreshPlugins() {
  state.plugins = (await api("/v1/plugins")).plugins;
  showPlugins();
}

async function refreshJobs() {
  state.jobs = await api("/v1/jobs");
  const body = $("#jobs-body");
  if (!body) return;
  const last = (j) => {
    if (!j.last) return "never";
    const o = j.last.outcome || {};
    const how = o.kind === "exited" ? `exit ${o.code}` : o.kind === "signaled" ? `signal ${o.signal}` : o.kind;
    return `#${j.last.seq} ${how}, ${duration(Date.now() - j.last.finished_ms)} ago`;
  };
  const rows = state.jobs.map((j) => el("tr", {}, el("td", {}, j.name), el("td", {}, j.state), el("td", { class: "num" }, j.runs), el("td", { class: "num" }, j.failures), el("td", {}, last(j))));
  body.replaceChildren(state.jobs.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ["job", "state", "runs", "failures", "last run"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", { class: "muted" }, "No watch jobs ([[watch]] in the host's configuration)."));
}

// ---- health at a glance -------------------------------------------------------

function health() {
  const now = Date.now();
  const pills = [];
  const pill = (text, good, title) => pills.push(el("span", { class: `pill ${good === true ? "good" : good === false ? "bad" : "warn"}`, title }, text));
  pill(state.live ? "live" : "reconnecting", state.live ? true : null, "The page's stream from the host");
  const fresh = state.lastTick !== null && now - state.lastTick < 5000;
  pill(fresh ? "ticks on time" : "no tick", fresh, "A machine sample came in the last 5 s");
  pill(state.databaseHealthy ? "database writable" : "database not writable", state.databaseHealthy);
  const quarantined = state.plugins.filter((p) => p.state?.state === "quarantined").length;
  pill(`${quarantined} quarantined`, quarantined === 0);
  const firing = state.alerts.filter((a) => a.state === "firing" && !a.silenced).length;
  pill(`${firing} firing`, firing === 0);
  $("#health").replaceChildren(...pills);
}

// ---- the stream ------------------------------------------------------------------

function streamSeries() {
  const names = new Set(HEALTH_SERIES);
  for (const c of state.charts.values()) for (const n of c.names()) names.add(n);
  return [...names].join(",");
}

const debounced = new Map();
function soon(key, f, ms = 250) {
  clearTimeout(debounced.get(key));
  debounced.set(key, setTimeout(() => f().catch((e) => notice(e.message)), ms));
}

function onMessage(msg) {
  if (msg.topic === "samples") {
    const at = msg.data.at_ms;
    state.lastTick = Date.now();
    for (const s of msg.data.samples) {
      if (s.name === "monitor_database_healthy") state.databaseHealthy = s.value >= 1;
      for (const c of state.charts.values()) c.add(s, s.timestamp_ms ?? at, s.value);
    }
    const since = Date.now() - RANGES[state.layout.range];
    for (const c of state.charts.values()) { c.trim(since); c.draw(); }
    health();
  } else if (msg.topic === "progress") {
    soon("runs", refreshRuns);
  } else if (msg.topic === "alerts") {
    soon("alerts", refreshAlerts);
  } else if (msg.topic === "plugins") {
    state.plugins = msg.data.plugins;
    showPlugins();
  } else if (msg.topic === "jobs") {
    soon("jobs", refreshJobs, 500);
  }
}

// Server-Sent Events read through fetch, so the token goes in a header, never a URL.
async function stream() {
  let wait = 500;
  for (;;) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const headers = { Authorization: `Bearer ${state.token}` };
      if (state.cursor) headers["Last-Event-ID"] = state.cursor;
      const res = await fetch(`/v1/stream?series=${encodeURIComponent(streamSeries())}`, { headers, signal: controller.signal, cache: "no-store" });
      if (res.status === 401) { logout("The host refused the token."); return; }
      if (!res.ok) throw new Error(`stream: ${res.status}`);
      state.live = true;
      health();
      // Back after a drop: what the stream does not replay (samples) is read again.
      if (state.dropped) { state.dropped = false; reload(); }
      wait = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        // What the stream costs the page, for the benchmarks.
        document.body.dataset.streamBytes = String(Number(document.body.dataset.streamBytes || 0) + value.length);
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let data = "", id = null;
          for (const line of block.split("\n")) {
            if (line.startsWith("data:")) data += line.slice(5).trimStart();
            else if (line.startsWith("id:")) id = line.slice(3).trim();
          }
          if (id) state.cursor = id;
          if (data) { try { onMessage(JSON.parse(data)); } catch (e) { console.error(e); } }
        }
      }
    } catch (e) {
      if (state.stream !== controller) return; // replaced on purpose
    }
    if (state.stream !== controller) return;
    state.live = false;
    state.dropped = true;
    health();
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 5000);
  }
}

function restartStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  stream();
}

// ---- layouts -----------------------------------------------------------------------

function applyTheme() {
  const dark = state.layout.theme ? state.layout.theme === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.classList.toggle("dark", dark);
  for (const c of state.charts.values()) { c.shape = ""; c.draw(); }
}

async function loadLayouts() {
  state.layouts = await api("/v1/dashboard/layouts");
  const pick = $("#layout");
  const names = state.layouts.map((l) => l.name);
  if (!names.includes(state.layoutName)) names.unshift(state.layoutName);
  pick.replaceChildren(...names.map((n) => el("option", { value: n, selected: n === state.layoutName }, n)));
}

function useLayout(name) {
  const saved = state.layouts.find((l) => l.name === name);
  state.layoutName = name;
  localStorage.setItem("monitor-layout", name);
  if (saved) {
    const known = new Set(PANELS);
    const panels = (saved.layout.panels || []).filter((p) => known.has(p.id));
    for (const id of PANELS) if (!panels.some((p) => p.id === id)) panels.push({ id, hidden: false });
    state.layout = { panels, range: RANGES[saved.layout.range] ? saved.layout.range : "1h", series: saved.layout.series || [], theme: saved.layout.theme || null };
  }
  $("#range").value = state.layout.range;
  applyTheme();
  arrange();
  seriesCharts();
}

async function saveLayout(name) {
  try {
    await api(`/v1/dashboard/layouts/${encodeURIComponent(name)}`, { method: "PUT", body: state.layout });
    state.layoutName = name;
    await loadLayouts();
    notice(`layout '${name}' saved in the host`, false);
  } catch (e) { notice(`saving layout '${name}': ${e.message}`); }
}

// ---- start ------------------------------------------------------------------------------

async function reload() {
  const since = Date.now() - RANGES[state.layout.range];
  await Promise.all([
    ...[...state.charts.values()].map((c) => loadHistory(c, since)),
    refreshRuns(), refreshAlerts(), refreshPlugins(), refreshJobs(), seriesOptions(),
  ].map((p) => p.catch((e) => notice(e.message))));
  // Other hosts answer within seconds, or not at all: the page does not wait for them.
  refreshFleet().catch((e) => notice(e.message));
}

function logout(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  $("#login").hidden = false;
  $("#panels").hidden = true;
  $("#login-error").textContent = why || "";
}

async function start() {
  $("#login").hidden = true;
  $("#panels").hidden = false;
  try {
    await loadLayouts();
  } catch (e) {
    if (e.status === 401) return logout("The host refused the token.");
    notice(e.message);
  }
  useLayout(localStorage.getItem("monitor-layout") || "default");
  await reload();
  document.body.dataset.ready = "true";
  performance.mark("monitor-ready");
  stream();
  setInterval(health, 2000);
  setInterval(() => refreshFleet().catch((e) => notice(e.message)), 10000);
}

function init() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, hash.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  state.token = sessionStorage.getItem(TOKEN_KEY);
  $("#login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    location.reload();
  });
  $("#range").addEventListener("change", (e) => { state.layout.range = e.target.value; restartStream(); reload(); });
  $("#layout").addEventListener("change", (e) => { useLayout(e.target.value); restartStream(); reload(); });
  $("#save-layout").addEventListener("click", () => saveLayout(state.layoutName));
  $("#save-layout-as").addEventListener("click", () => {
    const name = window.prompt("Save this layout as", "");
    if (name) saveLayout(name.trim());
  });
  $("#theme").addEventListener("click", () => {
    state.layout.theme = document.documentElement.classList.contains("dark") ? "light" : "dark";
    applyTheme();
  });
  window.addEventListener("resize", () => soon("resize", async () => { for (const c of state.charts.values()) c.draw(); }, 150));
  if (!state.token) return logout();
  start();
}

document.addEventListener("DOMContentLoaded", init);
