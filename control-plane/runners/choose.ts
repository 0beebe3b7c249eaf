import { and, eq, gt, inArray, isNull, ne, or, sql } from 'drizzle-orm';
import { MAX_RUNNER_DEPLOYMENTS, type DeploymentSpec } from '../../protocol/fleet.js';
import type { Database } from '../db/index.js';
import { tenants } from '../iam/schema.js';
import type { Services } from '../services.js';
import { ACTIVE_PHASES, deployments, runners } from './schema.js';
import { mayRun, unrunnableReason, type RunnerFit } from './trust.js';

export type Driver = 'process' | 'docker';

/** A runner silent for three heartbeats is lost: its flows move to the others. */
export const lostAfterMs = (services: Services) => 3 * services.config.RUNNER_HEARTBEAT_SECONDS * 1000;
export const lostBefore = (services: Services) => new Date(Date.now() - lostAfterMs(services));

/** What is to be placed: a flow's deployment (workers > 0), or a cleanup of its queues (workers 0, any driver, no room needed). */
export interface Wanted {
  tenant: string;
  flowId: string;
  drivers: Driver[];
  workers: number;
  /** A runner not to choose (the one the flow is leaving). */
  except?: string | null;
  /** The deployment, when each runner must be able to run each of its steps (trust.ts); none for a cleanup. */
  spec?: DeploymentSpec;
}

/** A runner, or why there is none: `impossible` when no runner the flow may use could ever take it. */
export type Choice = { runnerId: string } | { runnerId: null; reason: string; impossible: boolean };

interface Candidate extends RunnerFit {
  id: string;
  shared: boolean;
  capacity: number;
  used: number;
  held: number;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const active = () => inArray(deployments.phase, [...ACTIVE_PHASES]);

/**
 * An alive runner that may run the tenant's flows with one of `drivers` (and each of its steps:
 * trust.ts) and has room for
 * `workers` more: the tenant's own runners first, then platform-wide ones, the one with the most
 * room first. On platform-wide runners a tenant holds at most SHARED_RUNNER_STEPS_PER_TENANT step
 * workers and SHARED_RUNNER_FLOWS_PER_TENANT flows, all together, so one tenant cannot take a
 * shared fleet. The tenant's row and then the chosen runner's are locked and counted again, so two
 * placements at once cannot both take the last room.
 */
export async function chooseRunner(tx: Database, services: Services, want: Wanted): Promise<Choice> {
  const usable = await findUsable(tx, services, want);
  const candidates = usable.filter((c) => want.drivers.includes(c.driver) && (!want.spec || mayRun(c, want.spec)));
  const cleanup = want.workers === 0;
  const quota = cleanup || !candidates.some((c) => c.shared) ? null : await sharedQuota(tx, services, want);
  const room = (c: Candidate) => {
    const free = c.capacity - c.used;
    return c.shared && quota ? Math.min(free, quota.room) : free;
  };
  const ranked = candidates
    .filter((c) => room(c) >= want.workers && c.held < MAX_RUNNER_DEPLOYMENTS)
    .sort((a, b) => Number(a.shared) - Number(b.shared) || room(b) - room(a) || a.id.localeCompare(b.id));
  for (const candidate of ranked) {
    const recounted = await lockAndCount(tx, candidate);
    if (recounted.held < MAX_RUNNER_DEPLOYMENTS && room(recounted) >= want.workers) return { runnerId: candidate.id };
  }
  const unrunnable = want.spec && !cleanup ? unrunnableReason(usable, want.spec) : null;
  if (unrunnable) return { runnerId: null, reason: unrunnable, impossible: true };
  return { runnerId: null, ...whyNone(services, want, candidates, quota) };
}

/** The alive runners that may run the tenant's flows (its own and the platform-wide ones), but the one to leave. */
async function findUsable(tx: Database, services: Services, want: Wanted): Promise<Candidate[]> {
  const rows = await tx
    .select({
      id: runners.id,
      tenantId: runners.tenantId,
      driver: runners.driver,
      trustedModules: runners.trustedModules,
      capacity: runners.capacity,
      used: sql<number>`coalesce(sum(${deployments.workers}) filter (where ${active()}), 0)::int`,
      held: sql<number>`count(${deployments.flowId})::int`,
    })
    .from(runners)
    .leftJoin(deployments, eq(deployments.runnerId, runners.id))
    .where(
      and(
        gt(runners.lastSeenAt, lostBefore(services)),
        or(eq(runners.tenantId, want.tenant), isNull(runners.tenantId)),
        want.except ? ne(runners.id, want.except) : undefined,
      ),
    )
    .groupBy(runners.id);
  return rows.map(({ tenantId, ...row }) => ({ ...row, shared: tenantId === null }));
}

async function lockAndCount(tx: Database, candidate: Candidate): Promise<Candidate> {
  await tx.select({ id: runners.id }).from(runners).where(eq(runners.id, candidate.id)).for('update');
  const [counted] = await tx
    .select({
      used: sql<number>`coalesce(sum(${deployments.workers}) filter (where ${active()}), 0)::int`,
      held: sql<number>`count(*)::int`,
    })
    .from(deployments)
    .where(eq(deployments.runnerId, candidate.id));
  return { ...candidate, used: counted?.used ?? 0, held: counted?.held ?? 0 };
}

interface Quota {
  /** Step workers the tenant may still take on platform-wide runners (0 once it runs as many flows as it may). */
  room: number;
  workers: number;
  flows: number;
}

/** What the tenant holds on platform-wide runners, the flow being placed left out (it may be moving off a lost one). */
async function sharedQuota(tx: Database, services: Services, want: Wanted): Promise<Quota> {
  await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, want.tenant)).for('update');
  const [held] = await tx
    .select({ workers: sql<number>`coalesce(sum(${deployments.workers}), 0)::int`, flows: sql<number>`count(*)::int` })
    .from(deployments)
    .innerJoin(runners, eq(runners.id, deployments.runnerId))
    .where(and(eq(deployments.tenantId, want.tenant), isNull(runners.tenantId), active(), ne(deployments.flowId, want.flowId)));
  const workers = held?.workers ?? 0;
  const flows = held?.flows ?? 0;
  const { SHARED_RUNNER_STEPS_PER_TENANT: maxWorkers, SHARED_RUNNER_FLOWS_PER_TENANT: maxFlows } = services.config;
  return { room: flows >= maxFlows ? 0 : Math.max(0, maxWorkers - workers), workers, flows };
}

function whyNone(services: Services, want: Wanted, candidates: Candidate[], quota: Quota | null): { reason: string; impossible: boolean } {
  const waiting = `waiting for a runner of this tenant (or a platform-wide one) with the ${want.drivers.join(' or ')} driver and room for ${plural(want.workers, 'step worker')}`;
  if (candidates.length === 0 || want.workers === 0) return { reason: waiting, impossible: false };
  const { SHARED_RUNNER_STEPS_PER_TENANT: maxWorkers, SHARED_RUNNER_FLOWS_PER_TENANT: maxFlows } = services.config;
  const largest = Math.max(...candidates.map((c) => (c.shared ? Math.min(c.capacity, maxWorkers) : c.capacity)));
  if (want.workers > largest) {
    const capped = candidates.some((c) => c.shared && c.capacity > maxWorkers);
    return {
      reason:
        `the flow has ${plural(want.workers, 'step')}, more than any runner it may use can take: the largest has room for ${plural(largest, 'step worker')} in all` +
        (capped ? ` (one tenant holds at most ${maxWorkers} on platform-wide runners, SHARED_RUNNER_STEPS_PER_TENANT)` : ''),
      impossible: true,
    };
  }
  if (quota && quota.room < want.workers) {
    const held =
      quota.flows >= maxFlows
        ? `runs ${quota.flows} of the ${maxFlows} flows (SHARED_RUNNER_FLOWS_PER_TENANT)`
        : `holds ${quota.workers} of the ${maxWorkers} step workers (SHARED_RUNNER_STEPS_PER_TENANT)`;
    return { reason: `${waiting}; on platform-wide runners this tenant ${held} it may have there`, impossible: false };
  }
  return { reason: waiting, impossible: false };
}
