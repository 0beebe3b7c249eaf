/** How an execution ends: by its results (succeeded or failed), or failed at once; either way execution.finished goes out. */
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core';
import type { EventPayload } from '../../protocol/events.js';
import { emitAll } from '../bus/outbox.js';
import { isUuid, type Database } from '../db/index.js';
import { chunked, cut, MAX_REASON_MESSAGE_CHARS, SERVICE_NAME, type ExecutionRow } from './records.js';
import { executionDeliveries, executions, type FirstError, type StepStats } from './schema.js';

export const STOPPED_REASON = 'the flow was stopped before this execution finished';

export interface Ending {
  status: 'succeeded' | 'failed';
  reason: string | null;
  finishedAt: Date;
}

const totalErrors = (steps: Record<string, StepStats>) => Object.values(steps).reduce((sum, step) => sum + step.errors, 0);

/**
 * The end of an execution all of whose deliveries have a result: failed if any step failed an
 * input, naming the first; finished when its last result ended (not before it started).
 */
export function ending(steps: Record<string, StepStats>, firstError: FirstError | null, startedAt: Date): Ending {
  const ends = Object.values(steps).map((step) => Date.parse(step.lastAt));
  const finishedAt = new Date(Math.max(startedAt.getTime(), ...ends));
  if (!firstError) return { status: 'succeeded', reason: null, finishedAt };
  const errors = totalErrors(steps);
  const more = errors > 1 ? ` (${errors} inputs failed in all)` : '';
  return {
    status: 'failed',
    reason: `step ${firstError.stepId} failed: ${cut(firstError.message, MAX_REASON_MESSAGE_CHARS)}${more}`,
    finishedAt,
  };
}

export async function emitFinished(tx: Database, ended: { row: ExecutionRow; ending: Pick<Ending, 'status' | 'reason'> }[]): Promise<void> {
  await chunked(ended, (chunk) =>
    emitAll(
      tx,
      SERVICE_NAME,
      'execution.finished',
      chunk.map(({ row, ending }) => ({
        flowExecId: row.flowExecId,
        flowId: row.flowId,
        tenant: row.tenantId,
        status: ending.status,
        ...(ending.reason === null ? {} : { reason: ending.reason }),
      })),
    ),
  );
}

/**
 * Fails the (locked) records at once with `reason`, whatever their deliveries, setting `changes`
 * too (finishedAt among them), and forgets their deliveries.
 */
export async function failAtOnce(
  tx: Database,
  rows: ExecutionRow[],
  reason: string,
  changes: PgUpdateSetSource<typeof executions>,
): Promise<void> {
  await chunked(
    rows.map((row) => row.id),
    async (ids) => {
      await tx
        .update(executions)
        .set({ ...changes, status: 'failed', reason, updatedAt: new Date() })
        .where(inArray(executions.id, ids));
      await tx.delete(executionDeliveries).where(inArray(executionDeliveries.executionId, ids));
    },
  );
  await emitFinished(
    tx,
    rows.map((row) => ({ row, ending: { status: 'failed', reason } })),
  );
}

/** flow.stopped: every running execution of the flow fails (finishedAt: the event's time). Returns how many. */
export async function recordFlowStopped(tx: Database, payload: EventPayload<'flow.stopped'>, at: Date): Promise<number> {
  if (!isUuid(payload.tenant)) return 0;
  // Locked in flowExecId order, as a batch of results locks them.
  const running = await tx
    .select()
    .from(executions)
    .where(and(eq(executions.flowId, payload.id), eq(executions.tenantId, payload.tenant), eq(executions.status, 'running')))
    .orderBy(asc(executions.flowExecId))
    .for('update');
  await failAtOnce(tx, running, STOPPED_REASON, {
    finishedAt: sql`greatest(${at.toISOString()}::timestamptz, ${executions.startedAt})`,
  });
  return running.length;
}
