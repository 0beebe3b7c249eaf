import { and, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { firstNodes, type Flow } from '../../protocol/flow.js';
import {
  RETRY_DEFAULTS,
  STEP_DEFAULTS,
  stepSettingsSchema,
  type DeploymentReport,
  type DeploymentSpec,
  type DesiredState,
  type StepSpec,
} from '../../protocol/fleet.js';
import { emit } from '../bus/outbox.js';
import { resolveComponent } from '../components/service.js';
import type { Database } from '../db/index.js';
import { flows } from '../flows/schema.js';
import { noteStatusReason } from '../flows/service.js';
import { outputSchemaBundle } from '../metadata/schemas.service.js';
import type { Services } from '../services.js';
import { chooseRunner, lostBefore, type Driver, type Wanted } from './choose.js';
import { ACTIVE_PHASES, deployments, runners } from './schema.js';

/** The name the fleet's side of the control plane emits under and consumes as. */
export const SERVICE_NAME = 'fleet';

type DeploymentRow = typeof deployments.$inferSelect;
/** The runners whose desired state a transaction changed: their long polls are woken once it committed. */
export type Touched = Set<string>;

async function touch(tx: Database, touched: Touched, runnerId: string | null): Promise<void> {
  if (!runnerId) return;
  await tx
    .update(runners)
    .set({ desiredVersion: sql`${runners.desiredVersion} + 1` })
    .where(eq(runners.id, runnerId));
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
      problems.push(
        `step ${node.id}: component ${component.name} has no function "${node.function}" (it offers ${component.functions.map((f) => f.name).join(', ') || 'none'})`,
      );
      continue;
    }
    const settings = stepSettingsSchema.parse(node.nodeSettings ?? {});
    let outputSchema: StepSpec['outputSchema'] = null;
    if (settings.outputSchema) {
      outputSchema = await outputSchemaBundle(
        tx,
        services.config.PUBLIC_URL ?? 'http://hookline.local',
        flow.tenant,
        settings.outputSchema.domainId,
        settings.outputSchema.uri,
      );
      if (!outputSchema)
        problems.push(
          `step ${node.id}: no schema ${settings.outputSchema.uri} in a domain ${settings.outputSchema.domainId} this tenant may read`,
        );
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
      prefetch: Math.max(
        settings.prefetch ?? (settings.concurrency ?? STEP_DEFAULTS.concurrency) + STEP_DEFAULTS.extraPrefetch,
        settings.concurrency ?? STEP_DEFAULTS.concurrency,
      ),
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
  if (drivers.length === 0)
    return {
      problems: [
        'the flow mixes components that have only a module with components that have only an image, so no runner driver can run all its steps',
      ],
    };
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
      maxMessages: Math.min(
        flow.flowSettings?.maxMessages ?? services.config.EXECUTION_MAX_MESSAGES,
        services.config.EXECUTION_MAX_MESSAGES,
      ),
      passthrough: flow.flowSettings?.passthrough ?? false,
      steps,
    },
    drivers,
    workers: steps.length,
  };
}

/** flow.starting: the flow's steps resolved and placed on a runner, as a new generation; or flow.failed saying what is missing. */
export async function placeFlow(tx: Database, services: Services, flow: Flow, touched: Touched): Promise<void> {
  // A stop may have overtaken the start: only a flow that is starting now is placed.
  const [current] = await tx
    .select({ status: flows.status })
    .from(flows)
    .where(and(eq(flows.id, flow.id), eq(flows.tenantId, flow.tenant)))
    .for('update');
  if (current?.status !== 'starting') return;
  const [previous] = await tx.select().from(deployments).where(eq(deployments.flowId, flow.id)).for('update');
  const generation = (previous?.generation ?? 0) + 1;
  const built = await buildSpec(tx, services, flow, generation);
  if ('problems' in built) {
    await emit(tx, SERVICE_NAME, 'flow.failed', { id: flow.id, tenant: flow.tenant, reason: built.problems.join('; ') });
    return;
  }
  const choice = await chooseRunner(tx, services, {
    tenant: flow.tenant,
    flowId: flow.id,
    drivers: built.drivers,
    workers: built.workers,
    spec: built.spec,
  });
  if (choice.runnerId === null && choice.impossible) {
    await emit(tx, SERVICE_NAME, 'flow.failed', { id: flow.id, tenant: flow.tenant, reason: choice.reason });
    return;
  }
  const { runnerId } = choice;
  const values = {
    tenantId: flow.tenant,
    runnerId,
    phase: 'deploying' as const,
    generation,
    spec: built.spec,
    workers: built.workers,
    drivers: built.drivers,
    announced: false,
    updatedAt: new Date(),
  };
  await tx
    .insert(deployments)
    .values({ flowId: flow.id, ...values })
    .onConflictDoUpdate({ target: deployments.flowId, set: values });
  // A cleanup the previous run left is dropped: the new deployment declares the same queues again.
  if (previous?.runnerId !== runnerId) await touch(tx, touched, previous?.runnerId ?? null);
  await touch(tx, touched, runnerId);
  await noteStatusReason(tx, { id: flow.id, tenant: flow.tenant }, choice.runnerId === null ? choice.reason : null);
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
  const { runnerId } = await chooseRunner(tx, services, cleanupOf(deployment, deployment.runnerId));
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
    .where(
      and(
        eq(deployments.runnerId, runnerId),
        inArray(
          deployments.flowId,
          reports.map((r) => r.flowId),
        ),
      ),
    )
    .for('update');
  for (const row of rows) {
    const report = reports.find((r) => r.flowId === row.flowId && r.generation === row.generation);
    if (!report) continue;
    const ref = { id: row.flowId, tenant: row.tenantId };
    if (report.state === 'ready' && row.phase === 'deploying') {
      await tx
        .update(deployments)
        .set({ phase: 'running', announced: true, updatedAt: new Date() })
        .where(eq(deployments.flowId, row.flowId));
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
 * SKIP LOCKED, so the loops of several control planes share the work. `moveFromLost` false leaves
 * the lost runners' flows where they are (the loop has not heard runners long enough to tell).
 */
export async function rebalance(tx: Database, services: Services, touched: Touched, moveFromLost = true): Promise<number> {
  const claimed = await tx
    .select({ deployment: deployments })
    .from(deployments)
    .leftJoin(runners, eq(runners.id, deployments.runnerId))
    .where(moveFromLost ? or(isNull(deployments.runnerId), lt(runners.lastSeenAt, lostBefore(services))) : isNull(deployments.runnerId))
    .limit(50)
    .for('update', { of: deployments, skipLocked: true });
  for (const { deployment } of claimed) {
    if (deployment.phase === 'removing') {
      await toCleanup(tx, services, deployment, touched);
      continue;
    }
    if (deployment.phase === 'cleanup') {
      const { runnerId } = await chooseRunner(tx, services, cleanupOf(deployment));
      if (runnerId === deployment.runnerId) continue;
      await tx.update(deployments).set({ runnerId, updatedAt: new Date() }).where(eq(deployments.flowId, deployment.flowId));
      await touch(tx, touched, deployment.runnerId);
      await touch(tx, touched, runnerId);
      continue;
    }
    const choice = await chooseRunner(tx, services, {
      tenant: deployment.tenantId,
      flowId: deployment.flowId,
      drivers: deployment.drivers,
      workers: deployment.workers,
      except: deployment.runnerId,
      spec: deployment.spec,
    });
    const ref = { id: deployment.flowId, tenant: deployment.tenantId };
    if (choice.runnerId === null && choice.impossible && deployment.phase === 'deploying' && !deployment.announced) {
      // A flow that was waiting when its start was placed, and can never be placed now (the runners it could use are gone or smaller).
      await emit(tx, SERVICE_NAME, 'flow.failed', { ...ref, reason: choice.reason });
      continue;
    }
    await noteStatusReason(tx, ref, choice.runnerId === null ? choice.reason : null);
    const { runnerId } = choice;
    if (!runnerId && !deployment.runnerId) continue;
    const generation = deployment.generation + 1;
    await tx
      .update(deployments)
      .set({ runnerId, generation, spec: { ...deployment.spec, generation }, phase: 'deploying', updatedAt: new Date() })
      .where(eq(deployments.flowId, deployment.flowId));
    await touch(tx, touched, deployment.runnerId);
    await touch(tx, touched, runnerId);
    services.logger.info(
      { flowId: deployment.flowId, from: deployment.runnerId, to: runnerId, generation },
      runnerId ? 'flow placed on a runner' : 'flow waits for a runner: its runner is lost and none other has room',
    );
  }
  return claimed.length;
}

/** A cleanup needs no room and no particular driver: any runner the tenant may use deletes queues. */
const cleanupOf = (deployment: DeploymentRow, except?: string | null): Wanted => ({
  tenant: deployment.tenantId,
  flowId: deployment.flowId,
  drivers: ['process', 'docker'],
  workers: 0,
  except,
});

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
    .where(and(inArray(deployments.runnerId, runnerIds), inArray(deployments.phase, [...ACTIVE_PHASES])))
    .groupBy(deployments.runnerId);
  return new Map(rows.map((r) => [r.runnerId!, r.workers]));
}
