// The admin dashboard as the browser gets it: markup, style and script, all inline (the page
// loads nothing but /admin/metrics). The script builds every node with createElement and
// textContent: tenant names are untrusted, so no data ever passes through innerHTML.
// Plain strings, not templates: dashboard.ts adds the per-response CSP nonce.

/** Shared by the dashboard and the login page. */
export const BASE_STYLE = `
:root { --ink: #1c2430; --muted: #5a6474; --line: #d9dee5; --panel: #ffffff; --page: #f3f5f8;
  --accent: #2f6bd8; --error: #c2372f; --warn: #b86e00; --ok: #23845a; color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
h1 { font-size: 1.35rem; margin: 0; }
h2 { font-size: 1.02rem; margin: 0 0 .6rem; }
button, input { font: inherit; }
button { border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 6px;
  padding: .35rem .85rem; cursor: pointer; }
button.quiet { background: transparent; color: var(--accent); }
button:focus-visible, input:focus-visible, summary:focus-visible { outline: 3px solid #9bbcf5; outline-offset: 2px; }
input { border: 1px solid #aab3bf; border-radius: 6px; padding: .3rem .5rem; background: #fff; color: var(--ink); }
.error { color: var(--error); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
`;

export const DASHBOARD_STYLE = `
header.top { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: center; justify-content: space-between;
  padding: 1rem 1.5rem; background: var(--panel); border-bottom: 1px solid var(--line); }
header.top .sub { margin: .1rem 0 0; color: var(--muted); }
.controls { display: flex; gap: .5rem; align-items: center; }
.controls form { margin: 0 0 0 1rem; }
#status { margin: .6rem 1.5rem 0; color: var(--muted); min-height: 1.4em; }
main { padding: .6rem 1.5rem 2rem; display: grid; gap: 1rem; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.1rem; }
.grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); }
.grid > section { margin: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .8rem; margin: 0; }
.cards div { border-left: 4px solid var(--accent); padding: .1rem .7rem; }
.cards dt { color: var(--muted); font-size: .85rem; }
.cards dd { margin: 0; font-size: 1.45rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.cards dd small { display: block; font-size: .8rem; font-weight: 400; color: var(--muted); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
thead th { color: var(--muted); font-weight: 600; font-size: .85rem; }
.num { text-align: right; white-space: nowrap; }
.id { display: block; color: var(--muted); font-size: .8rem; }
td.used { min-width: 190px; }
.meter { display: flex; align-items: center; gap: .5rem; }
.bar { flex: 1; height: 10px; background: #e7ebf0; border-radius: 5px; overflow: hidden; }
.bar span { display: block; height: 100%; background: var(--ok); }
.bar.warn span { background: var(--warn); }
.bar.over span { background: var(--error); }
.pct { min-width: 3.6rem; text-align: right; }
figure { margin: 0; }
svg { width: 100%; height: auto; display: block; }
svg text { font-size: 11px; fill: var(--muted); }
svg .grid-line { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: #9aa4b1; stroke-width: 1; }
svg .requests { fill: var(--accent); }
svg .errors { fill: var(--error); }
svg .empty { font-size: 14px; }
.legend { display: flex; gap: 1.2rem; color: var(--muted); font-size: .85rem; margin-top: .3rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; margin-right: .35rem;
  vertical-align: -1px; background: var(--accent); }
.swatch.errors { background: var(--error); }
details { margin-top: .6rem; }
summary { cursor: pointer; color: var(--accent); }
.empty-row td { color: var(--muted); font-style: italic; }
footer { padding: 0 1.5rem 1.5rem; color: var(--muted); font-size: .8rem; }
`;

export const LOGIN_STYLE = `
main.login { max-width: 26rem; margin: 12vh auto; background: var(--panel); border: 1px solid var(--line);
  border-radius: 10px; padding: 1.6rem 1.8rem; }
main.login p { color: var(--muted); }
main.login p.error { color: var(--error); font-weight: 600; }
form.sign-in { display: grid; gap: .5rem; margin-top: 1rem; }
form.sign-in button { justify-self: start; margin-top: .4rem; }
`;

/** The dashboard's markup: empty tables and a chart frame the script fills. */
export const DASHBOARD_BODY = `
<header class="top">
  <div>
    <h1>LLM gateway</h1>
    <p class="sub" id="range">Admin dashboard</p>
  </div>
  <div class="controls">
    <label for="month">Month</label>
    <input type="month" id="month" name="month">
    <button type="button" id="refresh">Refresh</button>
    <form method="post" action="/admin/logout"><button type="submit" class="quiet">Sign out</button></form>
  </div>
</header>
<p id="status" role="status" aria-live="polite">Loading metrics…</p>
<main id="main" aria-busy="true">
  <section aria-labelledby="h-summary">
    <h2 id="h-summary" class="visually-hidden">Summary</h2>
    <dl class="cards" id="cards"></dl>
  </section>
  <section aria-labelledby="h-orgs">
    <h2 id="h-orgs">Spend against budget: organizations</h2>
    <table id="orgs">
      <thead><tr><th scope="col">Organization</th><th scope="col" class="num">Requests</th>
        <th scope="col" class="num">Errors</th><th scope="col" class="num">Spent</th>
        <th scope="col" class="num">Monthly budget</th><th scope="col">Used</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section aria-labelledby="h-users">
    <h2 id="h-users">Spend against limit: users</h2>
    <table id="users">
      <thead><tr><th scope="col">User</th><th scope="col">Organization</th><th scope="col" class="num">Requests</th>
        <th scope="col" class="num">Errors</th><th scope="col" class="num">Spent</th>
        <th scope="col" class="num">Monthly limit</th><th scope="col">Used</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section aria-labelledby="h-daily">
    <h2 id="h-daily">Requests and errors per day</h2>
    <figure>
      <svg id="daily-chart" viewBox="0 0 800 200" role="img" aria-labelledby="chart-title chart-desc">
        <title id="chart-title">Requests and errors per day</title>
        <desc id="chart-desc">Bars per day: all requests, and the errors among them. The same figures are in the table below.</desc>
        <g id="chart-plot"></g>
      </svg>
      <figcaption class="legend"><span><span class="swatch"></span>Requests</span>
        <span><span class="swatch errors"></span>Errors (4xx and 5xx)</span></figcaption>
    </figure>
    <details>
      <summary>Table: requests and errors per day</summary>
      <table id="days">
        <thead><tr><th scope="col">Day</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Errors</th>
          <th scope="col" class="num">Error rate</th><th scope="col" class="num">Cost</th></tr></thead>
        <tbody></tbody>
      </table>
    </details>
  </section>
  <div class="grid">
    <section aria-labelledby="h-latency">
      <h2 id="h-latency">Latency</h2>
      <table id="latency">
        <thead><tr><th scope="col">Measure</th><th scope="col" class="num">p50</th><th scope="col" class="num">p95</th>
          <th scope="col" class="num">p99</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    <section aria-labelledby="h-rates">
      <h2 id="h-rates">Cache, fallbacks and errors</h2>
      <table id="rates">
        <thead><tr><th scope="col">Measure</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Rate</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    <section aria-labelledby="h-keys">
      <h2 id="h-keys">API keys by status</h2>
      <table id="keys">
        <thead><tr><th scope="col">Status</th><th scope="col" class="num">Keys</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
  </div>
  <section aria-labelledby="h-models">
    <h2 id="h-models">Top models</h2>
    <table id="models">
      <thead><tr><th scope="col">Model</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Errors</th>
        <th scope="col" class="num">Tokens in</th><th scope="col" class="num">Tokens out</th>
        <th scope="col" class="num">Cost</th><th scope="col" class="num">Latency p95</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section aria-labelledby="h-alerts">
    <h2 id="h-alerts">Budget alerts this month</h2>
    <table id="alerts">
      <thead><tr><th scope="col">Organization</th><th scope="col">User</th><th scope="col" class="num">Threshold</th>
        <th scope="col" class="num">Used</th><th scope="col" class="num">Limit</th><th scope="col">Reached</th>
        <th scope="col">Delivery</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<footer id="footer">Figures from /admin/metrics; refreshed every 30 s. Money is exact (µUSD), latency from histograms.</footer>
`;

/** The dashboard's script (ES2020, no template literals: it lives in one). */
export const DASHBOARD_SCRIPT = `
"use strict";
(() => {
  const REFRESH_MS = 30000;
  const TOP_MODELS = 10;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MONTH = /^[0-9]{4}-(0[1-9]|1[0-2])$/;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let inFlight = null;

  // ---------------------------------------------------------------- formatting (no floats for money)
  const int = (n) => Number(n).toLocaleString("en-US");
  const plural = (n, word) => int(n) + " " + word + (n === 1 ? "" : "s");
  function usd(decimal) {
    const text = String(decimal);
    const negative = text.startsWith("-");
    const [whole, frac = ""] = (negative ? text.slice(1) : text).split(".");
    let cents = frac.replace(/0+$/, "");
    while (cents.length < 2) cents += "0";
    return (negative ? "-$" : "$") + whole.replace(/\\B(?=(\\d{3})+(?!\\d))/g, ",") + "." + cents;
  }
  const percent = (fraction) => (fraction * 100).toFixed(1) + "%";
  const share = (part, whole) => (whole <= 0 ? "—" : part > 0 && part / whole < 0.001 ? "<0.1%" : percent(part / whole));
  const ms = (value) => (value === null || value === undefined ? "—" : value.toLocaleString("en-US", { maximumFractionDigits: 1 }) + " ms");

  // ---------------------------------------------------------------- DOM, text only
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const cell = (col, value, numeric) => el("td", { "data-col": col, class: numeric ? "num" : "" }, value);
  function fill(tableId, rows, columns, emptyText) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren(...rows);
    if (rows.length === 0) body.append(el("tr", { class: "empty-row" }, el("td", { colspan: String(columns) }, emptyText)));
  }
  /** A bar with its percentage: spent against an allowance (µUSD integers). */
  function used(spentMicros, allowanceMicros) {
    const fraction = allowanceMicros > 0 ? spentMicros / allowanceMicros : 0;
    const bar = el("span");
    bar.style.width = Math.min(100, fraction * 100).toFixed(2) + "%";
    const track = el("div", { class: "bar" + (fraction >= 1 ? " over" : fraction >= 0.8 ? " warn" : ""), "aria-hidden": "true" }, bar);
    const td = el("td", { "data-col": "used", class: "used" }, el("div", { class: "meter" }, track, el("span", { class: "pct" }, share(spentMicros, allowanceMicros))));
    return td;
  }

  // ---------------------------------------------------------------- sections
  function renderCards(body) {
    const t = body.totals;
    const card = (label, value, note) => el("div", {}, el("dt", {}, label), el("dd", { "data-card": label }, value, el("small", {}, note)));
    $("cards").replaceChildren(
      card("Requests", int(t.requests), int(t.streams) + " streamed"),
      card("Errors", int(t.errors), percent(t.errorRate) + " of requests"),
      card("Spend", usd(body.usage.costUsd), "this month, " + int(body.usage.requests) + " charged"),
      card("Cache hits", percent(t.cacheHitRate), int(t.cacheHits) + " answered from cache"),
      card("Fallbacks", percent(t.fallbackRate), int(t.fallbacks) + " by a fallback model"),
      card("Latency p95", ms(t.latencyMs.p95), "p50 " + ms(t.latencyMs.p50) + " · p99 " + ms(t.latencyMs.p99)),
      card("Active keys", int(body.keyStatus.active), "of " + int(body.keys) + " keys"),
    );
  }

  function renderOrgs(body) {
    const rows = body.byOrg.map((o) =>
      el("tr", { "data-org": o.orgId },
        el("th", { scope: "row", "data-col": "name" }, o.name, el("span", { class: "id" }, o.orgId)),
        cell("requests", int(o.requests), true), cell("errors", int(o.errors), true),
        cell("spent", usd(o.spentUsd), true), cell("budget", usd(o.monthlyBudgetUsd), true),
        used(o.spentMicros, o.monthlyBudgetMicros)));
    fill("orgs", rows, 6, "No organizations.");
  }

  function renderUsers(body) {
    const orgNames = new Map(body.byOrg.map((o) => [o.orgId, o.name]));
    const users = [...body.byUser].sort((a, b) => b.spentMicros - a.spentMicros || a.userId.localeCompare(b.userId));
    const rows = users.map((u) =>
      el("tr", { "data-user": u.userId },
        el("th", { scope: "row", "data-col": "user" }, u.userId),
        cell("org", orgNames.get(u.orgId) || u.orgId), cell("requests", int(u.requests), true),
        cell("errors", int(u.errors), true), cell("spent", usd(u.spentUsd), true),
        cell("limit", usd(u.monthlyLimitUsd), true), used(u.spentMicros, u.monthlyLimitMicros)));
    fill("users", rows, 7, "No users.");
  }

  /** A step of 1, 2 or 5 × 10^k giving at most five whole-number gridlines up to value. */
  function axisOf(value) {
    const raw = Math.max(1, value) / 4;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = Math.max(1, [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw));
    return { step: step, top: Math.max(step, Math.ceil(value / step) * step) };
  }

  function renderChart(body) {
    const days = body.byDay;
    const W = 800, H = 200, left = 46, right = 10, top = 14, bottom = 30;
    const plotW = W - left - right, plotH = H - top - bottom;
    const axis = axisOf(Math.max(0, ...days.map((d) => d.requests)));
    const max = axis.top;
    const y = (v) => top + plotH - (v / max) * plotH;
    const band = plotW / Math.max(1, days.length);
    const plot = $("chart-plot");
    const nodes = [];
    for (let v = 0; v <= max; v += axis.step) {
      nodes.push(svg("line", { class: "grid-line", x1: left, x2: W - right, y1: y(v), y2: y(v) }));
      nodes.push(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, int(v)));
    }
    const labelEvery = Math.ceil(days.length / 16);
    days.forEach((d, i) => {
      const x = left + i * band;
      const w = Math.max(1, band * 0.72);
      const group = svg("g", { "data-day": d.day });
      group.append(svg("title", {}, d.day + ": " + plural(d.requests, "request") + ", " + plural(d.errors, "error")));
      group.append(svg("rect", { class: "requests", x: x + (band - w) / 2, width: w, y: y(d.requests), height: top + plotH - y(d.requests) }));
      group.append(svg("rect", { class: "errors", x: x + (band - w) / 2, width: w, y: y(d.errors), height: top + plotH - y(d.errors) }));
      nodes.push(group);
      if (i % labelEvery === 0) nodes.push(svg("text", { x: x + band / 2, y: H - bottom + 16, "text-anchor": "middle" }, String(Number(d.day.slice(8)))));
    });
    nodes.push(svg("line", { class: "axis", x1: left, x2: W - right, y1: top + plotH, y2: top + plotH }));
    if (days.every((d) => d.requests === 0)) {
      nodes.push(svg("text", { class: "empty", x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" }, "No requests in this period"));
    }
    plot.replaceChildren(...nodes);
    $("chart-desc").textContent = "Bars per day from " + body.from + " to " + body.to + ": all requests (at most " +
      int(Math.max(0, ...days.map((d) => d.requests))) + " a day), and the errors among them. The same figures are in the table below.";
    fill("days", days.map((d) =>
      el("tr", { "data-day": d.day }, el("th", { scope: "row" }, d.day), cell("requests", int(d.requests), true),
        cell("errors", int(d.errors), true), cell("errorRate", percent(d.errorRate), true), cell("cost", usd(d.costUsd), true))), 5, "No days.");
  }

  function renderLatency(body) {
    const t = body.totals;
    const row = (label, p) => el("tr", {}, el("th", { scope: "row" }, label), cell("p50", ms(p.p50), true), cell("p95", ms(p.p95), true), cell("p99", ms(p.p99), true));
    fill("latency", [row("Total (arrival to last byte)", t.latencyMs), row("Upstream", t.upstreamMs), row("Gateway's own time", t.overheadMs), row("Time to first chunk (streams)", t.ttftMs)], 4, "");
  }

  function renderRates(body) {
    const t = body.totals;
    const row = (label, count, rate) => el("tr", {}, el("th", { scope: "row" }, label), cell("count", int(count), true), cell("rate", percent(rate), true));
    fill("rates", [
      row("Cache hits", t.cacheHits, t.cacheHitRate),
      row("Fallbacks", t.fallbacks, t.fallbackRate),
      row("Errors", t.errors, t.errorRate),
      row("Client errors (4xx)", t.errors4xx, t.requests ? t.errors4xx / t.requests : 0),
      row("Upstream and gateway errors (5xx)", t.errors5xx, t.requests ? t.errors5xx / t.requests : 0),
      row("Rate limited (429)", t.rateLimited, t.requests ? t.rateLimited / t.requests : 0),
    ], 3, "");
  }

  function renderKeys(body) {
    const labels = { active: "Active", revoked: "Revoked", suspended: "Suspended (user or org inactive)", expired: "Expired" };
    fill("keys", Object.keys(labels).map((status) =>
      el("tr", { "data-status": status }, el("th", { scope: "row" }, labels[status]), cell("keys", int(body.keyStatus[status] || 0), true))), 2, "");
  }

  function renderModels(body) {
    fill("models", body.byModel.slice(0, TOP_MODELS).map((m) =>
      el("tr", { "data-model": m.model }, el("th", { scope: "row", "data-col": "model" }, m.model),
        cell("requests", int(m.requests), true), cell("errors", int(m.errors), true),
        cell("tokensIn", int(m.tokensIn), true), cell("tokensOut", int(m.tokensOut), true),
        cell("cost", usd(m.costUsd), true), cell("p95", ms(m.latencyMs.p95), true))), 7, "No requests named a model in this period.");
  }

  function renderAlerts(body) {
    if (!body) return fill("alerts", [], 7, "Alerts could not be loaded.");
    if (!body.webhookConfigured) return fill("alerts", [], 7, "This stack declares no budget alerts.");
    fill("alerts", body.alerts.map((a) =>
      el("tr", { "data-alert": a.id },
        el("th", { scope: "row" }, a.orgId), cell("user", a.userId || "(organization)"),
        cell("threshold", int(a.thresholdPercent) + " %", true), cell("used", usd(a.usedUsd), true),
        cell("limit", usd(a.limitUsd), true), cell("reached", a.reachedAt.replace("T", " ").slice(0, 16) + " UTC"),
        cell("delivery", a.status + (a.attempts > 1 ? " after " + int(a.attempts) + " attempts" : "")))), 7, "No threshold reached yet.");
  }

  function render(body) {
    $("range").textContent = "Admin dashboard · " + body.from + " to " + body.to + " · " + int(body.orgs) + " organizations, " + int(body.users) + " users";
    renderCards(body);
    renderOrgs(body);
    renderUsers(body);
    renderChart(body);
    renderLatency(body);
    renderRates(body);
    renderKeys(body);
    renderModels(body);
    if (document.activeElement !== $("month")) $("month").value = body.month;
  }

  // ---------------------------------------------------------------- loading
  function status(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  function signedOut() {
    clearInterval(timer);
    timer = null;
    const link = el("a", { href: "/admin/dashboard" }, "Sign in again");
    $("status").replaceChildren("The session has ended. ", link, ".");
    $("status").className = "error";
  }

  async function load() {
    const month = $("month").value;
    const query = MONTH.test(month) ? "?month=" + encodeURIComponent(month) : "";
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    try {
      const options = { headers: { accept: "application/json" }, cache: "no-store", signal: controller.signal };
      const alerts = fetch("/admin/alerts" + query, options).then((r) => (r.ok ? r.json() : null), () => null);
      const response = await fetch("/admin/metrics" + query, options);
      if (response.status === 401) return signedOut();
      const body = await response.json();
      if (!response.ok) throw new Error((body && body.error && body.error.message) || "HTTP " + response.status);
      render(body);
      renderAlerts(await alerts);
      $("main").setAttribute("aria-busy", "false");
      status("Updated " + new Date().toLocaleTimeString("en-GB") + " · refreshes every 30 s", false);
    } catch (err) {
      if (err && err.name === "AbortError") return;
      status("Could not load the metrics: " + (err && err.message ? err.message : String(err)), true);
    } finally {
      if (inFlight === controller) inFlight = null;
    }
  }

  function start() {
    const asked = new URLSearchParams(location.search).get("month");
    if (asked && MONTH.test(asked)) $("month").value = asked;
    $("month").addEventListener("change", () => {
      const month = $("month").value;
      if (!MONTH.test(month)) return;
      history.replaceState(null, "", "?month=" + encodeURIComponent(month));
      load();
    });
    $("refresh").addEventListener("click", () => load());
    load();
    // a hidden tab does not poll (each poll is a call to every org's ledger); shown, it catches up
    timer = setInterval(() => {
      if (!document.hidden) load();
    }, REFRESH_MS);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer !== null) load();
    });
  }

  start();
})();
`;
