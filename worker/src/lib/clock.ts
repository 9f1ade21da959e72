// UTC days and months of the hot path ("2026-12-02", "2026-12"). Every request asks for both
// (the ledger's month, the metrics' day); each is computed once per day, not formatted per call.

const DAY_MS = 86_400_000;

let day = { from: 0, until: 0, text: "" };
let month = { from: 0, until: 0, text: "" };

/** The UTC day of `now` as YYYY-MM-DD. */
export function utcDay(now: number = Date.now()): string {
  if (now < day.from || now >= day.until) {
    const from = now - (((now % DAY_MS) + DAY_MS) % DAY_MS);
    day = { from, until: from + DAY_MS, text: new Date(from).toISOString().slice(0, 10) };
  }
  return day.text;
}

/** The UTC month of `now` as YYYY-MM. */
export function utcMonth(now: number = Date.now()): string {
  if (now < month.from || now >= month.until) {
    const at = new Date(now);
    const from = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1);
    month = { from, until: Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1), text: at.toISOString().slice(0, 7) };
  }
  return month.text;
}
