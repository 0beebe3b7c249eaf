import { and, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { firstNodes, type Flow } from '../../protocol/flow.js';
import { RETRY_DEFAULTS, STEP_DEFAULTS, stepSettingsSchema, type DeploymentReport, type DeploymentSpec, type DesiredState, type StepSpec } from '../../protocol/fleet.js';
import { emit } from '../bus/outbox.js';
import { resolveComponent } from '../components/service.js';
import type { Database } from '../db/index.js';
import { flows } from '../flows/schema.js';
import { noteStatusReason } from '../flows/service.js';
import { outputSchemaBundle } from '../metadata/schemas.service.js';
import type { Services } from '../services.js';
import { deployments, runners } from './schema.js';
import { mayRun, unrunnableReason } from './trust.js';

/** The name the fleet's side of the control plane emits under and consumes as. */
export const SERVICE_NAME = 'fleet';

type Driver = 'process' | 'docker';
type DeploymentRow = typeof deployments.$inferSelect;
/** The runners whose desired state a transaction changed: their long polls are woken once it committed. */
export type Touched = Set<string>;

const ACTIVE = ['deploying', 'running'] as const;
/** A runner silent for three heartbeats is lost: its flows move to the others. */
export const lostAfterMs = (services: Services) => 3 * services.config.RUNNER_HEARTBEAT_SECONDS * 1000;
const lostBefore = (services: Services) => new Date(Date.now() - lostAfterMs(services));

async function touch(tx: Database, touched: Touched, runnerId: string | null): Promise<void> {
  if (!runnerId) return;
  await tx.update(runners).set({ desiredVersion: sql`${runners.desiredVersion} + 1` }).where(eq(runners.id, runnerId));
  touched.add(runnerId);
}

interface Built {
  spec: DeploymentSpec;
  drivers: Driver[];
  workers: number;
}

/** Resolves every step of a flow (component, function, settings, output schema) into what a runner deploys, or says what is missing. */
export async function buildSpec(tx: Database, services: Services, flow: Flow, generation: number): Promise<Built | { problems: string[] }> {
  const problems: string[] = [];
  const steps: StepSpec[] = [];
  const [first] = firstNodes(flow.graph);
  for (const node of flow.graph.nodes) {
    const component = await resolveComponent(tx, flow.tenant, node.componentId);
    if (!component) {
      problems.push(`step ${node.id}: there is no component "${node.componentId}" this tenant may use`);
      continue;
    }
    if (!component.functions.some((f) => f.name === node.function)) {
      problems.push(`step ${node.id}: component ${component.name} has no function "${node.function}" (it offers ${component.functions.map((f) => f.name).join(', ') || 'none'})`);
      continue;
    }
    const settings = stepSettingsSchema.parse(node.nodeSettings ?? {});
    let outputSchema: StepSpec['outputSchema'] = null;
    if (settings.outputSchema) {
      outputSchema = await outputSchemaBundle(tx, services.config.PUBLIC_URL ?? 'http://hookline.local', flow.tenant, settings.outputSchema.domainId, settings.outputSchema.uri);
      if (!outputSchema) problems.push(`step ${node.id}: no schema ${settings.outputSchema.uri} in a domain ${settings.outputSchema.domainId} this tenant may read`);
    }
    steps.push({
      id: node.id,
      name: node.name ?? null,
      function: node.function,
      component: { id: component.id, name: component.name, image: component.image, module: component.module },
      fields: node.fields ?? {},
      credentialsId: node.credentials_id ?? null,
      targets: [...new Set(flow.graph.edges.filter((e) => e.source === node.id).map((e) => e.target))],
      first: node.id === first,
      maxAttempts: settings.retry?.maxAttempts ?? RETRY_DEFAULTS.maxAttempts,
      timeoutSeconds: settings.timeoutSeconds ?? STEP_DEFAULTS.timeoutSeconds,
      concurrency: settings.concurrency ?? STEP_DEFAULTS.concurrency,
      prefetch: Math.max(settings.prefetch ?? (settings.concurrency ?? STEP_DEFAULTS.concurrency) + STEP_DEFAULTS.extraPrefetch, settings.concurrency ?? STEP_DEFAULTS.concurrency),
      memoryMb: settings.memoryMb ?? STEP_DEFAULTS.memoryMb,
      cpus: settings.cpus ?? STEP_DEFAULTS.cpus,
      outputSchema,
    });
  }
  if (problems.length > 0) return { problems };
  const retry = flow.flowSettings?.retry;
  const drivers: Driver[] = [];
  if (steps.every((s) => s.component.module)) drivers.push('process');
  if (steps.every((s) => s.component.image)) drivers.push('docker');
  if (drivers.length === 0) return { problems: ['the flow mixes components that have only a module with components that have only an image, so no runner driver can run all its steps'] };
  return {
    spec: {
      flowId: flow.id,
      tenant: flow.tenant,
      generation,
      retry: {
        baseDelayMs: retry?.baseDelayMs ?? RETRY_DEFAULTS.baseDelayMs,
        maxDelayMs: retry?.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs,
        levels: Math.max(...steps.map((s) => s.maxAttempts)) - 1,
      },
      steps,
    },
    drivers,
    workers: steps.length,
  };
}

/** The alive runners that may run the tenant's flows: its own and the platform-wide ones. */
const usableBy = (services: Services, tenant: string) => and(gt(runners.lastSeenAt, lostBefore(services)), or(eq(runners.tenantId, tenant), isNull(runners.tenantId)));

/**
 * An alive runner that may run the tenant's flows with one of `drivers` (and, given `spec`, may
 * run each of its steps: trust.ts) and has room for
 * `workers` more: the tenant's own runners first, then platform-wide ones, the one with the most
 * room first. The chosen runner's row is locked and its room counted again, so two placements at
 * once cannot both fill its last places.
 */
async function chooseRunner(
  tx: Database,
  services: Services,
  want: { tenant: string; drivers: Driver[]; workers: number; except?: string | null; spec?: DeploymentSpec },
): Promise<string | null> {
  const used = sql<number>`coalesce(sum(${deployments.workers}) filter (where ${inArray(deployments.phase, [...ACTIVE])}), 0)::int`;
  const candidates = await tx
    .select({ id: runners.id, tenantId: runners.tenantId, capacity: runners.capacity, used, driver: runners.driver, trustedModules: runners.trustedModules })
    .from(runners)
    .leftJoin(deployments, eq(deployments.runnerId, runners.id))
    .where(and(usableBy(services, want.tenant), inArray(runners.driver, want.drivers), want.except ? sql`${runners.id} <> ${want.except}` : undefined))
    .groupBy(runners.id);
  const ranked = candidates
    .filter((c) => c.capacity - c.used >= want.workers && (!want.spec || mayRun(c, want.spec)))
    .sort((a, b) => Number(a.tenantId === null) - Number(b.tenantId === null) || b.capacity - b.used - (a.capacity - a.used) || a.id.localeCompare(b.id));
  for (const candidate of ranked) {
    await tx.select({ id: runners.id }).from(runners).where(eq(runners.id, candidate.id)).for('update');
    const [{ total } = { total: 0 }] = await tx
      .select({ total: sql<number>`coalesce(sum(${deployments.workers}), 0)::int` })
      .from(deployments)
      .where(and(eq(deployments.runnerId, candidate.id), inArray(deployments.phase, [...ACTIVE])));
    if (candidate.capacity - total >= want.workers) return candidate.id;
  }
  return null;
}

const waiting = (workers: number, drivers: Driver[]) =>
  `waiting for a runner of this tenant (or a platform-wide one) with the ${drivers.join(' or ')} driver and room for ${workers} step worker${workers === 1 ? '' : 's'}`;

/** flow.starting: the flow's steps resolved and placed on a runner, as a new generation; or flow.failed saying what is missing. */
export async function placeFlow(tx: Database, services: Services, flow: Flow, touched: Touched): Promise<void> {
  // A stop may have overtaken the start: only a flow that is starting now is placed.
  const [current] = await tx.select({ status: flows.status }).from(flows).where(and(eq(flows.id, flow.id), eq(flows.tenantId, flow.tenant))).for('update');
  if (current?.status !== 'starting') return;
  const [previous] = await tx.select().from(deployments).where(eq(deployments.flowId, flow.id)).for('update');
  const generation = (previous?.generation ?? 0) + 1;
  const built = await buildSpec(tx, services, flow, generation);
  if ('problems' in built) {
    await emit(tx, SERVICE_NAME, 'flow.failed', { id: flow.id, tenant: flow.tenant, reason: built.problems.join('; ') });
    return;
  }
  const runnerId = await chooseRunner(tx, services, { tenant: flow.tenant, drivers: built.drivers, workers: built.workers, spec: built.spec });
  if (!runnerId) {
    const fleet = await tx.select({ driver: runners.driver, trustedModules: runners.trustedModules }).from(runners).where(usableBy(services, flow.tenant));
    const reason = unrunnableReason(fleet, built.spec);
    if (reason) {
      await emit(tx, SERVICE_NAME, 'flow.failed', { id: flow.id, tenant: flow.tenant, reason });
      return;
    }
  }
  const values = { tenantId: flow.tenant, runnerId, phase: 'deploying' as const, generation, spec: built.spec, workers: built.workers, drivers: built.drivers, announced: false, updatedAt: new Date() };
  await tx.insert(deployments).values({ flowId: flow.id, ...values }).onConflictDoUpdate({ target: deployments.flowId, set: values });
  // A cleanup the previous run left is dropped: the new deployment declares the same queues again.
  if (previous?.runnerId !== runnerId) await touch(tx, touched, previous?.runnerId ?? null);
  await touch(tx, touched, runnerId);
  await noteStatusReason(tx, { id: flow.id, tenant: flow.tenant }, runnerId ? null : waiting(built.workers, built.drivers));
}

/**
 * flow.stopping: its runner removes workers and queues, then flow.stopped. With no runner alive
 * to do it, the flow stops at once and the queues are left as a cleanup for the next runner that
 * can. A flow that was never placed stops at once.
 */
export async function removeFlow(tx: Database, services: Services, ref: { id: string; tenant: string }, touched: Touched): Promise<void> {
  const [row] = await tx
    .select({ deployment: deployments, lastSeenAt: runners.lastSeenAt })
    .from(deployments)
    .leftJoin(runners, eq(runners.id, deployments.runnerId))
    .where(and(eq(deployments.flowId, ref.id), eq(deployments.tenantId, ref.tenant)))
    .for('update', { of: deployments });
  if (!row) {
    await emit(tx, SERVICE_NAME, 'flow.stopped', ref);
    return;
  }
  const { deployment } = row;
  if (deployment.phase === 'removing' || deployment.phase === 'cleanup') return;
  if (deployment.runnerId && row.lastSeenAt && row.lastSeenAt > lostBefore(services)) {
    await tx.update(deployments).set({ phase: 'removing', updatedAt: new Date() }).where(eq(deployments.flowId, ref.id));
    await touch(tx, touched, deployment.runnerId);
    return;
  }
  await toCleanup(tx, services, deployment, touched);
}

/** The flow is stopped now; its queues are removed by whichever runner can, when one can. */
async function toCleanup(tx: Database, services: Services, deployment: DeploymentRow, touched: Touched): Promise<void> {
  const runnerId = await chooseRunner(tx, services, { tenant: deployment.tenantId, drivers: ['process', 'docker'], workers: 0, except: deployment.runnerId });
  await tx.update(deployments).set({ phase: 'cleanup', runnerId, updatedAt: new Date() }).where(eq(deployments.flowId, deployment.flowId));
  await touch(tx, touched, deployment.runnerId);
  await touch(tx, touched, runnerId);
  await emit(tx, SERVICE_NAME, 'flow.stopped', { id: deployment.flowId, tenant: deployment.tenantId });
}

/**
 * What a runner's heartbeat says of its deployments: every step ready → flow.started (once per
 * start); failed while deploying → flow.failed with the reason; removed → the row goes and
 * flow.stopped. Reports of another generation, or of a flow not placed on this runner, are stale.
 */
export async function applyReports(tx: Database, runnerId: string, reports: DeploymentReport[], touched: Touched): Promise<void> {
  if (reports.length === 0) return;
  const rows = await tx
    .select()
    .from(deployments)
    .where(and(eq(deployments.runnerId, runnerId), inArray(deployments.flowId, reports.map((r) => r.flowId))))
    .for('update');
  for (const row of rows) {
    const report = reports.find((r) => r.flowId === row.flowId && r.generation === row.generation);
    if (!report) continue;
    const ref = { id: row.flowId, tenant: row.tenantId };
    if (report.state === 'ready' && row.phase === 'deploying') {
      await tx.update(deployments).set({ phase: 'running', announced: true, updatedAt: new Date() }).where(eq(deployments.flowId, row.flowId));
      if (!row.announced) await emit(tx, SERVICE_NAME, 'flow.started', ref);
    } else if (report.state === 'failed' && (row.phase === 'deploying' || row.phase === 'running')) {
      await tx.update(deployments).set({ phase: 'removing', updatedAt: new Date() }).where(eq(deployments.flowId, row.flowId));
      await touch(tx, touched, runnerId);
      await emit(tx, SERVICE_NAME, 'flow.failed', { ...ref, reason: report.reason ?? 'a step could not be deployed' });
    } else if (report.state === 'removed' && (row.phase === 'removing' || row.phase === 'cleanup')) {
      await tx.delete(deployments).where(eq(deployments.flowId, row.flowId));
      await touch(tx, touched, runnerId);
      if (row.phase === 'removing') await emit(tx, SERVICE_NAME, 'flow.stopped', ref);
    }
  }
}

/**
 * The placement loop's pass: deployments whose runner is lost move to another runner (a new
 * generation; the queues and their messages stay), those waiting for room are placed, a stop
 * whose runner is lost completes as a cleanup, and cleanups find a runner. Rows are claimed with
 * SKIP LOCKED, so the loops of several control planes share the work.
 */
export async function rebalance(tx: Database, services: Services, touched: Touched): Promise<number> {
  const claimed = await tx
    .select({ deployment: deployments })
    .from(deployments)
    .leftJoin(runners, eq(runners.id, deployments.runnerId))
    .where(or(isNull(deployments.runnerId), lt(runners.lastSeenAt, lostBefore(services))))
    .limit(50)
    .for('update', { of: deployments, skipLocked: true });
  for (const { deployment } of claimed) {
    if (deployment.phase === 'removing') {
      await toCleanup(tx, services, deployment, touched);
      continue;
    }
    if (deployment.phase === 'cleanup') {
      const runnerId = await chooseRunner(tx, services, { tenant: deployment.tenantId, drivers: ['process', 'docker'], workers: 0 });
      if (runnerId === deployment.runnerId) continue;
      await tx.update(deployments).set({ runnerId, updatedAt: new Date() }).where(eq(deployments.flowId, deployment.flowId));
      await touch(tx, touched, deployment.runnerId);
      await touch(tx, touched, runnerId);
      continue;
    }
    const runnerId = await chooseRunner(tx, services, { tenant: deployment.tenantId, drivers: deployment.drivers, workers: deployment.workers, except: deployment.runnerId, spec: deployment.spec });
    if (!runnerId && !deployment.runnerId) continue;
    const generation = deployment.generation + 1;
    await tx
      .update(deployments)
      .set({ runnerId, generation, spec: { ...deployment.spec, generation }, phase: 'deploying', updatedAt: new Date() })
      .where(eq(deployments.flowId, deployment.flowId));
    await touch(tx, touched, deployment.runnerId);
    await touch(tx, touched, runnerId);
    const ref = { id: deployment.flowId, tenant: deployment.tenantId };
    await noteStatusReason(tx, ref, runnerId ? null : waiting(deployment.workers, deployment.drivers));
    services.logger.info({ flowId: deployment.flowId, from: deployment.runnerId, to: runnerId, generation }, runnerId ? 'flow placed on a runner' : 'flow waits for a runner: its runner is lost and none other has room');
  }
  return claimed.length;
}

/** A runner's desired state: each flow placed on it, to run or to remove. */
export async function desiredState(db: Database, runnerId: string): Promise<DesiredState | null> {
  const [runner] = await db.select({ version: runners.desiredVersion }).from(runners).where(eq(runners.id, runnerId));
  if (!runner) return null;
  const rows = await db.select().from(deployments).where(eq(deployments.runnerId, runnerId));
  return {
    version: runner.version,
    deployments: rows.map((row) => ({
      flowId: row.flowId,
      generation: row.generation,
      desired: row.phase === 'deploying' || row.phase === 'running' ? ('running' as const) : ('removed' as const),
      spec: row.spec,
    })),
  };
}

/** How many step workers the runners run, by runner (for GET /runners). */
export async function workersByRunner(db: Database, runnerIds: string[]): Promise<Map<string, number>> {
  if (runnerIds.length === 0) return new Map();
  const rows = await db
    .select({ runnerId: deployments.runnerId, workers: sql<number>`sum(${deployments.workers})::int` })
    .from(deployments)
    .where(and(inArray(deployments.runnerId, runnerIds), inArray(deployments.phase, [...ACTIVE])))
    .groupBy(deployments.runnerId);
  return new Map(rows.map((r) => [r.runnerId!, r.workers]));
}
