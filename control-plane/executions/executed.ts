/**
 * What the edge delivered, recorded in the transaction that accepts it (control-plane/edge/service.ts):
 * an execution entering its flow (its flow.executed goes out in the same transaction), or one
 * refused on arrival, recorded as failed so that the 202 its caller got leads to a record.
 */
import { eq } from 'drizzle-orm';
import type { EventPayload } from '../../protocol/events.js';
import type { FlowStatus } from '../../protocol/flow.js';
import { capPayload } from '../../protocol/step-message.js';
import { emitAll } from '../bus/outbox.js';
import type { Database } from '../db/index.js';
import { trackDeliveries } from './deliveries.js';
import { emitFinished, ending, failAtOnce, type Ending } from './finish.js';
import { chunked, cut, lockRecord, MAX_REASON_MESSAGE_CHARS, SERVICE_NAME, type ExecutionRow } from './records.js';
import { executionDeliveries, executions } from './schema.js';

const notRunningReason = (flowId: string) => `flow ${flowId} was not running when this execution arrived`;

const runs = (status: FlowStatus) => status === 'starting' || status === 'active';

/** An accepted execution and the status its flow had when it arrived. */
export interface Accepted {
  payload: EventPayload<'flow.executed'>;
  status: FlowStatus;
}

/**
 * Records accepted executions in a few statements, whatever their number: each record with its
 * trigger, input and start, the first step's input tracked as delivered; one of a flow that is not
 * running fails at once. A record that exists already (made by results that came first) is
 * completed instead (applyToExisting).
 */
export async function recordAccepted(tx: Database, accepted: Accepted[]): Promise<void> {
  const byExecId = new Map(accepted.map((a) => [a.payload.flowExecId, a]));
  const created: ExecutionRow[] = [];
  await chunked(accepted, async (chunk) => {
    const values = chunk.map(({ payload, status }) => {
      const receivedAt = new Date(payload.receivedAt);
      const running = runs(status);
      return {
        flowExecId: payload.flowExecId,
        flowId: payload.flowId,
        tenantId: payload.tenant,
        status: running ? ('running' as const) : ('failed' as const),
        reason: running ? null : notRunningReason(payload.flowId),
        trigger: payload.trigger,
        input: capPayload(payload.message),
        startedAt: receivedAt,
        finishedAt: running ? null : receivedAt,
      };
    });
    created.push(...(await tx.insert(executions).values(values).onConflictDoNothing({ target: executions.flowExecId }).returning()));
  });
  const running = created.filter((row) => row.status === 'running');
  await chunked(running, (chunk) =>
    tx
      .insert(executionDeliveries)
      .values(chunk.map((row) => ({ executionId: row.id, deliveryId: byExecId.get(row.flowExecId)!.payload.message.id, delivered: true }))),
  );
  const failed = created.filter((row) => row.status === 'failed');
  await emitAll(
    tx,
    SERVICE_NAME,
    'execution.finished',
    failed.map((row) => ({ flowExecId: row.flowExecId, flowId: row.flowId, tenant: row.tenantId, status: 'failed', reason: row.reason! })),
  );
  const fresh = new Set(created.map((row) => row.flowExecId));
  // Locked in flowExecId order, as a batch of results locks them.
  const existing = accepted
    .filter((a) => !fresh.has(a.payload.flowExecId))
    .sort((a, b) => (a.payload.flowExecId < b.payload.flowExecId ? -1 : 1));
  for (const execution of existing) await applyToExisting(tx, execution);
}

/**
 * An accepted execution whose record its results made first: the trigger, the input and startedAt
 * are set and the first step's input is delivered, which ends the execution when every other
 * delivery already has its result. A flow that is not running fails it at once.
 */
async function applyToExisting(tx: Database, { payload, status }: Accepted): Promise<void> {
  const receivedAt = new Date(payload.receivedAt);
  // The flow is the tenant's (ingest checked it), so the tenant exists.
  const row = await lockRecord(tx, payload, receivedAt, true);
  if (!row || row.trigger !== null) return;
  const changes = { trigger: payload.trigger, input: capPayload(payload.message), startedAt: receivedAt };
  if (row.status === 'running' && !runs(status)) {
    await failAtOnce(tx, [row], notRunningReason(payload.flowId), { ...changes, finishedAt: receivedAt });
    return;
  }
  let ended: Ending | null = null;
  if (row.status === 'running') {
    const open = await trackDeliveries(tx, new Map([[row.id, new Map([[payload.message.id, { delivered: true, done: false }]])]]));
    if (!open.has(row.id)) ended = ending(row.steps, row.firstError, receivedAt);
  }
  await tx
    .update(executions)
    .set({ ...changes, ...ended, updatedAt: new Date() })
    .where(eq(executions.id, row.id));
  if (ended) await emitFinished(tx, [{ row, ending: ended }]);
}

/** What an execution the edge delivered may say of itself, checked or not. */
export interface RefusedExecution {
  flowExecId: string;
  flowId: string;
  tenant: string;
  receivedAt: Date;
  trigger: 'webhook' | 'schedule' | 'manual' | null;
  message: unknown;
}

/**
 * An execution the edge delivered that can never run (malformed, or its flow is not in its
 * tenant): recorded as failed with the reason, once, so that the 202 its caller got leads to a
 * record, started when it arrived. Nothing when it names no known tenant, or when a delivery of it
 * was recorded already; a record its results made first is failed the same way.
 */
export async function recordRefused(tx: Database, refused: RefusedExecution, reason: string): Promise<boolean> {
  const row = await lockRecord(tx, refused, refused.receivedAt);
  if (row?.status !== 'running' || row.trigger !== null) return false;
  await failAtOnce(tx, [row], cut(reason, MAX_REASON_MESSAGE_CHARS), {
    trigger: refused.trigger,
    input: refused.message === undefined ? null : capPayload(refused.message),
    startedAt: refused.receivedAt,
    finishedAt: refused.receivedAt,
  });
  return true;
}
