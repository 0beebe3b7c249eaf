import { and, asc, count, desc, eq, lt, or, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { EventPayload } from '../../protocol/events.js';
import type { Database } from '../db/index.js';
import { tenantScope } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import { tenants } from '../iam/schema.js';
import type { Principal } from '../iam/tokens.js';
import { executionMessages, executions, type ExecutionStatus, type StepStats } from './schema.js';

export const SERVICE_NAME = 'executions';

/** Outputs, and errors, an execution keeps: the newest of each; older ones are dropped and counted. */
export const MAX_MESSAGES = 100;
/** A recorded payload (message, input) larger than this as JSON is replaced by a preview. */
export const MAX_PAYLOAD_BYTES = 16 * 1024;
const PREVIEW_CHARS = 1024;
/** Error messages and stacks are cut to this many characters. */
export const MAX_ERROR_CHARS = 4000;

type ExecutionRow = typeof executions.$inferSelect;
type MessageRow = typeof executionMessages.$inferSelect;
type ExecutionRef = { flowExecId: string; flowId: string; tenant: string };

/** A payload as recorded: itself, or when too large `{ truncated: true, bytes, preview }` with the start of its JSON. */
function capPayload(value: unknown): unknown {
  if (value === undefined) return null;
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text, 'utf8');
  return bytes <= MAX_PAYLOAD_BYTES ? value : { truncated: true, bytes, preview: text.slice(0, PREVIEW_CHARS) };
}

const cut = (text: string) => (text.length <= MAX_ERROR_CHARS ? text : `${text.slice(0, MAX_ERROR_CHARS)}… (${text.length - MAX_ERROR_CHARS} more characters)`);

const isUuid = (value: string) => z.uuid().safeParse(value).success;

/**
 * The record of `ref.flowExecId`, created by whichever of its events comes first, and locked until
 * the transaction ends so that events of one execution apply one at a time. Null when the event
 * names no known tenant, or another tenant or flow than the record's: it is not applied.
 */
async function lockRecord(tx: Database, ref: ExecutionRef, at: Date): Promise<ExecutionRow | null> {
  if (!isUuid(ref.tenant)) return null;
  const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, ref.tenant));
  if (!tenant) return null;
  await tx
    .insert(executions)
    .values({ flowExecId: ref.flowExecId, flowId: ref.flowId, tenantId: ref.tenant, startedAt: at })
    .onConflictDoNothing({ target: executions.flowExecId });
  const [row] = await tx.select().from(executions).where(eq(executions.flowExecId, ref.flowExecId)).for('update');
  return row && row.tenantId === ref.tenant && row.flowId === ref.flowId ? row : null;
}

/** flow.executed's receivedAt once it has arrived (trigger is set then); until then the earliest step event's time. */
const startedAt = (row: ExecutionRow, at: Date) => (row.trigger !== null || row.startedAt.getTime() <= at.getTime() ? row.startedAt : at);

/** The steps with one more in, out or error for `stepId` at `at`. */
function counted(steps: Record<string, StepStats>, stepId: string, counter: 'in' | 'out' | 'errors', at: Date): Record<string, StepStats> {
  const when = at.toISOString();
  const step = steps[stepId] ?? { in: 0, out: 0, errors: 0, firstAt: when, lastAt: when };
  return {
    ...steps,
    [stepId]: { ...step, [counter]: step[counter] + 1, firstAt: step.firstAt < when ? step.firstAt : when, lastAt: step.lastAt > when ? step.lastAt : when },
  };
}

async function update(tx: Database, row: ExecutionRow, changes: Partial<typeof executions.$inferInsert>): Promise<void> {
  await tx
    .update(executions)
    .set({ ...changes, updatedAt: new Date() })
    .where(eq(executions.id, row.id));
}

/** Appends an output or error and deletes the oldest of its kind beyond MAX_MESSAGES; returns how many went. */
async function append(tx: Database, message: typeof executionMessages.$inferInsert): Promise<number> {
  await tx.insert(executionMessages).values(message);
  const ofKind = and(eq(executionMessages.executionId, message.executionId), eq(executionMessages.kind, message.kind));
  const [oldestKept] = await tx
    .select({ seq: executionMessages.seq })
    .from(executionMessages)
    .where(ofKind)
    .orderBy(desc(executionMessages.seq))
    .offset(MAX_MESSAGES - 1)
    .limit(1);
  if (!oldestKept) return 0;
  const dropped = await tx
    .delete(executionMessages)
    .where(and(ofKind, lt(executionMessages.seq, oldestKept.seq)))
    .returning({ seq: executionMessages.seq });
  return dropped.length;
}

/** Each applier returns whether the event was applied (false: not, see lockRecord). */
export async function recordExecuted(tx: Database, payload: EventPayload<'flow.executed'>): Promise<boolean> {
  const receivedAt = new Date(payload.receivedAt);
  const row = await lockRecord(tx, payload, receivedAt);
  if (!row) return false;
  await update(tx, row, { trigger: payload.trigger, input: capPayload(payload.message), startedAt: receivedAt });
  return true;
}

export async function recordStepStarted(tx: Database, payload: EventPayload<'execution.step.started'>, at: Date): Promise<boolean> {
  const row = await lockRecord(tx, payload, at);
  if (!row) return false;
  await update(tx, row, { steps: counted(row.steps, payload.stepId, 'in', at), startedAt: startedAt(row, at) });
  return true;
}

export async function recordStepSucceeded(tx: Database, payload: EventPayload<'execution.step.succeeded'>, at: Date): Promise<boolean> {
  const row = await lockRecord(tx, payload, at);
  if (!row) return false;
  const dropped = await append(tx, {
    executionId: row.id,
    kind: 'output',
    stepId: payload.stepId,
    messageId: payload.messageId,
    message: capPayload(payload.message),
    durationMs: payload.durationMs,
    at,
  });
  await update(tx, row, { steps: counted(row.steps, payload.stepId, 'out', at), startedAt: startedAt(row, at), droppedOutputs: row.droppedOutputs + dropped });
  return true;
}

export async function recordStepFailed(tx: Database, payload: EventPayload<'execution.step.failed'>, at: Date): Promise<boolean> {
  const row = await lockRecord(tx, payload, at);
  if (!row) return false;
  const error = { message: cut(payload.error.message), ...(payload.error.stack === undefined ? {} : { stack: cut(payload.error.stack) }) };
  const dropped = await append(tx, {
    executionId: row.id,
    kind: 'error',
    stepId: payload.stepId,
    messageId: payload.messageId,
    message: capPayload(payload.input),
    error,
    attempts: payload.attempts,
    durationMs: payload.durationMs,
    at,
  });
  await update(tx, row, { steps: counted(row.steps, payload.stepId, 'errors', at), startedAt: startedAt(row, at), droppedErrors: row.droppedErrors + dropped });
  return true;
}

/** Sets the final status; step events that arrive later still count, but do not change it. */
export async function recordFinished(tx: Database, payload: EventPayload<'execution.finished'>, at: Date): Promise<boolean> {
  const row = await lockRecord(tx, payload, at);
  if (!row) return false;
  await update(tx, row, { status: payload.status, reason: payload.reason ? cut(payload.reason) : null, finishedAt: at, startedAt: startedAt(row, at) });
  return true;
}

export interface ExecutionSummary {
  id: string;
  flowExecId: string;
  flowId: string;
  tenant: string;
  status: ExecutionStatus;
  reason: string | null;
  trigger: ExecutionRow['trigger'];
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  steps: Record<string, StepStats>;
}

export interface StepOutput {
  stepId: string;
  messageId: string | null;
  message: unknown;
  durationMs: number | null;
  at: string;
}

export interface StepError {
  stepId: string;
  messageId: string | null;
  error: { message: string; stack?: string };
  input: unknown;
  attempts: number | null;
  durationMs: number | null;
  at: string;
}

export interface Execution extends ExecutionSummary {
  input: unknown;
  outputs: StepOutput[];
  errors: StepError[];
  dropped: { outputs: number; errors: number };
}

const toSummary = (row: ExecutionRow): ExecutionSummary => ({
  id: row.id,
  flowExecId: row.flowExecId,
  flowId: row.flowId,
  tenant: row.tenantId,
  status: row.status,
  reason: row.reason,
  trigger: row.trigger,
  startedAt: row.startedAt.toISOString(),
  finishedAt: row.finishedAt?.toISOString() ?? null,
  durationMs: row.finishedAt ? row.finishedAt.getTime() - row.startedAt.getTime() : null,
  steps: row.steps,
});

const common = (m: MessageRow) => ({ stepId: m.stepId, messageId: m.messageId, durationMs: m.durationMs, at: m.at.toISOString() });

export async function listExecutions(
  db: Database,
  principal: Principal,
  query: { flowId?: string; status?: ExecutionStatus; limit: number; offset: number },
): Promise<{ executions: ExecutionSummary[]; total: number }> {
  const scope = tenantScope(principal);
  const where = and(
    scope === null ? undefined : eq(executions.tenantId, scope),
    query.flowId === undefined ? undefined : eq(executions.flowId, query.flowId),
    query.status === undefined ? undefined : eq(executions.status, query.status),
  );
  const [rows, [total]] = await Promise.all([
    db.select().from(executions).where(where).orderBy(desc(executions.startedAt), desc(executions.id)).limit(query.limit).offset(query.offset),
    db.select({ total: count() }).from(executions).where(where),
  ]);
  return { executions: rows.map(toSummary), total: total?.total ?? 0 };
}

/** By flowExecId or record id; another tenant's is a 404. */
export async function getExecution(db: Database, principal: Principal, ref: string): Promise<Execution> {
  const scope = tenantScope(principal);
  const matches: SQL | undefined = isUuid(ref) ? or(eq(executions.flowExecId, ref), eq(executions.id, ref)) : eq(executions.flowExecId, ref);
  const [row] = await db
    .select()
    .from(executions)
    .where(and(matches, scope === null ? undefined : eq(executions.tenantId, scope)))
    .limit(1);
  if (!row) throw notFound(`No execution ${ref} that you may see`);
  const messages = await db.select().from(executionMessages).where(eq(executionMessages.executionId, row.id)).orderBy(asc(executionMessages.at), asc(executionMessages.seq));
  return {
    ...toSummary(row),
    input: row.input,
    outputs: messages.filter((m) => m.kind === 'output').map((m) => ({ ...common(m), message: m.message })),
    errors: messages.filter((m) => m.kind === 'error').map((m) => ({ ...common(m), error: m.error!, input: m.message, attempts: m.attempts })),
    dropped: { outputs: row.droppedOutputs, errors: row.droppedErrors },
  };
}
