// Who owns what a provider keeps for a tenant: stored Responses and their output items, code
// interpreter containers. Every tenant calls through the Worker's one provider account, so
// nothing upstream tells one tenant's stored conversation from another's (issue 22: carol continued alice's, and an
// unknown id's 400 told her which ids exist). The gateway records each id it hands out with its
// owner in the org's ledger (one writer: read your writes), and a request that names an id its
// caller does not own is refused exactly as an unknown id, before anything goes upstream.

// OpenAI keeps a stored response for 30 days: so long is its id worth remembering.
export const STORED_RETENTION_MS = 30 * 24 * 3_600_000;
// An hour's pruning deletes at most this many expired rows (the rest goes next time).
const PRUNE_BATCH = 20_000;

export const STORED_SCHEMA = `
CREATE TABLE IF NOT EXISTS stored_objects (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS stored_objects_expiry ON stored_objects (expires_at);
`;

/** Records `ids` as `userId`'s (a later record of the same id keeps its first owner). */
export function keepStored(sql: SqlStorage, ids: readonly string[], userId: string, now: number): void {
  for (const id of ids) {
    sql.exec(
      "INSERT INTO stored_objects (id, user_id, expires_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
      id,
      userId,
      now + STORED_RETENTION_MS,
    );
  }
}

/** The owner of each of `ids` this org still remembers (absent: not this org's, or expired). */
export function storedOwners(sql: SqlStorage, ids: readonly string[], now: number): Record<string, string> {
  const owners: Record<string, string> = {};
  for (const id of ids) {
    const row = sql
      .exec<{ userId: string }>("SELECT user_id AS userId FROM stored_objects WHERE id = ? AND expires_at > ?", id, now)
      .toArray()[0];
    if (row) owners[id] = row.userId;
  }
  return owners;
}

export function pruneStored(sql: SqlStorage, now: number): void {
  sql.exec(
    "DELETE FROM stored_objects WHERE id IN (SELECT id FROM stored_objects WHERE expires_at <= ? LIMIT ?)",
    now,
    PRUNE_BATCH,
  );
}
