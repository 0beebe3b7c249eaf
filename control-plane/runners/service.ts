import { and, asc, count, desc, eq, inArray, lt } from 'drizzle-orm';
import type { DeploymentReport, DesiredState, StepLogLine } from '../../protocol/fleet.js';
import type { Heartbeat, RunnerRegistration } from '../../protocol/runner.js';
import { emit } from '../bus/outbox.js';
import { isUuid, type Database } from '../db/index.js';
import { flows } from '../flows/schema.js';
import { tenantScope } from '../http/auth.js';
import { conflict, forbidden, notFound } from '../http/errors.js';
import { SERVICE_NAME as IAM_SERVICE_NAME } from '../iam/service.js';
import type { Principal } from '../iam/tokens.js';
import { transact, type Services } from '../services.js';
import { lostAfterMs } from './choose.js';
import { applyReports, desiredState, workersByRunner, type Touched } from './deployments.js';
import { deployments, runners, stepLogs } from './schema.js';

type RunnerRow = typeof runners.$inferSelect;

export interface Runner {
  id: string;
  name: string;
  host: string;
  driver: RunnerRow['driver'];
  capacity: number;
  /** Step workers of the flows placed on it. */
  workers: number;
  version: string | null;
  trustedModules: RunnerRow['trustedModules'];
  tenant: string | null;
  status: 'alive' | 'lost';
  lastSeenAt: string;
  deployments: DeploymentReport[];
  registeredAt: string;
}

const toRunner = (services: Services, row: RunnerRow, workers: number, now = Date.now()): Runner => ({
  id: row.id,
  name: row.name,
  host: row.host,
  driver: row.driver,
  capacity: row.capacity,
  workers,
  version: row.version,
  trustedModules: row.trustedModules,
  tenant: row.tenantId,
  status: now - row.lastSeenAt.getTime() <= lostAfterMs(services) ? 'alive' : 'lost',
  lastSeenAt: row.lastSeenAt.toISOString(),
  deployments: row.running,
  registeredAt: row.createdAt.toISOString(),
});

async function withWorkers(services: Services, rows: RunnerRow[]): Promise<Runner[]> {
  const workers = await workersByRunner(
    services.db,
    rows.map((r) => r.id),
  );
  return rows.map((row) => toRunner(services, row, workers.get(row.id) ?? 0));
}

/** Runs `work` in a transaction, then wakes the long polls of the runners it changed. */
export async function changingDesiredState<T>(services: Services, work: (tx: Database, touched: Touched) => Promise<T>): Promise<T> {
  const touched: Touched = new Set();
  const result = await transact(services, (tx) => work(tx, touched));
  services.notifier.notify(touched);
  return result;
}

/**
 * A runner registers as its service account; registering again under the same name is the same
 * runner, restarted. An account of a tenant makes a runner of that tenant; an account of no tenant
 * a platform-wide one.
 */
export async function registerRunner(
  services: Services,
  principal: Principal,
  input: RunnerRegistration,
): Promise<{ runner: Runner; created: boolean }> {
  if (principal.tokenKind !== 'service') throw forbidden('Runners register with a service-account token (POST /api/v1/tokens)');
  const { db } = services;
  const values = { ...input, accountId: principal.userId, tenantId: principal.tenantId, lastSeenAt: new Date() };
  const [inserted] = await db.insert(runners).values(values).onConflictDoNothing().returning();
  const row =
    inserted ??
    (
      await db
        .update(runners)
        .set({ ...values, updatedAt: new Date() })
        .where(and(eq(runners.accountId, principal.userId), eq(runners.name, input.name)))
        .returning()
    )[0]!;
  services.placement.kick();
  const [runner] = await withWorkers(services, [row]);
  return { runner: runner!, created: inserted !== undefined };
}

async function ownRunner(db: Database, principal: Principal, id: string): Promise<RunnerRow> {
  const [row] = await db
    .select()
    .from(runners)
    .where(and(eq(runners.id, id), eq(runners.accountId, principal.userId)));
  if (!row) throw notFound(`No runner ${id} registered by this account`);
  return row;
}

/** A runner is alive and reports its deployments; only its own account may say so. */
export async function heartbeat(services: Services, principal: Principal, id: string, beat: Heartbeat): Promise<Runner> {
  const row = await changingDesiredState(services, async (tx, touched) => {
    const [updated] = await tx
      .update(runners)
      .set({ lastSeenAt: new Date(), running: beat.deployments })
      .where(and(eq(runners.id, id), eq(runners.accountId, principal.userId)))
      .returning();
    if (!updated) throw notFound(`No runner ${id} registered by this account`);
    await applyReports(tx, id, beat.deployments, touched);
    return updated;
  });
  const [runner] = await withWorkers(services, [row]);
  return runner!;
}

/** How often a long poll re-reads the database, for changes made on another replica. */
const POLL_MS = 1000;

/**
 * The runner's desired state once its version is past `after`: at once if it is, else as soon as
 * it changes, else after `waitSeconds` as it is.
 */
export async function waitForDesiredState(
  services: Services,
  principal: Principal,
  id: string,
  after: number,
  waitSeconds: number,
  signal: AbortSignal,
): Promise<DesiredState> {
  await ownRunner(services.db, principal, id);
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const state = await desiredState(services.db, id);
    if (!state) throw notFound(`No runner ${id} registered by this account`);
    const left = deadline - Date.now();
    if (state.version > after || left <= 0 || signal.aborted) return state;
    await services.notifier.wait(id, Math.min(POLL_MS, left));
  }
}

const visible = (principal: Principal) => {
  const scope = tenantScope(principal);
  return scope === null ? undefined : eq(runners.tenantId, scope);
};

export async function listRunners(
  services: Services,
  principal: Principal,
  paging: { limit: number; offset: number },
): Promise<{ runners: Runner[]; total: number }> {
  const where = visible(principal);
  const [rows, [counted]] = await Promise.all([
    services.db.select().from(runners).where(where).orderBy(asc(runners.name), asc(runners.id)).limit(paging.limit).offset(paging.offset),
    services.db.select({ total: count() }).from(runners).where(where),
  ]);
  return { runners: await withWorkers(services, rows), total: counted?.total ?? 0 };
}

export async function getRunner(services: Services, principal: Principal, id: string): Promise<Runner> {
  const [row] = await services.db
    .select()
    .from(runners)
    .where(and(eq(runners.id, id), visible(principal)));
  if (!row) throw notFound(`No runner ${id} that you may see`);
  return (await withWorkers(services, [row]))[0]!;
}

/** Forgets a runner (it was taken out of service); its flows move to the others. A runner that is still running registers again. */
export async function deregisterRunner(services: Services, principal: Principal, id: string): Promise<void> {
  const deleted = await services.db
    .delete(runners)
    .where(and(eq(runners.id, id), visible(principal)))
    .returning({ id: runners.id });
  if (deleted.length === 0) throw notFound(`No runner ${id} that you may see`);
  services.placement.kick();
}

/**
 * A token for one step of a flow placed on the caller's runner, minted as the runner deploys the
 * step: it reads that step's credential and nothing else, acts for the user who started the flow,
 * and is revoked when the flow stops. Any other caller gets a 404, as if the flow did not exist.
 */
export async function mintStepToken(services: Services, principal: Principal, flowId: string, stepId: string) {
  return transact(services, async (tx) => {
    const [row] = await tx
      .select({ flow: flows })
      .from(deployments)
      .innerJoin(runners, eq(runners.id, deployments.runnerId))
      .innerJoin(flows, eq(flows.id, deployments.flowId))
      .where(
        and(eq(deployments.flowId, flowId), eq(runners.accountId, principal.userId), inArray(deployments.phase, ['deploying', 'running'])),
      )
      .for('update', { of: flows });
    if (!row) throw notFound(`Flow ${flowId} is not placed on a runner of this account`);
    const { flow } = row;
    if (flow.status !== 'starting' && flow.status !== 'active')
      throw conflict(`Flow ${flowId} is ${flow.status}; step tokens are minted for starting or active flows`);
    const node = flow.graph.nodes.find((n) => n.id === stepId);
    if (!node) throw notFound(`Flow ${flowId} has no step ${stepId}`);
    const actingFor = flow.startedBy ?? principal.userId;
    const { id, token } = await services.tokens.issueStepToken(tx, { flowId, stepId, userId: actingFor, createdBy: principal.userId });
    await emit(tx, IAM_SERVICE_NAME, 'iam.token.created', { id, tenant: flow.tenantId, user: principal.userId, accountId: actingFor });
    return { id, token, flowId, stepId, credentialId: node.credentials_id ?? null };
  });
}

/** Step logs a runner ships; only lines of flows placed on it are kept (the others are counted as dropped). */
export async function storeStepLogs(
  services: Services,
  principal: Principal,
  id: string,
  lines: StepLogLine[],
): Promise<{ stored: number; dropped: number }> {
  await ownRunner(services.db, principal, id);
  const flowIds = [...new Set(lines.map((l) => l.flowId))];
  const placed = flowIds.length
    ? await services.db
        .select({ flowId: deployments.flowId, tenantId: deployments.tenantId })
        .from(deployments)
        .where(and(eq(deployments.runnerId, id), inArray(deployments.flowId, flowIds.filter(isUuid))))
    : [];
  const tenantOf = new Map(placed.map((p) => [p.flowId, p.tenantId]));
  const rows = lines
    .filter((l) => tenantOf.has(l.flowId))
    .map((l) => ({
      flowId: l.flowId,
      tenantId: tenantOf.get(l.flowId)!,
      stepId: l.stepId,
      runnerId: id,
      at: new Date(l.at),
      stream: l.stream,
      line: l.line,
    }));
  if (rows.length > 0) await services.db.insert(stepLogs).values(rows);
  return { stored: rows.length, dropped: lines.length - rows.length };
}

export interface StepLogEntry {
  at: string;
  stream: 'stdout' | 'stderr';
  line: string;
  runnerId: string | null;
}

/** The newest lines of a step (the caller may see the flow: routes check), oldest first; `before` pages back. */
export async function readStepLogs(
  db: Database,
  flowId: string,
  stepId: string,
  query: { limit: number; before?: number },
): Promise<{ lines: (StepLogEntry & { seq: number })[] }> {
  const rows = await db
    .select()
    .from(stepLogs)
    .where(
      and(
        eq(stepLogs.flowId, flowId),
        eq(stepLogs.stepId, stepId),
        query.before === undefined ? undefined : lt(stepLogs.seq, query.before),
      ),
    )
    .orderBy(desc(stepLogs.seq))
    .limit(query.limit);
  return {
    lines: rows.reverse().map((r) => ({ seq: r.seq, at: r.at.toISOString(), stream: r.stream, line: r.line, runnerId: r.runnerId })),
  };
}
