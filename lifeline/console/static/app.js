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
    resolve: "解除", comment: "备注", assign: "指派", verdict: "研判", silence: "静默…", close: "关闭",
    nearby: "1 公里内的设备", noneNearby: "1 公里内无其他设备", ops: "静默与审批", silences: "生效的静默",
    newSilence: "新建静默", approvals: "待审批的预警发布", approve: "批准", reject: "驳回", expire: "立即结束",
    duration: "时长", reason: "原因", sensor: "设备", matchers: "匹配条件", ends: "结束", createdBy: "创建人",
    receiver: "接收方", queued: "排队时间", noSilences: "无生效的静默", noApprovals: "无待审批的发布", create: "创建",
    anyRule: "全部规则", shown: "显示", showAll: "全部显示", needMatch: "至少填一个匹配条件", created: "已创建静默", ended: "静默已结束",
    approved: "已批准发布", rejected: "已驳回",
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
    comment: "Comment", assign: "Assign", verdict: "Verdict", silence: "Silence…", close: "Close",
    ops: "Silences & approvals", silences: "Active silences", newSilence: "New silence",
    approvals: "Warnings awaiting approval", approve: "Approve", reject: "Reject", expire: "End now",
    duration: "Duration", reason: "Reason", sensor: "Sensor", matchers: "Matches", ends: "Ends", createdBy: "By",
    receiver: "Receiver", queued: "Queued", noSilences: "No active silences", noApprovals: "Nothing awaiting approval",
    create: "Create", anyRule: "any rule", shown: "Showing", showAll: "Show all", needMatch: "give at least one matcher", created: "Silence created",
    ended: "Silence ended", approved: "Approved for sending", rejected: "Rejected",
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
  me: null, alerts: new Map(), counts: {}, map: null, risk: null, selected: null, stream: null, view: "board",
  awaiting: 0,
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
// For the two big lists (2,000 board rows, 10,000 map markers) the markup is built as one string, parsed once,
// with one delegated click listener per list: 3-5x faster than a node and a listener per row or marker.
const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ESC[c]);
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
  $("#overview-toggle").addEventListener("click", () => showView("overview"));
  $("#ops-toggle").addEventListener("click", () => showView("ops"));
  $("#board tbody").addEventListener("click", onBoardClick);
  $("#map").addEventListener("click", (ev) => {
    const m = ev.target.closest("circle.sensor");
    const s = m && S.sensorAt?.get(m.dataset.sensor);
    if (s) { S.filters.district = s.district; loadAlerts(); }
  });
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
  S.sensorAt = new Map(S.map.sensors.map((s) => [s.id, s]));
  await Promise.all([loadAlerts(), loadRisk(), loadAwaiting()]);
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
    listen.risk = setTimeout(() => { loadRisk(); loadAwaiting(); if (S.view === "ops") renderOps(); }, 300);
  });
}

// ---- rendering ---------------------------------------------------------------------------------------------
function renderAll() { renderCounters(); renderFilters(); renderBoard(); renderMap(); renderNav(); }

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

// The board draws the worst BOARD_ROWS alerts and says how many more there are (one press shows them all): with
// 2,000 open alerts the browser's layout of every row, not the data, was most of the first render.
const BOARD_ROWS = 400;

function renderBoard() {
  const all = sorted();
  const rows = all.slice(0, S.showAll ? all.length : BOARD_ROWS);
  const canAct = ROLE_RANK[S.me.role] >= ROLE_RANK.operator;
  const ack = esc(t("ack")), held = esc(t("held"));
  $("#board tbody").innerHTML = rows.map((a) => `<tr data-id="${esc(a.id)}" data-level="${esc(a.level)}" \
data-state="${esc(a.state)}"${a.id === S.selected ? ' class="selected"' : ""}>\
<td><span class="badge lv-${esc(a.level || "none")}">${esc(a.level ? t(a.level) : t("riskNone"))}</span></td>\
<td>${esc(a.title || a.rule)}${a.suppressed ? `<div class="held">${held}: ${esc(a.suppressed)}</div>` : ""}</td>\
<td>${esc(`${a.district} / ${a.subject}`)}</td><td>${a.value === null ? "-" : esc(Number(a.value).toPrecision(4))}</td>\
<td title="${esc(a.started_at)}">${esc(age(a.started))}</td><td class="st-${esc(a.state)}">${esc(t(a.state))}</td>\
<td>${canAct && a.state === "firing" ? `<button class="ack" data-id="${esc(a.id)}">${ack}</button>` : ""}</td></tr>`)
    .join("");
  $("#board-empty").hidden = rows.length > 0;
  const more = $("#board-more");
  more.hidden = rows.length === all.length;
  if (!more.hidden) more.replaceChildren(`${t("shown")} ${rows.length} / ${all.length} `,
    el("button", { type: "button", onclick: () => { S.showAll = true; renderBoard(); } }, t("showAll")));
}

function onBoardClick(ev) {
  const button = ev.target.closest("button.ack");
  if (button) { act(button.dataset.id, "ack", { reason: "" }); return; }
  const tr = ev.target.closest("tr[data-id]");
  if (tr) openDetail(tr.dataset.id);
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
  const colours = { normal: "#4caf50", offline: "var(--offline)", silenced: "var(--silenced)" };
  const names = {};
  let normal = "", alerting = "";
  for (const s of S.map.sensors) {  // normal ones first: an alerting marker is drawn on top
    const st = states[s.id] || "normal";
    const [x, y] = proj([s.lon, s.lat]);
    names[st] ??= esc(t(st));
    const m = `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${st === "normal" ? 2.2 : 4.5}" \
fill="${colours[st] || `var(--${st})`}" class="sensor" data-sensor="${esc(s.id)}" data-state="${st}">\
<title>${esc(s.id)} (${esc(s.asset_type)}): ${names[st]}</title></circle>`;
    if (st === "normal") normal += m; else alerting += m;
  }
  const g = svg("g", { class: "sensors" });
  g.innerHTML = normal + alerting;
  kids.push(g);
  box.replaceChildren(...kids);
  $("#legend").replaceChildren(...LEVELS.map((lv) => el("span", {}, el("span", { class: `swatch lv-${lv}` }), " ",
    t(lv))), el("span", {}, el("span", { class: "swatch lv-none" }), " ", t("riskNone")));
}

// ---- overview -------------------------------------------------------------------------------------------------
// The board (with the map and the detail), the overview, and silences & approvals: one shown at a time; the
// header's buttons switch, and a second press goes back to the board.
async function showView(name, prefill) {
  S.view = name === S.view && !prefill ? "board" : name;
  $("main").hidden = S.view !== "board";
  $("#overview").hidden = S.view !== "overview";
  $("#ops").hidden = S.view !== "ops";
  renderNav();
  if (S.view === "overview") await renderOverview();
  if (S.view === "ops") await renderOps(prefill);
}

function renderNav() {
  $("#overview-toggle").textContent = t(S.view === "overview" ? "board2" : "overview");
  $("#ops-toggle").textContent = S.view === "ops" ? t("board2") : S.awaiting ? `${t("ops")} (${S.awaiting})` : t("ops");
  $("#ops-toggle").classList.toggle("attention", S.awaiting > 0 && S.view !== "ops");
}

async function loadAwaiting() {
  try {
    S.awaiting = (await api("GET", "/api/outbox?state=awaiting_approval")).notifications.length;
  } catch { S.awaiting = 0; }
  renderNav();
}

const table = (head, rows, attrs = {}) => el("table", attrs,
  el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
  el("tbody", {}, ...rows.map((r) => (r instanceof Node ? r : el("tr", {}, ...r.map((c) => el("td", {}, c ?? "-")))))));
const when = (ts) => new Date(ts * 1000).toLocaleString(S.lang === "zh" ? "zh-CN" : "en-GB",
  { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });

async function renderOverview() {
  const box = $("#overview");
  const doc = await api("GET", "/api/overview");
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
}

// Silences (engineers create and end them) and red / orange public warnings held for approval (admins decide).
// Every one of these requests is checked and audited on the server.
async function renderOps(prefill) {
  const box = $("#ops");
  const rank = ROLE_RANK[S.me.role];
  const [sil, held] = await Promise.all([api("GET", "/api/silences"),
                                         api("GET", "/api/outbox?state=awaiting_approval")]);
  S.awaiting = held.notifications.length;
  renderNav();
  const kids = [];
  if (rank >= ROLE_RANK.engineer) kids.push(el("h2", {}, t("newSilence")), silenceForm(prefill || {}));
  kids.push(el("h2", {}, t("silences")));
  kids.push(sil.silences.length ? table([t("matchers"), t("ends"), t("createdBy"), t("reason"), ""],
    sil.silences.map((w) => el("tr", { "data-silence": w.id },
      el("td", {}, Object.entries(w.match).map(([k, v]) => `${k}=${v}`).join(", ") + (w.polygon ? " ⬠" : "")),
      el("td", {}, when(w.ends)), el("td", {}, w.created_by), el("td", {}, w.reason),
      el("td", {}, rank >= ROLE_RANK.engineer ? el("button", { class: "expire", onclick: () => expireSilence(w.id) },
        t("expire")) : ""))), { id: "silences" }) : el("p", {}, t("noSilences")));
  kids.push(el("h2", {}, t("approvals")));
  kids.push(held.notifications.length ? table([t("what"), t("receiver"), t("queued"), t("state"), ""],
    held.notifications.map((n) => {
      const a = S.alerts.get(n.alert);
      return el("tr", { "data-key": n.key },
        el("td", {}, a ? badge(a.level) : "", " ", a ? a.title || a.rule : n.alert),
        el("td", {}, n.receiver), el("td", {}, when(n.created)), el("td", {}, n.note || n.state),
        el("td", {}, rank >= ROLE_RANK.admin ? el("span", { class: "actions" },
          el("button", { class: "approve primary", onclick: () => decide(n.key, "approve") }, t("approve")), " ",
          el("button", { class: "reject", onclick: () => decide(n.key, "reject") }, t("reject"))) : ""));
    }), { id: "approvals" }) : el("p", {}, t("noApprovals")));
  box.replaceChildren(...kids);
}

function silenceForm(prefill) {
  const domains = S.map ? [...new Set(S.map.sensors.map((s) => s.domain))].sort() : [];
  const field = (name, label, input) => el("label", {}, el("span", {}, label), input);
  const form = el("form", { id: "silence-form", class: "silence-form" },
    field("sensor", t("sensor"), el("input", { name: "sensor", value: prefill.sensor || "" })),
    field("rule", t("rule"), el("input", { name: "rule", value: prefill.rule || "", placeholder: t("anyRule") })),
    field("domain", t("domain"), el("select", { name: "domain" }, el("option", { value: "" }, t("anyDomain")),
      ...domains.map((d) => el("option", { value: d }, t(d))))),
    field("district", t("place"), el("select", { name: "district" }, el("option", { value: "" }, t("anyDistrict")),
      ...(S.map ? S.map.districts : []).map((d) => el("option", { value: d.id }, d.name || d.id)))),
    field("duration", t("duration"), el("select", { name: "duration" },
      ...["30m", "1h", "2h", "4h", "8h", "24h", "72h"].map((d) => el("option", d === "2h" ? { value: d, selected: "" }
        : { value: d }, d)))),
    field("reason", t("reason"), el("input", { name: "reason", required: "" })),
    el("button", { type: "submit", class: "primary" }, t("create")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const match = {};
    for (const k of ["sensor", "rule", "domain", "district"]) if (f.get(k)) match[k] = String(f.get(k)).trim();
    if (!Object.keys(match).length) { toast(t("needMatch"), true); return; }
    try {
      await api("POST", "/api/silences", { match, duration: f.get("duration"), reason: f.get("reason") });
      toast(t("created"));
      await renderOps();
    } catch (e) { toast(`${t("refused")}: ${e.message}`, true); }
  });
  return form;
}

async function expireSilence(id) {
  const reason = prompt(t("reasonPrompt"));
  if (reason === null) return;
  try {
    await api("POST", `/api/silences/${encodeURIComponent(id)}/expire`, { reason: reason || "console" });
    toast(t("ended"));
    await renderOps();
  } catch (e) { toast(`${t("refused")}: ${e.message}`, true); }
}

async function decide(key, verb) {
  const reason = prompt(t("reasonPrompt"));
  if (!reason) return;
  try {
    await api("POST", `/api/outbox/${encodeURIComponent(key)}/${verb}`, { reason });
    toast(t(verb === "approve" ? "approved" : "rejected"));
    await renderOps();
  } catch (e) { toast(`${t("refused")}: ${e.message}`, true); }
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
      button("silence", () => showView("ops", { sensor: a.sensor, rule: a.rule }), "engineer"),
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

document.addEventListener("DOMContentLoaded", start);
