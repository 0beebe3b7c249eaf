import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, ilike, isNull, ne, or, sql, type SQL } from 'drizzle-orm';
import { flowCreateSchema, type Flow, type FlowCreate, type FlowPatch, type FlowStatus } from '../../protocol/flow.js';
import { emit } from '../bus/outbox.js';
import { escapeLike, isUuid, type Database } from '../db/index.js';
import { tenantScope } from '../http/auth.js';
import { ApiError, conflict, describeIssue, forbidden, notFound } from '../http/errors.js';
import { tokens } from '../iam/schema.js';
import { edgeRefusal } from '../edge/service.js';
import { checkApiKeySecrets, unreadableSecrets, type FlowUser } from '../secrets/service.js';
import type { Principal } from '../iam/tokens.js';
import { transact, type Services } from '../services.js';
import { flows } from './schema.js';

/** The name the flow repository emits under and consumes as. */
export const SERVICE_NAME = 'flow-repository';

type FlowRow = typeof flows.$inferSelect;
type Owner = FlowRow['owners'][number];

/** The merged flow of a PATCH breaks rules: one message per broken rule. */
export class InvalidFlowError extends ApiError {
  constructor(readonly problems: string[]) {
    super(400, problems.join('; '), 'validation_error');
  }
}

export function toFlow(row: FlowRow): Flow {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    status: row.status,
    statusReason: row.statusReason,
    type: row.type,
    cron: row.cron,
    timezone: row.timezone,
    owners: row.owners,
    tenant: row.tenantId,
    graph: row.graph,
    flowSettings: row.flowSettings,
    startedBy: row.startedBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export interface FlowListQuery {
  status?: FlowStatus;
  type?: Flow['type'];
  user?: string;
  search?: string;
  sort: { field: 'name' | 'createdAt' | 'updatedAt'; descending: boolean };
  limit: number;
  offset: number;
}

const sortColumns = { name: flows.name, createdAt: flows.createdAt, updatedAt: flows.updatedAt };

/** The flows the caller may see, narrowed by the query's filters; `user` narrows within them, never widens. */
export async function listFlows(db: Database, principal: Principal, query: FlowListQuery): Promise<{ flows: Flow[]; total: number }> {
  const scope = tenantScope(principal);
  const conditions: (SQL | undefined)[] = [
    scope === null ? undefined : eq(flows.tenantId, scope),
    query.status ? eq(flows.status, query.status) : undefined,
    query.type ? eq(flows.type, query.type) : undefined,
    query.user ? sql`${flows.owners} @> ${JSON.stringify([{ id: query.user, type: 'user' }])}::jsonb` : undefined,
  ];
  const search = query.search?.trim();
  if (search) {
    const pattern = `%${escapeLike(search)}%`;
    conditions.push(or(ilike(flows.name, pattern), ilike(flows.description, pattern)));
  }
  const where = and(...conditions);
  const direction = query.sort.descending ? desc : asc;
  const [rows, [counted]] = await Promise.all([
    db
      .select()
      .from(flows)
      .where(where)
      .orderBy(direction(sortColumns[query.sort.field]), direction(flows.id))
      .limit(query.limit)
      .offset(query.offset),
    db.select({ total: count() }).from(flows).where(where),
  ]);
  return { flows: rows.map(toFlow), total: counted?.total ?? 0 };
}

const visible = (principal: Principal, id: string) => {
  const scope = tenantScope(principal);
  return scope === null ? eq(flows.id, id) : and(eq(flows.id, id), eq(flows.tenantId, scope));
};

const notFoundFlow = (id: string) => notFound(`Flow ${id} not found`);

export async function getFlow(db: Database, principal: Principal, id: string): Promise<Flow> {
  const scope = tenantScope(principal);
  const reads = flowReadsOf(db);
  const [row] = await (scope === null ? reads.any.execute({ id }) : reads.inTenant.execute({ id, tenant: scope }));
  if (!row) throw notFoundFlow(id);
  return toFlow(row);
}

/**
 * The flow reads of GET /flows/{id} are prepared statements, planned once per database: building
 * the query each time was a tenth of an authenticated read's CPU (bench/flows-api.ts).
 */
const flowReads = new WeakMap<Database, ReturnType<typeof prepareFlowReads>>();

function flowReadsOf(db: Database) {
  let reads = flowReads.get(db);
  if (!reads) flowReads.set(db, (reads = prepareFlowReads(db)));
  return reads;
}

function prepareFlowReads(db: Database) {
  const id = eq(flows.id, sql.placeholder('id'));
  return {
    any: db.select().from(flows).where(id).prepare('flow_by_id'),
    inTenant: db
      .select()
      .from(flows)
      .where(and(id, eq(flows.tenantId, sql.placeholder('tenant'))))
      .prepare('flow_by_id_in_tenant'),
  };
}

/**
 * The secrets a flow's webhook auth names must be API_KEY secrets of its tenant, and the trigger
 * they make one the edge takes: what the edge would refuse is refused here, in its words.
 */
async function checkWebhookSecrets(services: Services, tx: Database, flow: FlowCreate & { id: string; tenant: string }): Promise<void> {
  const auth = flow.flowSettings?.webhooks?.auth;
  if (!auth) return;
  await checkApiKeySecrets(tx, flow.tenant, auth.type === 'standard-webhooks' ? auth.secretIds : [auth.secretId]);
  const refusal = await edgeRefusal(services, tx, flow);
  if (refusal) throw new InvalidFlowError([`flowSettings.webhooks.auth: the edge would refuse this webhook: ${refusal}`]);
}

/** Where a flow names a secret it uses as the user who starts it: its steps' credentials and its webhook's keys. */
function secretUses(flow: Pick<FlowCreate, 'graph' | 'flowSettings'>): { where: string; id: string; why: string }[] {
  const auth = flow.flowSettings?.webhooks?.auth;
  const keys = auth ? (auth.type === 'standard-webhooks' ? auth.secretIds : [auth.secretId]) : [];
  return [
    ...flow.graph.nodes.flatMap((node) =>
      node.credentials_id
        ? [
            {
              where: `graph.nodes: node "${node.id}": credentials_id`,
              id: node.credentials_id,
              why: 'a step reads only secrets you own or your tenant shares',
            },
          ]
        : [],
    ),
    ...keys.map((id) => ({ where: 'flowSettings.webhooks.auth', id, why: "a webhook's keys are secrets you own or your tenant shares" })),
  ];
}

/** The uses of secrets in `flow` that `user` may not make. */
async function unreadableUses(tx: Database, user: FlowUser, tenantId: string, flow: Pick<FlowCreate, 'graph' | 'flowSettings'>) {
  const uses = secretUses(flow);
  const unreadable = await unreadableSecrets(
    tx,
    user,
    tenantId,
    uses.map((use) => use.id),
  );
  return uses.filter((use) => unreadable.has(use.id));
}

/**
 * Every secret a flow names must be one `user` may read (they own it, or the flow's tenant shares
 * it): saving a flow is a 400 otherwise, naming where and the secret (an unknown secret reads the
 * same, so nobody learns whether another user's exists).
 */
async function checkSecretUses(tx: Database, user: FlowUser, tenantId: string, flow: FlowCreate): Promise<void> {
  const unreadable = await unreadableUses(tx, user, tenantId, flow);
  if (unreadable.length > 0)
    throw new InvalidFlowError(unreadable.map((use) => `${use.where}: no secret ${use.id} that you may read (${use.why})`));
}

/** Reads a flow the caller may see and locks it until the transaction ends, so status checks and changes cannot interleave. */
async function lockFlow(tx: Database, principal: Principal, id: string): Promise<FlowRow> {
  const [row] = await tx.select().from(flows).where(visible(principal, id)).for('update');
  if (!row) throw notFoundFlow(id);
  return row;
}

function requireInactive(row: FlowRow, action: 'edited' | 'deleted'): void {
  if (row.status !== 'inactive') {
    throw conflict(
      `Flow ${row.id} is ${row.status}; only an inactive flow can be ${action}: stop it (POST /flows/${row.id}/stop) and wait until it is inactive`,
    );
  }
}

/** Owners as given, plus those that must be there, each once. */
function withOwners(given: Owner[] | undefined, ...required: Owner[]): Owner[] {
  const owners: Owner[] = [];
  for (const owner of [...(given ?? []), ...required]) {
    if (!owners.some((o) => o.id === owner.id && o.type === owner.type)) owners.push(owner);
  }
  return owners;
}

/** The columns a client-written definition sets; absent optional fields are stored as null. */
function definitionColumns(flow: FlowCreate, tenantId: string, ...required: Owner[]) {
  return {
    name: flow.name,
    description: flow.description ?? null,
    type: flow.type ?? 'ordinary',
    cron: flow.cron ?? null,
    timezone: flow.timezone ?? null,
    owners: withOwners(flow.owners, { id: tenantId, type: 'tenant' }, ...required),
    graph: flow.graph,
    flowSettings: flow.flowSettings ?? null,
  };
}

/** Creates a flow in the caller's tenant, owned by the caller and the tenant. */
export async function createFlow(services: Services, principal: Principal, input: FlowCreate): Promise<Flow> {
  const tenantId = principal.tenantId;
  if (!tenantId) throw forbidden('Your account belongs to no tenant, so it cannot own flows');
  const id = randomUUID();
  return transact(services, async (tx) => {
    await checkSecretUses(tx, principal, tenantId, input);
    await checkWebhookSecrets(services, tx, { ...input, id, tenant: tenantId });
    const [row] = await tx
      .insert(flows)
      .values({ id, tenantId, createdBy: principal.userId, ...definitionColumns(input, tenantId, { id: principal.userId, type: 'user' }) })
      .returning();
    await emit(tx, SERVICE_NAME, 'flowrepo.flow.created', { flowId: row!.id, tenant: tenantId, user: principal.userId });
    return toFlow(row!);
  });
}

/** Merges the patch into the stored flow (a given graph replaces the stored one whole) and checks the result with every rule. */
export async function updateFlow(services: Services, principal: Principal, id: string, patch: FlowPatch): Promise<Flow> {
  return transact(services, async (tx) => {
    const row = await lockFlow(tx, principal, id);
    requireInactive(row, 'edited');
    const stored = {
      name: row.name,
      description: row.description,
      type: row.type,
      cron: row.cron,
      timezone: row.timezone,
      owners: row.owners,
      graph: row.graph,
      flowSettings: row.flowSettings ?? undefined,
    };
    const merged = flowCreateSchema.safeParse({ ...stored, ...patch });
    if (!merged.success) throw new InvalidFlowError(merged.error.issues.map((issue) => describeIssue(issue, 'body')));
    await checkSecretUses(tx, principal, row.tenantId, merged.data);
    await checkWebhookSecrets(services, tx, { ...merged.data, id, tenant: row.tenantId });
    const [updated] = await tx
      .update(flows)
      .set({ ...definitionColumns(merged.data, row.tenantId), updatedAt: new Date() })
      .where(eq(flows.id, id))
      .returning();
    await emit(tx, SERVICE_NAME, 'flowrepo.flow.modified', { flowId: id, tenant: row.tenantId, user: principal.userId });
    return toFlow(updated!);
  });
}

export async function deleteFlow(services: Services, principal: Principal, id: string): Promise<void> {
  await transact(services, async (tx) => {
    const row = await lockFlow(tx, principal, id);
    requireInactive(row, 'deleted');
    await tx.delete(flows).where(eq(flows.id, id));
    await emit(tx, SERVICE_NAME, 'flowrepo.flow.deleted', { flowId: id, tenant: row.tenantId, user: principal.userId });
  });
}

export type FlowState = { id: string; status: FlowStatus };

/** inactive -> starting, announcing the whole flow so the edge and the runners deploy it. */
export async function startFlow(services: Services, principal: Principal, id: string): Promise<FlowState> {
  return transact(services, async (tx) => {
    const row = await lockFlow(tx, principal, id);
    if (row.status !== 'inactive') {
      throw conflict(
        `Flow ${id} is ${row.status}; only an inactive flow can be started${row.status === 'stopping' ? ': wait until it is inactive' : ''}`,
      );
    }
    // Its steps read their secrets, and its webhook is keyed, as the user who starts it.
    const unreadable = await unreadableUses(tx, principal, row.tenantId, { graph: row.graph, flowSettings: row.flowSettings ?? undefined });
    if (unreadable.length > 0) {
      throw forbidden(
        `You may not start flow ${id}: ${unreadable.map((use) => `${use.where} names secret ${use.id}, which you may not read`).join('; ')} (a flow uses secrets as the user who starts it: one they own, or one the tenant shares)`,
      );
    }
    const [updated] = await tx
      .update(flows)
      .set({ status: 'starting', startedBy: principal.userId, statusReason: null, updatedAt: new Date() })
      .where(eq(flows.id, id))
      .returning();
    await emit(tx, SERVICE_NAME, 'flow.starting', { ...toFlow(updated!), startedBy: principal.userId });
    return { id, status: updated!.status };
  });
}

/**
 * Any state but inactive -> stopping, announcing the whole flow so every listener tears it down;
 * a flow stuck in starting or stopping can always be stopped (again). An inactive flow is left as it is.
 */
export async function stopFlow(services: Services, principal: Principal, id: string): Promise<FlowState> {
  return transact(services, async (tx) => {
    const row = await lockFlow(tx, principal, id);
    if (row.status === 'inactive') return { id, status: row.status };
    const [updated] = await tx.update(flows).set({ status: 'stopping', updatedAt: new Date() }).where(eq(flows.id, id)).returning();
    await emit(tx, SERVICE_NAME, 'flow.stopping', { ...toFlow(updated!), stoppedBy: principal.userId });
    return { id, status: updated!.status };
  });
}

/** A flow named by a lifecycle event; only a flow of that tenant is touched. */
export type FlowRef = { id: string; tenant: string };

/** Moves the referenced flow from `from` to `to`; returns the changed flow, or null when it is not in `from` (or not ours). */
async function transition(tx: Database, ref: FlowRef, from: SQL, changes: Partial<FlowRow>): Promise<FlowRow | null> {
  if (!isUuid(ref.id) || !isUuid(ref.tenant)) return null;
  const [row] = await tx
    .update(flows)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(flows.id, ref.id), eq(flows.tenantId, ref.tenant), from))
    .returning();
  return row ?? null;
}

/** flow.started: starting -> active. In any other state the event is stale (a stop overtook it) and changes nothing. */
export async function markStarted(tx: Database, ref: FlowRef): Promise<boolean> {
  return (await transition(tx, ref, eq(flows.status, 'starting'), { status: 'active', statusReason: null })) !== null;
}

/** Why a starting flow is not active yet (waiting for a runner, say), or null once nothing holds it. */
export async function noteStatusReason(tx: Database, ref: FlowRef, reason: string | null): Promise<void> {
  await tx
    .update(flows)
    .set({ statusReason: reason })
    .where(and(eq(flows.id, ref.id), eq(flows.tenantId, ref.tenant), eq(flows.status, 'starting')));
}

/** flow.stopped: stopping -> inactive. */
export async function markStopped(tx: Database, ref: FlowRef): Promise<boolean> {
  if (!(await transition(tx, ref, eq(flows.status, 'stopping'), { status: 'inactive' }))) return false;
  await revokeStepTokens(tx, ref.id);
  return true;
}

/** A flow that no longer runs needs no step tokens: they stop working with its last state change. */
async function revokeStepTokens(tx: Database, flowId: string): Promise<void> {
  await tx
    .update(tokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(tokens.kind, 'step'), eq(tokens.flowId, flowId), isNull(tokens.revokedAt)));
}

/**
 * flow.failed: any state but inactive -> inactive with the reason, and flow.stopping so every
 * listener tears down what it had set up. A later flow.stopped finds the flow inactive and does nothing.
 */
export async function markFailed(tx: Database, ref: FlowRef, reason: string): Promise<boolean> {
  const row = await transition(tx, ref, ne(flows.status, 'inactive'), { status: 'inactive', statusReason: reason });
  if (!row) return false;
  await revokeStepTokens(tx, ref.id);
  await emit(tx, SERVICE_NAME, 'flow.stopping', { ...toFlow(row), stoppedBy: null });
  return true;
}
