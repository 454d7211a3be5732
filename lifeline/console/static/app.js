// lifeline console: the alert board, the four-colour risk map and the alert detail, on the console's own JSON
// API (/api/openapi.json). No framework, no CDN: this file and app.css are all there is. Every action is
// checked again on the server; the buttons shown for a role are a courtesy.
"use strict";

const LEVELS = ["red", "orange", "yellow", "blue"];
const ROLE_RANK = { viewer: 0, operator: 1, engineer: 2, admin: 3 };
const TEXT = {
  zh: {
    title: "城市生命线监测", user: "用户名", password: "密码", login: "登录", logout: "退出", map: "风险地图",
    board: "预警看板", clear: "清除筛选", level: "级别", what: "预警", place: "地点", value: "监测值", since: "开始",
    state: "状态", none: "无预警", all: "全部", open: "未解除", firing: "未确认", acknowledged: "已确认",
    resolved: "已解除", anyDomain: "全部领域", anyDistrict: "全部区域", anyLevel: "全部级别", anyDept: "全部部门", ack: "确认",
    resolve: "解除", comment: "备注", assign: "指派", verdict: "研判", silence: "静默 2 小时", close: "关闭",
    history: "处置记录", deliveries: "通知投递", playbook: "处置预案", rule: "规则", owner: "责任单位",
    held: "未发送", reasonPrompt: "原因：", commentPrompt: "备注内容：", deptPrompt: "指派给哪个部门？",
    overview: "总览", board2: "看板", sensorsOnline: "在线设备", alerts24h: "24 小时预警", alerts7d: "7 天预警",
    responseTimes: "响应时间（分钟，近 7 天）", noisiest: "误报最多的规则（近 30 天）", domain: "领域", online: "在线",
    department: "部门", ackMed: "确认中位", ackP90: "确认 P90", resMed: "解除中位", resP90: "解除 P90",
    judged: "已研判", precision: "准确率", readings: "监测曲线", noReadings: "暂无近期数据", normal: "正常", offline: "离线", silenced: "静默", refused: "操作被拒绝",
    red: "红色 Ⅰ级", orange: "橙色 Ⅱ级", yellow: "黄色 Ⅲ级", blue: "蓝色 Ⅳ级", riskNone: "无风险",
    gas: "燃气", water: "供水", drainage: "排水", bridge: "桥梁", elevator: "电梯", crowd: "人员密集",
    false_alarm: "误报", sensor_fault: "设备故障", maintenance: "维护作业", confirmed: "确认事件",
  },
  en: {
    title: "City lifeline monitoring", user: "User", password: "Password", login: "Log in", logout: "Log out",
    map: "Risk map", board: "Alert board", clear: "Clear filters", level: "Level", what: "Alert", place: "Place",
    value: "Value", since: "Since", state: "State", none: "No alerts", all: "All", open: "Open",
    firing: "Firing", acknowledged: "Acknowledged", resolved: "Resolved", anyDomain: "All domains",
    anyDistrict: "All districts", anyLevel: "All levels", anyDept: "All departments", ack: "Acknowledge", resolve: "Resolve",
    comment: "Comment", assign: "Assign", verdict: "Verdict", silence: "Silence 2 h", close: "Close",
    history: "History", deliveries: "Notifications", playbook: "Playbook", rule: "Rule", owner: "Owner",
    held: "held", reasonPrompt: "Reason:", commentPrompt: "Comment:", deptPrompt: "Assign to which department?",
    overview: "Overview", board2: "Board", sensorsOnline: "Sensors online", alerts24h: "Alerts, 24 h",
    alerts7d: "Alerts, 7 days", responseTimes: "Response times (minutes, last 7 days)",
    noisiest: "Noisiest rules (last 30 days)", domain: "Domain", online: "Online", department: "Department",
    ackMed: "Ack median", ackP90: "Ack p90", resMed: "Resolve median", resP90: "Resolve p90", judged: "Judged",
    precision: "Precision", nearby: "Sensors within 1 km", noneNearby: "no other sensor within 1 km",
    readings: "Readings", noReadings: "no recent readings", normal: "normal", offline: "offline", silenced: "silenced", refused: "Refused",
    red: "RED (I)", orange: "ORANGE (II)", yellow: "YELLOW (III)", blue: "BLUE (IV)", riskNone: "no risk",
    gas: "gas", water: "water", drainage: "drainage", bridge: "bridges", elevator: "elevators", crowd: "crowds",
    false_alarm: "false alarm", sensor_fault: "sensor fault", maintenance: "maintenance",
    confirmed: "confirmed incident",
  },
};

const S = {
  lang: localStorage.getItem("lifeline.lang") || "zh",
  me: null, alerts: new Map(), counts: {}, map: null, risk: null, selected: null, stream: null,
  filters: { state: "open", domain: "", district: "", level: "", owner: "" },
};
const $ = (sel) => document.querySelector(sel);
const t = (key) => (TEXT[S.lang][key] ?? key);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && S.me && S.me.csrf) headers["X-CSRF-Token"] = S.me.csrf;
  const r = await fetch(path, { method, headers, credentials: "same-origin",
                                body: body === undefined ? undefined : JSON.stringify(body) });
  const doc = await r.json().catch(() => ({}));
  if (!r.ok) { const err = new Error(doc.error || r.statusText); err.status = r.status; throw err; }
  return doc;
}

function toast(text, bad = false) {
  const box = $("#toast");
  box.textContent = text;
  box.className = bad ? "bad" : "";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

// ---- start, login ----------------------------------------------------------------------------------------
async function start() {
  applyLanguage();
  $("#login-form").addEventListener("submit", onLogin);
  $("#lang").addEventListener("click", () => { S.lang = S.lang === "zh" ? "en" : "zh";
    localStorage.setItem("lifeline.lang", S.lang); applyLanguage(); renderAll(); });
  $("#logout").addEventListener("click", async () => { await api("POST", "/api/logout", {}).catch(() => {});
    location.reload(); });
  $("#overview-toggle").addEventListener("click", toggleOverview);
  $("#clear-filters").addEventListener("click", () => { S.filters = { state: "open", domain: "", district: "",
    level: "", owner: "" }; loadAlerts(); });
  try { S.me = await api("GET", "/api/me"); } catch { showLogin(); return; }
  await showMain();
}

function showLogin() { $("#login-view").hidden = false; $("#main-view").hidden = true; }

async function onLogin(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  try {
    S.me = await api("POST", "/api/login", { user: form.get("user"), password: form.get("password") });
    $("#login-view").hidden = true;
    await showMain();
  } catch (e) { $("#login-error").textContent = e.message; }
}

async function showMain() {
  $("#main-view").hidden = false;
  $("#who").textContent = `${S.me.user} · ${S.me.role}`;
  document.body.dataset.role = S.me.role;
  S.map = await api("GET", "/api/map");
  await Promise.all([loadAlerts(), loadRisk()]);
  listen();
}

function applyLanguage() {
  document.documentElement.lang = S.lang;
  document.title = `lifeline · ${t("title")}`;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  $("#lang").textContent = S.lang === "zh" ? "English" : "中文";
}

// ---- data --------------------------------------------------------------------------------------------------
async function loadAlerts() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(S.filters)) if (v) q.set(k, v);
  const doc = await api("GET", `/api/alerts?${q}`);
  S.alerts = new Map(doc.alerts.map((a) => [a.id, a]));
  S.counts = doc.counts;
  renderCounters();
  renderFilters();
  renderBoard();
  markDistrict();
}

// The selected district's outline, without redrawing 10,000 markers.
function markDistrict() {
  for (const p of document.querySelectorAll("#map path.district")) {
    p.classList.toggle("selected", p.dataset.district === S.filters.district);
  }
}

async function loadRisk() { S.risk = await api("GET", "/api/map/risk"); renderMap(); }

function matches(a) {
  const f = S.filters;
  if (f.state === "open" && a.state === "resolved") return false;
  if (f.state && f.state !== "open" && f.state !== "all" && a.state !== f.state) return false;
  if (f.domain && a.domain !== f.domain) return false;
  if (f.district && a.district !== f.district) return false;
  if (f.level && LEVELS.indexOf(a.level) > LEVELS.indexOf(f.level)) return false;
  if (f.owner && a.owner !== f.owner) return false;
  return true;
}

function listen() {
  if (S.stream) S.stream.close();
  S.stream = new EventSource("/api/stream");
  S.stream.addEventListener("alerts", (ev) => {
    const doc = JSON.parse(ev.data);
    for (const a of doc.alerts) {
      if (matches(a)) S.alerts.set(a.id, a); else S.alerts.delete(a.id);
      if (S.selected && S.selected === a.id) openDetail(a.id);
    }
    S.counts = doc.counts;
    renderBoard();
    renderCounters();
    clearTimeout(listen.risk);
    listen.risk = setTimeout(loadRisk, 300);
  });
}

// ---- rendering ---------------------------------------------------------------------------------------------
function renderAll() { renderCounters(); renderFilters(); renderBoard(); renderMap(); }

function badge(level) { return el("span", { class: `badge lv-${level || "none"}` }, level ? t(level) : t("riskNone")); }

function renderCounters() {
  const box = $("#counters");
  box.replaceChildren(...LEVELS.map((lv) => el("span", { class: `counter lv-${lv}`, "data-level": lv },
    `${t(lv)} ${S.counts[lv] ?? 0}`)));
}

function renderFilters() {
  const form = $("#filters");
  const opt = (value, label, cur) => el("option", { value, ...(value === cur ? { selected: "" } : {}) }, label);
  const domains = S.map ? [...new Set(S.map.sensors.map((s) => s.domain))].sort() : [];
  const districts = S.map ? S.map.districts : [];
  form.state.replaceChildren(...["open", "firing", "acknowledged", "resolved", "all"].map(
    (s) => opt(s, t(s), S.filters.state)));
  form.domain.replaceChildren(opt("", t("anyDomain"), S.filters.domain),
    ...domains.map((d) => opt(d, t(d), S.filters.domain)));
  form.district.replaceChildren(opt("", t("anyDistrict"), S.filters.district),
    ...districts.map((d) => opt(d.id, d.name, S.filters.district)));
  form.level.replaceChildren(opt("", t("anyLevel"), S.filters.level),
    ...LEVELS.map((lv) => opt(lv, `≥ ${t(lv)}`, S.filters.level)));
  const owners = S.map ? [...new Set(S.map.sensors.map((s) => s.owner).filter(Boolean))].sort() : [];
  form.owner.replaceChildren(opt("", t("anyDept"), S.filters.owner),
    ...owners.map((o) => opt(o, o, S.filters.owner)));
  form.onchange = () => { for (const k of Object.keys(S.filters)) S.filters[k] = form[k].value; loadAlerts(); };
}

function sorted() {
  return [...S.alerts.values()].filter(matches).sort((a, b) =>
    LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level) || a.started - b.started);
}

function age(ts) {
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}

function renderBoard() {
  const rows = sorted();
  const canAct = ROLE_RANK[S.me.role] >= ROLE_RANK.operator;
  $("#board tbody").replaceChildren(...rows.map((a) => {
    const ack = a.state === "firing" ? el("button", { class: "ack", "data-id": a.id,
      onclick: (e) => { e.stopPropagation(); act(a.id, "ack", { reason: "" }); } }, t("ack")) : "";
    const tr = el("tr", { "data-id": a.id, "data-level": a.level, "data-state": a.state,
                          class: a.id === S.selected ? "selected" : "", onclick: () => openDetail(a.id) },
      el("td", {}, badge(a.level)),
      el("td", {}, a.title || a.rule, a.suppressed ? el("div", { class: "held" }, `${t("held")}: ${a.suppressed}`) : ""),
      el("td", {}, `${a.district} / ${a.subject}`),
      el("td", {}, a.value === null ? "-" : Number(a.value).toPrecision(4)),
      el("td", { title: a.started_at }, age(a.started)),
      el("td", { class: `st-${a.state}` }, t(a.state)),
      el("td", {}, canAct ? ack : ""));
    return tr;
  }));
  $("#board-empty").hidden = rows.length > 0;
}

function project(bounds, w, h) {
  const [x0, y0, x1, y1] = bounds;
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
  const sx = (w - 20) / ((x1 - x0) * k), sy = (h - 20) / (y1 - y0), s = Math.min(sx, sy);
  return ([lon, lat]) => [10 + (lon - x0) * k * s, 10 + (y1 - lat) * s];
}

function renderMap() {
  const box = $("#map");
  if (!S.map || !box) return;
  const w = 600, h = 520;
  box.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const pts = S.map.districts.flatMap((d) => d.rings.flat());
  if (!pts.length) { box.replaceChildren(); return; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const proj = project([Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)], w, h);
  const defs = svg("defs");
  for (const [lv, pattern] of [["red", "M0,8 L8,0"], ["orange", "M0,0 L8,8"], ["yellow", "M4,0 L4,8"]]) {
    const p = svg("pattern", { id: `hatch-${lv}`, width: 8, height: 8, patternUnits: "userSpaceOnUse" });
    p.append(svg("rect", { width: 8, height: 8, fill: `var(--${lv})` }),
             svg("path", { d: pattern, stroke: "rgba(0,0,0,.35)", "stroke-width": 1.5 }));
    defs.append(p);
  }
  const kids = [defs];
  for (const d of S.map.districts) {
    const risk = S.risk?.districts?.[d.id] || { level: null, score: 0, alerts: 0 };
    const fill = risk.level ? (risk.level === "blue" ? "var(--blue)" : `url(#hatch-${risk.level})`) : "var(--none)";
    const g = svg("g");
    for (const ring of d.rings) {
      const path = svg("path", { d: "M" + ring.map((p) => proj(p).join(",")).join("L") + "Z", fill,
        class: `district${S.filters.district === d.id ? " selected" : ""}`, "data-district": d.id,
        "data-level": risk.level || "none", "fill-opacity": ".8" });
      path.addEventListener("click", () => {
        S.filters.district = S.filters.district === d.id ? "" : d.id; loadAlerts(); });
      const title = svg("title"); title.textContent = `${d.name}: ${risk.level ? t(risk.level) : t("riskNone")}`;
      path.append(title);
      g.append(path);
    }
    const c = d.rings[0].map(proj).reduce((a, p) => [a[0] + p[0], a[1] + p[1]], [0, 0])
      .map((v) => v / d.rings[0].length);
    const label = svg("text", { x: c[0], y: c[1], "text-anchor": "middle", class: "district-label" });
    label.textContent = `${d.name} · ${risk.level ? t(risk.level) : t("riskNone")}`;
    g.append(label);
    kids.push(g);
  }
  const states = S.risk?.sensors || {};
  for (const s of S.map.sensors) {
    const st = states[s.id] || "normal";
    const [x, y] = proj([s.lon, s.lat]);
    const colour = { normal: "#4caf50", offline: "var(--offline)", silenced: "var(--silenced)" }[st] || `var(--${st})`;
    const m = svg("circle", { cx: x, cy: y, r: st === "normal" ? 2.2 : 4.5, fill: colour, class: "sensor",
                              "data-sensor": s.id, "data-state": st });
    const title = svg("title"); title.textContent = `${s.id} (${s.asset_type}): ${t(st)}`; m.append(title);
    m.addEventListener("click", () => { S.filters.district = s.district; loadAlerts(); });
    kids.push(m);
  }
  box.replaceChildren(...kids);
  $("#legend").replaceChildren(...LEVELS.map((lv) => el("span", {}, el("span", { class: `swatch lv-${lv}` }), " ",
    t(lv))), el("span", {}, el("span", { class: "swatch lv-none" }), " ", t("riskNone")));
}

// ---- overview -------------------------------------------------------------------------------------------------
async function toggleOverview() {
  const box = $("#overview"), main = $("main");
  if (!box.hidden) { box.hidden = true; main.hidden = false; $("#overview-toggle").textContent = t("overview");
    return; }
  const doc = await api("GET", "/api/overview");
  const table = (head, rows) => el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c ?? "-"))))));
  const min = (s) => (typeof s === "number" ? (s / 60).toFixed(1) : "-");
  const perLevel = (counts) => table([t("domain"), ...LEVELS.map(t)], Object.entries(counts).sort().map(
    ([d, c]) => [t(d), ...LEVELS.map((lv) => String(c[lv] ?? 0))]));
  box.replaceChildren(
    el("h2", {}, t("sensorsOnline")),
    table([t("domain"), t("online")], Object.entries(doc.sensors).sort().map(
      ([d, c]) => [t(d), `${c.online} / ${c.sensors}`])),
    el("h2", {}, t("alerts24h")), perLevel(doc.alerts_24h),
    el("h2", {}, t("alerts7d")), perLevel(doc.alerts_7d),
    el("h2", {}, t("responseTimes")),
    table([t("department"), "n", t("ackMed"), t("ackP90"), t("resMed"), t("resP90")], doc.response_times.map(
      (r) => [r.department, String(r.alerts), min(r.ack_median_s), min(r.ack_p90_s), min(r.resolve_median_s),
              min(r.resolve_p90_s)])),
    el("h2", {}, t("noisiest")),
    table([t("rule"), "n", t("judged"), t("false_alarm"), t("sensor_fault"), t("precision")], doc.rules.map(
      (r) => [r.rule, String(r.alerts), String(r.judged), String(r.false_alarm), String(r.sensor_fault),
              r.precision === null ? "-" : `${Math.round(r.precision * 100)}%`])));
  box.hidden = false;
  main.hidden = true;
  $("#overview-toggle").textContent = t("board2");
}

// ---- detail and actions --------------------------------------------------------------------------------------
async function openDetail(id) {
  S.selected = id;
  const doc = await api("GET", `/api/alerts/${encodeURIComponent(id)}`);
  const a = doc.alert;
  const rank = ROLE_RANK[S.me.role];
  const box = $("#detail");
  const button = (key, fn, need = "operator") => (rank >= ROLE_RANK[need] ? el("button", { class: key, onclick: fn },
    t(key)) : "");
  box.replaceChildren(
    el("h2", {}, badge(a.level), " ", a.title || a.rule),
    el("dl", {},
      el("dt", {}, t("state")), el("dd", { class: `st-${a.state}`, "data-state": a.state }, t(a.state)),
      el("dt", {}, t("place")), el("dd", {}, `${a.district} / ${a.subject}`),
      el("dt", {}, t("value")), el("dd", {}, a.value === null ? "-" : String(a.value)),
      el("dt", {}, t("rule")), el("dd", {}, a.rule),
      el("dt", {}, t("owner")), el("dd", {}, a.assigned ? `${a.owner} → ${a.assigned}` : a.owner || "-"),
      el("dt", {}, t("since")), el("dd", {}, a.started_at)),
    el("p", {}, a.message),
    a.suppressed ? el("p", { class: "held" }, `${t("held")}: ${a.suppressed}`) : "",
    el("div", { class: "actions" },
      a.state === "firing" ? button("ack", () => act(id, "ack", { reason: "" })) : "",
      a.state !== "resolved" ? button("resolve", () => { const r = prompt(t("reasonPrompt")); if (r) act(id,
        "resolve", { reason: r }); }) : "",
      button("comment", () => { const c = prompt(t("commentPrompt")); if (c) act(id, "comment", { text: c }); }),
      button("assign", () => { const d = prompt(t("deptPrompt"), a.owner); if (d) act(id, "assign",
        { department: d }); }),
      rank >= ROLE_RANK.operator ? el("select", { class: "verdict", onchange: (e) => e.target.value &&
        act(id, "verdict", { verdict: e.target.value }) }, el("option", { value: "" }, t("verdict")),
        ...["confirmed", "false_alarm", "sensor_fault", "maintenance"].map((v) => el("option", { value: v }, t(v))))
        : "",
      button("silence", () => silence(a), "engineer"),
      el("button", { onclick: () => { S.selected = null; box.hidden = true; $("main").classList.remove(
        "with-detail"); renderBoard(); } }, t("close"))),
    el("h3", {}, t("readings")),
    el("div", { id: "chart" }),
    a.playbook ? el("details", { open: "" }, el("summary", {}, t("playbook")), el("pre", {}, a.playbook)) : "",
    el("h3", {}, t("history")),
    el("ol", {}, ...doc.history.map((h) => el("li", {}, `${h.at} ${h.event} ${h.level || ""} · ${h.actor}`,
      h.reason || h.message ? `: ${h.reason || h.message}` : ""))),
    el("h3", {}, t("nearby")),
    doc.nearby.length ? el("ol", { class: "nearby" }, ...doc.nearby.map((n) => el("li", { "data-sensor": n.sensor },
      `${n.sensor} (${t(n.domain)}, ${n.distance_m} m)`, ...n.alerts.map((x) => el("span", {}, " ", badge(x.level),
        ` ${x.rule}`))))) : el("p", {}, t("noneNearby")),
    el("h3", {}, t("deliveries")),
    el("ol", {}, ...doc.deliveries.map((d) => el("li", {}, `${d.receiver}: ${d.state}`,
      d.note || d.last_error ? ` (${d.note || d.last_error})` : ""))));
  box.hidden = false;
  $("main").classList.add("with-detail");
  renderBoard();
  api("GET", `/api/alerts/${encodeURIComponent(id)}/readings?hours=6`).then(renderChart).catch(() => {});
}

// The alert's readings: the rule's metric with its threshold lines in their level colours, or, when the rule
// reads several metrics (a condition), each metric in a strip of its own scale; the alert's start and end as
// vertical lines.
function renderChart(doc) {
  const box = $("#chart");
  if (!box) return;
  const names = doc.metric ? [doc.metric] : Object.keys(doc.series).sort();
  const series = names.filter((m) => doc.series[m]?.length);
  if (!series.length) { box.replaceChildren(el("p", {}, t("noReadings"))); return; }
  const w = 460, pad = 40, strip = series.length === 1 ? 150 : 56, h = strip * series.length + 18;
  const ts = series.flatMap((m) => doc.series[m].map((p) => p[0])).concat([doc.started]);
  const t0 = Math.min(...ts), t1 = Math.max(...ts, doc.ended || 0, t0 + 1);
  const x = (tt) => pad + (tt - t0) / (t1 - t0) * (w - pad - 6);
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img", "aria-label": t("readings") });
  const colours = ["#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32"];
  series.forEach((m, i) => {
    const top = i * strip + 6, bottom = (i + 1) * strip - 6;
    const vs = doc.series[m].map((p) => p[1]).concat(doc.metric ? doc.thresholds.map((l) => l.value) : []);
    let v0 = Math.min(...vs), v1 = Math.max(...vs);
    if (v1 - v0 < 1e-9) { v0 -= 1; v1 += 1; }
    const y = (v) => bottom - (v - v0) / (v1 - v0) * (bottom - top);
    chart.append(svg("line", { x1: pad, y1: bottom, x2: w - 6, y2: bottom, stroke: "#cfd8dc" }));
    const name = svg("text", { x: 2, y: top + 9, "font-size": 10 });
    name.textContent = m;
    chart.append(name);
    for (const [v, at] of [[v1, top + 20], [v0, bottom]]) {
      const lab = svg("text", { x: 2, y: at, "font-size": 9, fill: "#607d8b" });
      lab.textContent = String(Number(v.toPrecision(3)));
      chart.append(lab);
    }
    if (doc.metric) {
      for (const l of doc.thresholds) {
        chart.append(svg("line", { x1: pad, x2: w - 6, y1: y(l.value), y2: y(l.value), stroke: `var(--${l.level})`,
                                   "stroke-dasharray": "5 3", "data-threshold": l.level }));
      }
    }
    chart.append(svg("polyline", { points: doc.series[m].map((p) => `${x(p[0])},${y(p[1])}`).join(" "),
                                   fill: "none", stroke: colours[i % colours.length], "stroke-width": 1.6,
                                   "data-metric": m }));
  });
  for (const [when, cls] of [[doc.started, "start"], [doc.ended, "end"]]) {
    if (when) chart.append(svg("line", { x1: x(when), x2: x(when), y1: 4, y2: h - 18, stroke: "#37474f",
                                          "stroke-width": 1.5, class: `mark-${cls}` }));
  }
  const tick = (tt) => new Date(tt * 1000).toLocaleTimeString(S.lang === "zh" ? "zh-CN" : "en-GB",
                                                               { hour: "2-digit", minute: "2-digit" });
  for (const [tt, anchor] of [[t0, "start"], [t1, "end"]]) {
    const lab = svg("text", { x: x(tt), y: h - 4, "font-size": 10, "text-anchor": anchor });
    lab.textContent = tick(tt);
    chart.append(lab);
  }
  box.replaceChildren(chart);
}

async function act(id, action, body) {
  try {
    const doc = await api("POST", `/api/alerts/${encodeURIComponent(id)}/${action}`, body);
    S.alerts.set(doc.alert.id, doc.alert);
    renderBoard();
    if (S.selected === id) openDetail(id);
  } catch (e) { toast(`${t("refused")}: ${e.message}`, true); }
}

async function silence(a) {
  try {
    await api("POST", "/api/silences", { match: { sensor: a.sensor, rule: a.rule }, duration: "2h",
      reason: prompt(t("reasonPrompt")) || "console" });
    toast(t("silence"));
  } catch (e) { toast(`${t("refused")}: ${e.message}`, true); }
}

document.addEventListener("DOMContentLoaded", start);
