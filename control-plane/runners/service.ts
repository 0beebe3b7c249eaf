import { and, asc, count, eq } from 'drizzle-orm';
import { HEARTBEAT_SECONDS, type Heartbeat, type RunnerRegistration } from '../../protocol/runner.js';
import type { Database } from '../db/index.js';
import { tenantScope } from '../http/auth.js';
import { forbidden, notFound } from '../http/errors.js';
import type { Principal } from '../iam/tokens.js';
import { runners } from './schema.js';

type RunnerRow = typeof runners.$inferSelect;

export interface Runner {
  id: string;
  name: string;
  host: string;
  driver: RunnerRow['driver'];
  capacity: number;
  version: string | null;
  tenant: string | null;
  status: 'alive' | 'lost';
  lastSeenAt: string;
  running: Heartbeat['running'];
  registeredAt: string;
}

/** A runner silent for three heartbeats is lost: its flows are for the others (placement, issue 4). */
export const LOST_AFTER_MS = 3 * HEARTBEAT_SECONDS * 1000;

const toRunner = (row: RunnerRow, now = Date.now()): Runner => ({
  id: row.id,
  name: row.name,
  host: row.host,
  driver: row.driver,
  capacity: row.capacity,
  version: row.version,
  tenant: row.tenantId,
  status: now - row.lastSeenAt.getTime() <= LOST_AFTER_MS ? 'alive' : 'lost',
  lastSeenAt: row.lastSeenAt.toISOString(),
  running: row.running,
  registeredAt: row.createdAt.toISOString(),
});

/** A runner registers as its service account; registering again under the same name is the same runner, restarted. */
export async function registerRunner(db: Database, principal: Principal, input: RunnerRegistration): Promise<{ runner: Runner; created: boolean }> {
  if (principal.tokenKind !== 'service') throw forbidden('Runners register with a service-account token (POST /api/v1/tokens)');
  const values = { ...input, accountId: principal.userId, tenantId: principal.tenantId, lastSeenAt: new Date(), running: [] };
  const [inserted] = await db.insert(runners).values(values).onConflictDoNothing().returning();
  if (inserted) return { runner: toRunner(inserted), created: true };
  const [updated] = await db
    .update(runners)
    .set({ ...values, updatedAt: new Date() })
    .where(and(eq(runners.accountId, principal.userId), eq(runners.name, input.name)))
    .returning();
  return { runner: toRunner(updated!), created: false };
}

/** A runner reports that it is alive and what it runs; only its own account may. */
export async function heartbeat(db: Database, principal: Principal, id: string, beat: Heartbeat): Promise<Runner> {
  const [row] = await db
    .update(runners)
    .set({ lastSeenAt: new Date(), running: beat.running })
    .where(and(eq(runners.id, id), eq(runners.accountId, principal.userId)))
    .returning();
  if (!row) throw notFound(`No runner ${id} registered by this account`);
  return toRunner(row);
}

const visible = (principal: Principal) => {
  const scope = tenantScope(principal);
  return scope === null ? undefined : eq(runners.tenantId, scope);
};

export async function listRunners(db: Database, principal: Principal, paging: { limit: number; offset: number }): Promise<{ runners: Runner[]; total: number }> {
  const where = visible(principal);
  const [rows, [counted]] = await Promise.all([
    db.select().from(runners).where(where).orderBy(asc(runners.name), asc(runners.id)).limit(paging.limit).offset(paging.offset),
    db.select({ total: count() }).from(runners).where(where),
  ]);
  return { runners: rows.map((row) => toRunner(row)), total: counted?.total ?? 0 };
}

export async function getRunner(db: Database, principal: Principal, id: string): Promise<Runner> {
  const [row] = await db.select().from(runners).where(and(eq(runners.id, id), visible(principal)));
  if (!row) throw notFound(`No runner ${id} that you may see`);
  return toRunner(row);
}

/** Forgets a runner (it was taken out of service); a runner that is still running registers again. */
export async function deregisterRunner(db: Database, principal: Principal, id: string): Promise<void> {
  const deleted = await db.delete(runners).where(and(eq(runners.id, id), visible(principal))).returning({ id: runners.id });
  if (deleted.length === 0) throw notFound(`No runner ${id} that you may see`);
}
