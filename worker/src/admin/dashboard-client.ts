// The admin dashboard's script, as the browser runs it: it reads /admin/metrics and
// /admin/alerts and fills the page's empty tables and chart (dashboard-page.ts holds the
// markup). worker/build.mjs bundles it at build time into one inline script, so it is type-
// checked (tsconfig.dashboard.json: the DOM, not the Workers runtime) and linted like the rest.
// Every node is built with createElement and textContent: tenant names are untrusted, so no
// data ever passes through innerHTML.

/** A p50/p95/p99 triple in ms (null: no request in the period). */
interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** What the page reads of GET /admin/metrics (admin/metrics.ts). Money comes as decimal strings. */
interface Metrics {
  from: string;
  to: string;
  month: string;
  orgs: number;
  users: number;
  keys: number;
  keyStatus: Record<string, number>;
  usage: { costUsd: string; requests: number };
  totals: {
    requests: number;
    streams: number;
    errors: number;
    errors4xx: number;
    errors5xx: number;
    rateLimited: number;
    errorRate: number;
    cacheHits: number;
    cacheHitRate: number;
    fallbacks: number;
    fallbackRate: number;
    latencyMs: Percentiles;
    upstreamMs: Percentiles;
    overheadMs: Percentiles;
    ttftMs: Percentiles;
  };
  byOrg: {
    orgId: string;
    name: string;
    requests: number;
    errors: number;
    spentUsd: string;
    spentMicros: number;
    monthlyBudgetUsd: string;
    monthlyBudgetMicros: number;
  }[];
  byUser: {
    userId: string;
    orgId: string;
    requests: number;
    errors: number;
    spentUsd: string;
    spentMicros: number;
    monthlyLimitUsd: string;
    monthlyLimitMicros: number;
  }[];
  /** Keys with a monthly limit of their own, against it. */
  byKey: {
    keyId: string;
    userId: string;
    orgId: string;
    status: string;
    spentUsd: string;
    spentMicros: number;
    monthlyLimitUsd: string;
    monthlyLimitMicros: number;
  }[];
  byDay: { day: string; requests: number; errors: number; errorRate: number; costUsd: string }[];
  byModel: {
    model: string;
    requests: number;
    errors: number;
    tokensIn: number;
    tokensOut: number;
    costUsd: string;
    latencyMs: Percentiles;
  }[];
}

/** What the page reads of GET /admin/alerts (admin/index.ts). */
interface Alerts {
  webhookConfigured: boolean;
  alerts: {
    id: string;
    orgId: string;
    userId: string | null;
    thresholdPercent: number;
    usedUsd: string;
    limitUsd: string;
    reachedAt: string;
    status: string;
    attempts: number;
  }[];
}

const REFRESH_MS = 30000;
const TOP_MODELS = 10;
const SVG_NS = "http://www.w3.org/2000/svg";
const MONTH = /^[0-9]{4}-(0[1-9]|1[0-2])$/;
let timer: ReturnType<typeof setInterval> | null = null;
let inFlight: AbortController | null = null;

/** An element of the page's markup (dashboard-page.ts; a unit test holds the ids to it). */
function $(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

const monthInput = () => $("month") as HTMLInputElement;

// ---------------------------------------------------------------- formatting (no floats for money)
const int = (n: number) => Number(n).toLocaleString("en-US");
const plural = (n: number, word: string) => `${int(n)} ${word}${n === 1 ? "" : "s"}`;

/** "1234.5" (µUSD-exact decimal from the API) → "$1,234.50": the digits as given, never a float. */
function usd(decimal: string): string {
  const text = String(decimal);
  const negative = text.startsWith("-");
  const [whole = "0", frac = ""] = (negative ? text.slice(1) : text).split(".");
  let cents = frac.replace(/0+$/, "");
  while (cents.length < 2) cents += "0";
  return `${negative ? "-$" : "$"}${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents}`;
}
const percent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;
const share = (part: number, whole: number) =>
  whole <= 0 ? "—" : part > 0 && part / whole < 0.001 ? "<0.1%" : percent(part / whole);
const ms = (value: number | null | undefined) =>
  value === null || value === undefined ? "—" : `${value.toLocaleString("en-US", { maximumFractionDigits: 1 })} ms`;

// ---------------------------------------------------------------- DOM, text only
function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string | number)[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const cell = (col: string, value: string, numeric = false) =>
  el("td", { "data-col": col, class: numeric ? "num" : "" }, value);

function fill(tableId: string, rows: HTMLElement[], columns: number, emptyText: string): void {
  const body = ($(tableId) as HTMLTableElement).tBodies[0];
  if (!body) return;
  body.replaceChildren(...rows);
  if (rows.length === 0)
    body.append(el("tr", { class: "empty-row" }, el("td", { colspan: String(columns) }, emptyText)));
}

/** A bar with its percentage: spent against an allowance (µUSD integers). */
function used(spentMicros: number, allowanceMicros: number): HTMLElement {
  const fraction = allowanceMicros > 0 ? spentMicros / allowanceMicros : 0;
  const bar = el("span");
  bar.style.width = `${Math.min(100, fraction * 100).toFixed(2)}%`;
  const level = fraction >= 1 ? " over" : fraction >= 0.8 ? " warn" : "";
  const track = el("div", { class: `bar${level}`, "aria-hidden": "true" }, bar);
  const pct = el("span", { class: "pct" }, share(spentMicros, allowanceMicros));
  return el("td", { "data-col": "used", class: "used" }, el("div", { class: "meter" }, track, pct));
}

// ---------------------------------------------------------------- sections
function renderCards(body: Metrics): void {
  const t = body.totals;
  const card = (label: string, value: string, note: string) =>
    el("div", {}, el("dt", {}, label), el("dd", { "data-card": label }, value, el("small", {}, note)));
  $("cards").replaceChildren(
    card("Requests", int(t.requests), `${int(t.streams)} streamed`),
    card("Errors", int(t.errors), `${percent(t.errorRate)} of requests`),
    card("Spend", usd(body.usage.costUsd), `this month, ${int(body.usage.requests)} charged`),
    card("Cache hits", percent(t.cacheHitRate), `${int(t.cacheHits)} answered from cache`),
    card("Fallbacks", percent(t.fallbackRate), `${int(t.fallbacks)} by a fallback model`),
    card("Latency p95", ms(t.latencyMs.p95), `p50 ${ms(t.latencyMs.p50)} · p99 ${ms(t.latencyMs.p99)}`),
    card("Active keys", int(body.keyStatus.active ?? 0), `of ${int(body.keys)} keys`),
  );
}

function renderOrgs(body: Metrics): void {
  const rows = body.byOrg.map((o) =>
    el(
      "tr",
      { "data-org": o.orgId },
      el("th", { scope: "row", "data-col": "name" }, o.name, el("span", { class: "id" }, o.orgId)),
      cell("requests", int(o.requests), true),
      cell("errors", int(o.errors), true),
      cell("spent", usd(o.spentUsd), true),
      cell("budget", usd(o.monthlyBudgetUsd), true),
      used(o.spentMicros, o.monthlyBudgetMicros),
    ),
  );
  fill("orgs", rows, 6, "No organizations.");
}

function renderUsers(body: Metrics): void {
  const orgNames = new Map(body.byOrg.map((o) => [o.orgId, o.name]));
  const users = [...body.byUser].sort((a, b) => b.spentMicros - a.spentMicros || a.userId.localeCompare(b.userId));
  const rows = users.map((u) =>
    el(
      "tr",
      { "data-user": u.userId },
      el("th", { scope: "row", "data-col": "user" }, u.userId),
      cell("org", orgNames.get(u.orgId) || u.orgId),
      cell("requests", int(u.requests), true),
      cell("errors", int(u.errors), true),
      cell("spent", usd(u.spentUsd), true),
      cell("limit", usd(u.monthlyLimitUsd), true),
      used(u.spentMicros, u.monthlyLimitMicros),
    ),
  );
  fill("users", rows, 7, "No users.");
}

function renderKeyLimits(body: Metrics): void {
  const keys = [...body.byKey].sort((a, b) => b.spentMicros - a.spentMicros || a.keyId.localeCompare(b.keyId));
  const rows = keys.map((k) =>
    el(
      "tr",
      { "data-key": k.keyId },
      el("th", { scope: "row", "data-col": "key" }, k.keyId),
      cell("user", k.userId),
      cell("status", k.status),
      cell("spent", usd(k.spentUsd), true),
      cell("limit", usd(k.monthlyLimitUsd), true),
      used(k.spentMicros, k.monthlyLimitMicros),
    ),
  );
  fill("key-limits", rows, 6, "No key has a monthly limit of its own.");
}

/** A step of 1, 2 or 5 × 10^k giving at most five whole-number gridlines up to value. */
function axisOf(value: number): { step: number; top: number } {
  const raw = Math.max(1, value) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw);
  return { step, top: Math.max(step, Math.ceil(value / step) * step) };
}

function renderChart(body: Metrics): void {
  const days = body.byDay;
  const W = 800;
  const H = 200;
  const left = 46;
  const right = 10;
  const top = 14;
  const bottom = 30;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const axis = axisOf(Math.max(0, ...days.map((d) => d.requests)));
  const max = axis.top;
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const band = plotW / Math.max(1, days.length);
  const nodes: SVGElement[] = [];
  for (let v = 0; v <= max; v += axis.step) {
    nodes.push(svg("line", { class: "grid-line", x1: left, x2: W - right, y1: y(v), y2: y(v) }));
    nodes.push(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, int(v)));
  }
  const labelEvery = Math.ceil(days.length / 16);
  days.forEach((d, i) => {
    const x = left + i * band;
    const w = Math.max(1, band * 0.72);
    const group = svg("g", { "data-day": d.day });
    group.append(svg("title", {}, `${d.day}: ${plural(d.requests, "request")}, ${plural(d.errors, "error")}`));
    const bar = (cls: string, v: number) =>
      svg("rect", { class: cls, x: x + (band - w) / 2, width: w, y: y(v), height: top + plotH - y(v) });
    group.append(bar("requests", d.requests), bar("errors", d.errors));
    nodes.push(group);
    if (i % labelEvery === 0) {
      const label = String(Number(d.day.slice(8)));
      nodes.push(svg("text", { x: x + band / 2, y: H - bottom + 16, "text-anchor": "middle" }, label));
    }
  });
  nodes.push(svg("line", { class: "axis", x1: left, x2: W - right, y1: top + plotH, y2: top + plotH }));
  if (days.every((d) => d.requests === 0)) {
    const at = { class: "empty", x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" };
    nodes.push(svg("text", at, "No requests in this period"));
  }
  $("chart-plot").replaceChildren(...nodes);
  const most = int(Math.max(0, ...days.map((d) => d.requests)));
  $("chart-desc").textContent =
    `Bars per day from ${body.from} to ${body.to}: all requests (at most ${most} a day), ` +
    "and the errors among them. The same figures are in the table below.";
  const rows = days.map((d) =>
    el(
      "tr",
      { "data-day": d.day },
      el("th", { scope: "row" }, d.day),
      cell("requests", int(d.requests), true),
      cell("errors", int(d.errors), true),
      cell("errorRate", percent(d.errorRate), true),
      cell("cost", usd(d.costUsd), true),
    ),
  );
  fill("days", rows, 5, "No days.");
}

function renderLatency(body: Metrics): void {
  const t = body.totals;
  const row = (label: string, p: Percentiles) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, label),
      cell("p50", ms(p.p50), true),
      cell("p95", ms(p.p95), true),
      cell("p99", ms(p.p99), true),
    );
  const rows = [
    row("Total (arrival to last byte)", t.latencyMs),
    row("Upstream", t.upstreamMs),
    row("Gateway's own time", t.overheadMs),
    row("Time to first chunk (streams)", t.ttftMs),
  ];
  fill("latency", rows, 4, "");
}

function renderRates(body: Metrics): void {
  const t = body.totals;
  const of = (count: number) => (t.requests ? count / t.requests : 0);
  const row = (label: string, count: number, rate: number) =>
    el("tr", {}, el("th", { scope: "row" }, label), cell("count", int(count), true), cell("rate", percent(rate), true));
  const rows = [
    row("Cache hits", t.cacheHits, t.cacheHitRate),
    row("Fallbacks", t.fallbacks, t.fallbackRate),
    row("Errors", t.errors, t.errorRate),
    row("Client errors (4xx)", t.errors4xx, of(t.errors4xx)),
    row("Upstream and gateway errors (5xx)", t.errors5xx, of(t.errors5xx)),
    row("Rate limited (429)", t.rateLimited, of(t.rateLimited)),
  ];
  fill("rates", rows, 3, "");
}

function renderKeys(body: Metrics): void {
  const labels: Record<string, string> = {
    active: "Active",
    revoked: "Revoked",
    suspended: "Suspended (user or org inactive)",
    expired: "Expired",
  };
  const rows = Object.entries(labels).map(([status, label]) =>
    el(
      "tr",
      { "data-status": status },
      el("th", { scope: "row" }, label),
      cell("keys", int(body.keyStatus[status] || 0), true),
    ),
  );
  fill("keys", rows, 2, "");
}

function renderModels(body: Metrics): void {
  const rows = body.byModel
    .slice(0, TOP_MODELS)
    .map((m) =>
      el(
        "tr",
        { "data-model": m.model },
        el("th", { scope: "row", "data-col": "model" }, m.model),
        cell("requests", int(m.requests), true),
        cell("errors", int(m.errors), true),
        cell("tokensIn", int(m.tokensIn), true),
        cell("tokensOut", int(m.tokensOut), true),
        cell("cost", usd(m.costUsd), true),
        cell("p95", ms(m.latencyMs.p95), true),
      ),
    );
  fill("models", rows, 7, "No requests named a model in this period.");
}

function renderAlerts(body: Alerts | null): void {
  if (!body) {
    fill("alerts", [], 7, "Alerts could not be loaded.");
    return;
  }
  if (!body.webhookConfigured) {
    fill("alerts", [], 7, "This stack declares no budget alerts.");
    return;
  }
  const rows = body.alerts.map((a) =>
    el(
      "tr",
      { "data-alert": a.id },
      el("th", { scope: "row" }, a.orgId),
      cell("user", a.userId || "(organization)"),
      cell("threshold", `${int(a.thresholdPercent)} %`, true),
      cell("used", usd(a.usedUsd), true),
      cell("limit", usd(a.limitUsd), true),
      cell("reached", `${a.reachedAt.replace("T", " ").slice(0, 16)} UTC`),
      cell("delivery", a.status + (a.attempts > 1 ? ` after ${int(a.attempts)} attempts` : "")),
    ),
  );
  fill("alerts", rows, 7, "No threshold reached yet.");
}

function render(body: Metrics): void {
  $("range").textContent =
    `Admin dashboard · ${body.from} to ${body.to} · ` + `${int(body.orgs)} organizations, ${int(body.users)} users`;
  renderCards(body);
  renderOrgs(body);
  renderUsers(body);
  renderKeyLimits(body);
  renderChart(body);
  renderLatency(body);
  renderRates(body);
  renderKeys(body);
  renderModels(body);
  if (document.activeElement !== monthInput()) monthInput().value = body.month;
}

// ---------------------------------------------------------------- loading
function showStatus(text: string, isError: boolean): void {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function signedOut(): void {
  if (timer !== null) clearInterval(timer);
  timer = null;
  const link = el("a", { href: "/admin/dashboard" }, "Sign in again");
  $("status").replaceChildren("The session has ended. ", link, ".");
  $("status").className = "error";
}

function messageOf(body: unknown): string | null {
  const error = (body as { error?: { message?: unknown } } | null)?.error;
  return typeof error?.message === "string" ? error.message : null;
}

async function load(): Promise<void> {
  const month = monthInput().value;
  const query = MONTH.test(month) ? `?month=${encodeURIComponent(month)}` : "";
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  try {
    const options: RequestInit = {
      headers: { accept: "application/json" },
      cache: "no-store",
      signal: controller.signal,
    };
    const alerts = fetch(`/admin/alerts${query}`, options).then(
      (r) => (r.ok ? (r.json() as Promise<Alerts>) : null),
      () => null,
    );
    const response = await fetch(`/admin/metrics${query}`, options);
    if (response.status === 401) {
      signedOut();
      return;
    }
    const body: unknown = await response.json();
    if (!response.ok) throw new Error(messageOf(body) || `HTTP ${response.status}`);
    render(body as Metrics);
    renderAlerts(await alerts);
    $("main").setAttribute("aria-busy", "false");
    showStatus(`Updated ${new Date().toLocaleTimeString("en-GB")} · refreshes every 30 s`, false);
  } catch (err) {
    if ((err as { name?: unknown } | null)?.name === "AbortError") return;
    showStatus(`Could not load the metrics: ${err instanceof Error ? err.message : String(err)}`, true);
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

function start(): void {
  const asked = new URLSearchParams(location.search).get("month");
  if (asked && MONTH.test(asked)) monthInput().value = asked;
  monthInput().addEventListener("change", () => {
    const month = monthInput().value;
    if (!MONTH.test(month)) return;
    history.replaceState(null, "", `?month=${encodeURIComponent(month)}`);
    void load();
  });
  $("refresh").addEventListener("click", () => void load());
  void load();
  // a hidden tab does not poll (each poll is a call to every org's ledger); shown, it catches up
  timer = setInterval(() => {
    if (!document.hidden) void load();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer !== null) void load();
  });
}

start();

// a module: its names are its own, not the window's (esbuild wraps it in one function)
export {};
