// The admin dashboard as the browser gets it: markup and style, inline with its script (the
// page loads nothing but /admin/metrics and /admin/alerts). The script is dashboard-client.ts,
// bundled by worker/build.mjs. Plain strings, not templates: dashboard.ts adds the per-response
// CSP nonce.

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
  <section aria-labelledby="h-key-limits">
    <h2 id="h-key-limits">Spend against limit: API keys with a limit of their own</h2>
    <table id="key-limits">
      <thead><tr><th scope="col">API key</th><th scope="col">User</th><th scope="col">Status</th>
        <th scope="col" class="num">Spent</th><th scope="col" class="num">Monthly limit</th>
        <th scope="col">Used</th></tr></thead>
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
