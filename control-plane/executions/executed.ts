/**
 * What the edge delivered: an execution entering its flow (flow.executed), or one refused on
 * arrival (control-plane/edge/service.ts), recorded as failed so that the 202 its caller got
 * leads to a record.
 */
import { and, eq } from 'drizzle-orm';
import type { EventPayload } from '../../protocol/events.js';
import type { FlowStatus } from '../../protocol/flow.js';
import { capPayload } from '../../protocol/step-message.js';
import { isUuid, type Database } from '../db/index.js';
import { flows } from '../flows/schema.js';
import { trackDeliveries } from './deliveries.js';
import { emitFinished, ending, failAtOnce, type Ending } from './finish.js';
import { cut, lockRecord, MAX_REASON_MESSAGE_CHARS } from './records.js';
import { executions } from './schema.js';

const notRunningReason = (flowId: string) => `flow ${flowId} was not running when this execution arrived`;

/** The status of the tenant's flow, or null when it has no such flow. */
async function flowStatus(tx: Database, flowId: string, tenant: string): Promise<FlowStatus | null> {
  if (!isUuid(flowId) || !isUuid(tenant)) return null;
  const [flow] = await tx
    .select({ status: flows.status })
    .from(flows)
    .where(and(eq(flows.id, flowId), eq(flows.tenantId, tenant)));
  return flow?.status ?? null;
}

/**
 * flow.executed: the trigger, the input and startedAt; the first step's input (the message) is
 * delivered, which ends the execution when every other delivery already has its result. A flow
 * that is not running fails it at once. A second flow.executed of one flowExecId changes nothing.
 * False when it is ignored: its tenant is unknown, or the record is another tenant's or flow's.
 */
export async function recordExecuted(tx: Database, payload: EventPayload<'flow.executed'>): Promise<boolean> {
  const receivedAt = new Date(payload.receivedAt);
  const status = await flowStatus(tx, payload.flowId, payload.tenant);
  // A flow of the tenant proves the tenant exists.
  const row = await lockRecord(tx, payload, receivedAt, status !== null);
  if (!row) return false;
  if (row.trigger !== null) return true;
  const changes = { trigger: payload.trigger, input: capPayload(payload.message), startedAt: receivedAt };
  if (row.status === 'running' && status !== 'starting' && status !== 'active') {
    await failAtOnce(tx, [row], notRunningReason(payload.flowId), { ...changes, finishedAt: receivedAt });
    return true;
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
  if (ended) await emitFinished(tx, row, ended);
  return true;
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
 * record. Nothing when it names no known tenant, or when its record exists already.
 */
export async function recordRefused(tx: Database, refused: RefusedExecution, reason: string): Promise<boolean> {
  const row = await lockRecord(tx, refused, refused.receivedAt);
  if (row?.status !== 'running' || row.trigger !== null) return false;
  await failAtOnce(tx, [row], cut(reason, MAX_REASON_MESSAGE_CHARS), {
    trigger: refused.trigger,
    input: refused.message === undefined ? null : capPayload(refused.message),
    finishedAt: refused.receivedAt,
  });
  return true;
}
