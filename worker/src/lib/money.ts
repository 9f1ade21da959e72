// Money is integer micro-dollars (µUSD) inside the Worker; decimals only at the edges.

/** µUSD → "12.345678" (six decimals, exact: integer arithmetic, no float rounding). */
export function formatUsd(micros: number): string {
  const sign = micros < 0 ? "-" : "";
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / 1_000_000);
  const frac = String(abs % 1_000_000).padStart(6, "0");
  return `${sign}${whole}.${frac}`;
}
