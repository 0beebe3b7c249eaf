/** The read model: executions as the API lists and shows them, confined to what the caller may see. */
import { and, asc, count, desc, eq, or, type SQL } from 'drizzle-orm';
import { isUuid, type Database } from '../db/index.js';
import { tenantScope } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import type { Principal } from '../iam/tokens.js';
import { executionMessages, executions, type ExecutionStatus, type StepStats } from './schema.js';

type ExecutionRow = typeof executions.$inferSelect;
type MessageRow = typeof executionMessages.$inferSelect;

export interface ExecutionSummary {
  id: string;
  flowExecId: string;
  flowId: string;
  tenant: string;
  status: ExecutionStatus;
  reason: string | null;
  trigger: ExecutionRow['trigger'];
  startedAt: string;
  recordedAt: string;
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
  recordedAt: row.createdAt.toISOString(),
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
    db
      .select()
      .from(executions)
      .where(where)
      .orderBy(desc(executions.startedAt), desc(executions.id))
      .limit(query.limit)
      .offset(query.offset),
    db.select({ total: count() }).from(executions).where(where),
  ]);
  return { executions: rows.map(toSummary), total: total?.total ?? 0 };
}

/** By flowExecId or record id; another tenant's is a 404. */
export async function getExecution(db: Database, principal: Principal, ref: string): Promise<Execution> {
  const scope = tenantScope(principal);
  const matches: SQL | undefined = isUuid(ref)
    ? or(eq(executions.flowExecId, ref), eq(executions.id, ref))
    : eq(executions.flowExecId, ref);
  const [row] = await db
    .select()
    .from(executions)
    .where(and(matches, scope === null ? undefined : eq(executions.tenantId, scope)))
    .limit(1);
  if (!row) throw notFound(`No execution ${ref} that you may see`);
  const messages = await db
    .select()
    .from(executionMessages)
    .where(eq(executionMessages.executionId, row.id))
    .orderBy(asc(executionMessages.at), asc(executionMessages.seq));
  return {
    ...toSummary(row),
    input: row.input,
    outputs: messages.filter((m) => m.kind === 'output').map((m) => ({ ...common(m), message: m.message })),
    errors: messages
      .filter((m) => m.kind === 'error')
      .map((m) => ({ ...common(m), error: m.error!, input: m.message, attempts: m.attempts })),
    dropped: { outputs: row.droppedOutputs, errors: row.droppedErrors },
  };
}
