// Budget alerts as the ledger keeps them: raised once per month, subject and threshold when the
// recorded usage reaches it (thresholds as each user's key last said, kept in limits_seen so a
// settlement that comes alone after a restart is still checked), and delivered from the alarm
// (alert-webhook.ts signs and sends). The org's id, for the payloads, is kept in meta.

import { ALERTS } from "../generated/settings";
import type { Env } from "../protocol/env";
import type { AlertRow, SpendWindow } from "../protocol/ledger";
import type { AlertThresholds } from "../protocol/policy";
import { deliver, MAX_ATTEMPTS, rateAlertSubject, reached, retryDelayMs } from "./alert-webhook";
import type { Months } from "./holds";
import { keySubject, ORG, userSubject } from "./usage-rows";

export const ALERTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS alerts (
  month TEXT NOT NULL,
  subject TEXT NOT NULL,
  threshold INTEGER NOT NULL,
  crossed_at INTEGER NOT NULL,
  used_micros INTEGER NOT NULL,
  limit_micros INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  delivered_at INTEGER,
  PRIMARY KEY (month, subject, threshold)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS limits_seen (
  user_id TEXT PRIMARY KEY,
  user_limit INTEGER NOT NULL,
  org_budget INTEGER NOT NULL,
  alerts TEXT NOT NULL
);
`;

const DELIVERIES_PER_ALARM = 20;

interface Seen {
  userLimit: number;
  orgBudget: number;
  alerts: AlertThresholds;
}

export class Alerts {
  readonly #sql: SqlStorage;
  readonly #months: Months;
  readonly #wake: (at: number) => void;
  // What the last call said of each user's limits and alert thresholds (settlements that come
  // alone are checked against them)
  readonly #limitsSeen = new Map<string, Seen>();
  readonly #raised = new Map<string, Set<string>>(); // month → "subject|threshold"
  #orgId: string | null;

  /** `wake`: ring the alarm now (a fresh alert is to be delivered). */
  constructor(sql: SqlStorage, months: Months, wake: (at: number) => void) {
    this.#sql = sql;
    this.#months = months;
    this.#wake = wake;
    sql.exec(ALERTS_SCHEMA);
    this.#orgId =
      sql.exec<{ value: string }>("SELECT value FROM meta WHERE name = 'orgId'").toArray()[0]?.value ?? null;
  }

  /**
   * What a call says of the org and of a user's limits and thresholds, kept when it changed; and
   * of its key's limit, when the key has one (its alerts use the user's thresholds).
   */
  learn(
    orgId: string | undefined,
    userId: string,
    userLimit: number,
    orgBudget: number,
    alerts?: AlertThresholds,
    key: { keyId: string; keyLimit: number } | null = null,
  ) {
    if (orgId !== undefined && orgId !== this.#orgId) {
      this.#orgId = orgId;
      this.#sql.exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('orgId', ?)", orgId);
    }
    if (!alerts) return;
    this.#keep(userId, userLimit, orgBudget, alerts);
    // a key's limits are kept beside the users', under the key's subject
    if (key) this.#keep(keySubject(userId, key.keyId), key.keyLimit, orgBudget, alerts);
  }

  #keep(userId: string, userLimit: number, orgBudget: number, alerts: AlertThresholds): void {
    const known = this.#seen(userId);
    const same =
      known?.userLimit === userLimit &&
      known.orgBudget === orgBudget &&
      JSON.stringify(known.alerts) === JSON.stringify(alerts);
    if (same) return;
    // kept in SQL too: a settlement that arrives alone after a restart is still checked
    this.#limitsSeen.set(userId, { userLimit, orgBudget, alerts });
    this.#sql.exec(
      "INSERT OR REPLACE INTO limits_seen (user_id, user_limit, org_budget, alerts) VALUES (?, ?, ?, ?)",
      userId,
      userLimit,
      orgBudget,
      JSON.stringify(alerts),
    );
  }

  /** What the user's last call said of its limits and thresholds (memory, else SQL). */
  #seen(userId: string): Seen | undefined {
    const cached = this.#limitsSeen.get(userId);
    if (cached) return cached;
    const row = this.#sql
      .exec<{ userLimit: number; orgBudget: number; alerts: string }>(
        "SELECT user_limit AS userLimit, org_budget AS orgBudget, alerts FROM limits_seen WHERE user_id = ?",
        userId,
      )
      .toArray()[0];
    if (!row) return undefined;
    const seen = {
      userLimit: row.userLimit,
      orgBudget: row.orgBudget,
      alerts: JSON.parse(row.alerts) as AlertThresholds,
    };
    this.#limitsSeen.set(userId, seen);
    return seen;
  }

  /** The month's alerts raised so far ("subject|threshold"), read from SQL once. */
  #raisedIn(month: string): Set<string> {
    let raised = this.#raised.get(month);
    if (!raised) {
      raised = new Set(
        this.#sql
          .exec<{ subject: string; threshold: number }>("SELECT subject, threshold FROM alerts WHERE month = ?", month)
          .toArray()
          .map((a) => `${a.subject}|${a.threshold}`),
      );
      this.#raised.set(month, raised);
    }
    return raised;
  }

  /**
   * Raise the alerts the month's recorded usage has reached for these users and the org, each
   * once (thresholds as the users' keys last said), and wake the alarm to deliver them.
   */
  check(month: string, subjects: Iterable<{ userId: string; keyId?: string | null }>, now: number): void {
    const state = this.#months.get(month);
    const raised = this.#raisedIn(month);
    let fresh = false;
    const raise = (subject: string, used: number, limit: number, thresholds: readonly number[]) => {
      for (const threshold of thresholds) {
        const key = `${subject}|${threshold}`;
        if (raised.has(key) || !reached(used, limit, threshold)) continue;
        raised.add(key);
        const written = this.#sql.exec(
          `INSERT INTO alerts (month, subject, threshold, crossed_at, used_micros, limit_micros, status, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING`,
          month,
          subject,
          threshold,
          now,
          used,
          limit,
          now,
        ).rowsWritten;
        fresh ||= written > 0;
      }
    };
    for (const { userId, keyId } of subjects) {
      const seen = this.#seen(userId);
      if (!seen) continue; // checked at the user's next call that says its limits
      raise(userSubject(userId), state.row(userSubject(userId)).usedMicros, seen.userLimit, seen.alerts.user);
      raise(ORG, state.row(ORG).usedMicros, seen.orgBudget, seen.alerts.org);
      const key = keyId ? keySubject(userId, keyId) : null;
      const seenKey = key ? this.#seen(key) : undefined; // only keys with a limit of their own
      if (key && seenKey) raise(key, state.row(key).usedMicros, seenKey.userLimit, seenKey.alerts.user);
    }
    if (fresh) this.#wake(now);
  }

  /**
   * A spend-rate breaker refused a request: one alert for its window (the first refusal in it),
   * with what the window had spent and held against its limit then. Only where the stack sends
   * alerts (a webhook).
   */
  tripped(month: string, window: SpendWindow, now: number): void {
    if (!ALERTS) return;
    const subject = rateAlertSubject(window);
    const raised = this.#raisedIn(month);
    const key = `${subject}|100`;
    if (raised.has(key)) return;
    raised.add(key);
    const written = this.#sql.exec(
      `INSERT INTO alerts (month, subject, threshold, crossed_at, used_micros, limit_micros, status, next_attempt_at)
            VALUES (?, ?, 100, ?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING`,
      month,
      subject,
      now,
      window.used + window.held,
      window.limit,
      now,
    ).rowsWritten;
    if (written > 0) this.#wake(now);
  }

  /** Deliver the alerts that are due (from the alarm); when the next one is, if any. */
  async deliverDue(env: Env): Promise<number | null> {
    const due = this.#rows(
      `status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ${DELIVERIES_PER_ALARM}`,
      Date.now(),
    );
    for (const row of due) {
      const result = await deliver(this.#orgId ?? "", row, env.ALERT_WEBHOOK_SECRET, Date.now());
      const attempts = row.attempts + 1;
      const status = result.ok ? "delivered" : attempts >= MAX_ATTEMPTS ? "failed" : "pending";
      this.#sql.exec(
        `UPDATE alerts SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?
          WHERE month = ? AND subject = ? AND threshold = ?`,
        status,
        attempts,
        Date.now() + retryDelayMs(attempts),
        result.status,
        result.error,
        result.ok ? Date.now() : null,
        row.month,
        row.subject,
        row.threshold,
      );
      const event = result.ok ? "alert_delivered" : "alert_delivery_failed";
      (result.ok ? console.log : console.error)(
        JSON.stringify({
          event,
          orgId: this.#orgId,
          subject: row.subject,
          threshold: row.threshold,
          attempts,
          ...result,
        }),
      );
    }
    return (
      this.#sql
        .exec<{ at: number | null }>("SELECT MIN(next_attempt_at) AS at FROM alerts WHERE status = 'pending'")
        .toArray()[0]?.at ?? null
    );
  }

  #rows(where: string, ...params: SqlStorageValue[]): AlertRow[] {
    return this.#sql
      .exec<AlertRow & Record<string, SqlStorageValue>>(
        `SELECT month, subject, threshold, crossed_at AS crossedAt, used_micros AS usedMicros,
                limit_micros AS limitMicros, status, attempts, next_attempt_at AS nextAttemptAt,
                last_status AS lastStatus, last_error AS lastError, delivered_at AS deliveredAt
           FROM alerts WHERE ${where}`,
        ...params,
      )
      .toArray();
  }

  /** The month's alerts, newest first. */
  list(month: string): AlertRow[] {
    return this.#rows("month = ? ORDER BY crossed_at DESC, subject, threshold", month);
  }

  /** The org this ledger is for (alerts and log lines name it). */
  get orgId(): string | null {
    return this.#orgId;
  }
}
