import { inArray } from 'drizzle-orm';
import { triggerProblems, type EdgeTrigger, type WebhookAuth, type WebhookAuthSettings } from '../../protocol/edge.js';
import type { Flow } from '../../protocol/flow.js';
import { flowExecutedSchema, type EventPayload } from '../../protocol/events.js';
import { emitAll } from '../bus/outbox.js';
import { isUuid, type Database } from '../db/index.js';
import { describeIssue } from '../http/errors.js';
import { flows } from '../flows/schema.js';
import { recordAccepted, recordRefused, type RefusedExecution } from '../executions/executed.js';
import { apiKeyValues } from '../secrets/service.js';
import { transact, type Services } from '../services.js';
import { edgeExecutions } from './schema.js';

export const SERVICE_NAME = 'edge-bridge';

export interface IngestAnswer {
  /** New: published as flow.executed. */
  accepted: string[];
  /** Received before: nothing done again. */
  duplicates: string[];
  /** Can never be accepted (malformed, or for a flow that does not exist in that tenant): the edge drops them. */
  rejected: { flowExecId: string; reason: string }[];
}

/**
 * Executions from the edge: each new flowExecId is recorded, its execution record made and its
 * `flow.executed` published in one transaction, so a batch the edge sends again (it retries until it
 * gets an answer) publishes nothing twice. One that can never run is rejected (the edge drops it) and recorded as a failed execution
 * with the reason, when it names a tenant that exists.
 */
export async function ingestExecutions(services: Services, batch: unknown[]): Promise<IngestAnswer> {
  const answer: IngestAnswer = { accepted: [], duplicates: [], rejected: [] };
  const valid: EventPayload<'flow.executed'>[] = [];
  const refused: { item: unknown; reason: string }[] = [];
  for (const item of batch) {
    const parsed = flowExecutedSchema.safeParse(item);
    if (parsed.success) valid.push(parsed.data);
    else
      refused.push({
        item,
        reason: `the edge delivered an execution that cannot be read: ${parsed.error.issues.map((issue) => describeIssue(issue, 'execution')).join('; ')}`,
      });
  }

  await transact(services, async (tx) => {
    const ids = [...new Set(valid.map((e) => e.flowId))].filter(isUuid);
    const known = ids.length
      ? await tx.select({ id: flows.id, tenantId: flows.tenantId, status: flows.status }).from(flows).where(inArray(flows.id, ids))
      : [];
    // First of each flowExecId, of a flow that exists in its tenant; a later one in the same batch is a duplicate.
    const candidates = new Map<string, EventPayload<'flow.executed'>>();
    const statusOf = new Map(known.map((f) => [f.id, f.status]));
    for (const execution of valid) {
      const flow = known.find((f) => f.id === execution.flowId);
      if (!flow || flow.tenantId !== execution.tenant) {
        refused.push({
          item: execution,
          reason: `no flow ${execution.flowId} in this tenant when the execution arrived (it was deleted, or never was)`,
        });
      } else if (candidates.has(execution.flowExecId)) answer.duplicates.push(execution.flowExecId);
      else candidates.set(execution.flowExecId, execution);
    }
    // One statement records them all; those already recorded come back missing: received before.
    const recorded = candidates.size
      ? await tx
          .insert(edgeExecutions)
          .values([...candidates.values()].map((e) => ({ flowExecId: e.flowExecId, flowId: e.flowId, receivedAt: new Date(e.receivedAt) })))
          .onConflictDoNothing()
          .returning({ flowExecId: edgeExecutions.flowExecId })
      : [];
    const fresh = new Set(recorded.map((r) => r.flowExecId));
    const accepted = [...candidates.values()].filter((e) => fresh.has(e.flowExecId));
    for (const e of candidates.values()) if (!fresh.has(e.flowExecId)) answer.duplicates.push(e.flowExecId);
    await recordAccepted(
      tx,
      accepted.map((payload) => ({ payload, status: statusOf.get(payload.flowId)! })),
    );
    await emitAll(tx, SERVICE_NAME, 'flow.executed', accepted);
    answer.accepted.push(...accepted.map((e) => e.flowExecId));
    for (const { item, reason } of refused) {
      const ref = refusedExecution(item);
      answer.rejected.push({ flowExecId: ref?.flowExecId ?? stringField(item, 'flowExecId') ?? '', reason });
      if (ref) await recordRefused(tx, ref, reason);
    }
  });
  if (answer.rejected.length > 0) services.logger.warn({ rejected: answer.rejected }, 'edge executions rejected');
  return answer;
}

const stringField = (item: unknown, name: string): string | null => {
  const value = (item as Record<string, unknown> | null)?.[name];
  return typeof value === 'string' && value.length > 0 && value.length <= 200 ? value : null;
};

/** What a refused execution says of itself, when that is enough to record it: ids, and a tenant id that may exist. */
function refusedExecution(item: unknown): RefusedExecution | null {
  const [flowExecId, flowId, tenant] = [stringField(item, 'flowExecId'), stringField(item, 'flowId'), stringField(item, 'tenant')];
  if (!flowExecId || !flowId || !tenant || !isUuid(tenant)) return null;
  const received = new Date(stringField(item, 'receivedAt') ?? NaN);
  const trigger = stringField(item, 'trigger');
  return {
    flowExecId,
    flowId,
    tenant,
    receivedAt: Number.isNaN(received.getTime()) ? new Date() : received,
    trigger: trigger === 'webhook' || trigger === 'schedule' || trigger === 'manual' ? trigger : null,
    message: (item as { message?: unknown }).message,
  };
}

/**
 * What should be at the edge now: a trigger for every starting (recorded) or active (live) flow,
 * versioned by the flow's last change. `asOf` versions the removal of everything else. A flow whose
 * webhook secrets cannot be resolved is left out, so its webhook stays closed.
 */
export async function desiredTriggers(services: Services): Promise<{ asOf: number; triggers: EdgeTrigger[] }> {
  const asOf = Date.now();
  const rows = await services.db
    .select()
    .from(flows)
    .where(inArray(flows.status, ['starting', 'active']));
  const triggers: EdgeTrigger[] = [];
  for (const flow of rows) {
    try {
      triggers.push(
        await triggerOf(
          services,
          { ...flow, tenant: flow.tenantId },
          flow.status === 'active' ? 'live' : 'starting',
          flow.updatedAt.getTime(),
        ),
      );
    } catch (error) {
      services.logger.warn({ flowId: flow.id, err: error }, 'flow left out of the edge: its webhook secrets cannot be resolved');
    }
  }
  return { asOf, triggers };
}

/** A flow's trigger as the edge keeps it, its webhook secrets resolved from the secret store. */
export async function triggerOf(
  services: Services,
  flow: Pick<Flow, 'id' | 'tenant' | 'flowSettings' | 'cron' | 'timezone'>,
  status: EdgeTrigger['status'],
  version: number,
  db: Database = services.db,
): Promise<EdgeTrigger> {
  return {
    flowId: flow.id,
    tenant: flow.tenant,
    status,
    version,
    webhooks: { auth: await resolveWebhookAuth(services, flow.tenant, flow.flowSettings?.webhooks?.auth, db) },
    cron: flow.cron ?? null,
    timezone: flow.timezone ?? null,
    misfire: flow.flowSettings?.schedule?.misfire ?? 'skip',
  };
}

/** What the edge would say to the flow's trigger, were it pushed now (protocol/edge.ts triggerProblems), or null when it would take it. */
export async function edgeRefusal(
  services: Services,
  db: Database,
  flow: Pick<Flow, 'id' | 'tenant' | 'flowSettings' | 'cron' | 'timezone'>,
): Promise<string | null> {
  return triggerProblems(await triggerOf(services, flow, 'starting', 0, db));
}

async function resolveWebhookAuth(
  services: Services,
  tenant: string,
  auth: WebhookAuthSettings | undefined,
  db: Database,
): Promise<WebhookAuth | undefined> {
  if (!auth) return undefined;
  const ids = auth.type === 'standard-webhooks' ? auth.secretIds : [auth.secretId];
  const keys = await apiKeyValues(services, tenant, ids, db);
  switch (auth.type) {
    case 'hmac': {
      const { secretId, ...rest } = auth;
      return { ...rest, secret: keys.get(secretId)! };
    }
    case 'standard-webhooks':
      return { type: auth.type, toleranceSeconds: auth.toleranceSeconds, secrets: auth.secretIds.map((id) => keys.get(id)!) };
    case 'bearer':
      return { type: auth.type, token: keys.get(auth.secretId)! };
  }
}
