/**
 * What every change to an execution record starts from: the record, created by whichever of its
 * events comes first and locked while one is applied, and the limits of what it keeps.
 */
import { eq, inArray } from 'drizzle-orm';
import { isUuid, type Database } from '../db/index.js';
import { tenants } from '../iam/schema.js';
import { executions } from './schema.js';

export const SERVICE_NAME = 'executions';
/** The inbox consumer under which each step result's id is recorded, so a result reported twice applies once. */
export const RESULTS_CONSUMER = 'executions.results';

/** Outputs, and errors, an execution keeps: the newest of each; older ones are dropped and counted. */
export const MAX_MESSAGES = 100;
/** Error messages and stacks are cut to this many characters. */
export const MAX_ERROR_CHARS = 4000;
/** The error message a failure reason quotes is cut shorter, so the reason fits execution.finished (2000 characters). */
export const MAX_REASON_MESSAGE_CHARS = 1500;

export type ExecutionRow = typeof executions.$inferSelect;
export type ExecutionRef = { flowExecId: string; flowId: string; tenant: string };

export const cut = (text: string, max = MAX_ERROR_CHARS) =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;

/** Rows (or ids) per statement, well under PostgreSQL's 65535 parameters. */
const CHUNK = 4000;
export async function chunked<T>(items: T[], run: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) await run(items.slice(i, i + CHUNK));
}

/** The known tenants among `ids` (ids that are not uuids name no tenant). */
export async function knownTenants(tx: Database, ids: Iterable<string>): Promise<Set<string>> {
  const candidates = [...new Set(ids)].filter(isUuid);
  if (candidates.length === 0) return new Set();
  const rows = await tx.select({ id: tenants.id }).from(tenants).where(inArray(tenants.id, candidates));
  return new Set(rows.map((r) => r.id));
}

/**
 * The record of `ref.flowExecId`, created by whichever of its events comes first, and locked until
 * the transaction ends so that events of one execution apply one at a time. Null when the event
 * names no known tenant, or another tenant or flow than the record's: it is not applied.
 */
export async function lockRecord(tx: Database, ref: ExecutionRef, at: Date, tenantKnown = false): Promise<ExecutionRow | null> {
  if (!tenantKnown && !(await knownTenants(tx, [ref.tenant])).has(ref.tenant)) return null;
  await tx
    .insert(executions)
    .values({ flowExecId: ref.flowExecId, flowId: ref.flowId, tenantId: ref.tenant, startedAt: at })
    .onConflictDoNothing({ target: executions.flowExecId });
  const [row] = await tx.select().from(executions).where(eq(executions.flowExecId, ref.flowExecId)).for('update');
  return row && row.tenantId === ref.tenant && row.flowId === ref.flowId ? row : null;
}
