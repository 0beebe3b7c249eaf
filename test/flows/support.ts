import { and, count, eq } from 'drizzle-orm';
import { processedEvents } from '../../control-plane/bus/schema.js';
import { expect } from 'vitest';
import { flows } from '../../control-plane/flows/schema.js';
import { deployments } from '../../control-plane/runners/schema.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import type { TestControlPlane } from '../support/control-plane.js';
import { runnerAccount } from '../support/runner.js';
import { waitFor } from '../support/events.js';

/** A valid two-step flow body; `overrides` replace top-level fields. */
export const flowBody = (overrides: Record<string, unknown> = {}) => ({
  name: 'Orders to CRM',
  description: 'Receives orders and maps them',
  graph: {
    nodes: [
      { id: 'receive', componentId: 'webhook', function: 'receive' },
      { id: 'map', componentId: 'jsonata', function: 'map', fields: { expression: '$' } },
    ],
    edges: [{ source: 'receive', target: 'map' }],
  },
  ...overrides,
});

export async function createFlow(cp: TestControlPlane, token: string, overrides: Record<string, unknown> = {}): Promise<any> {
  const res = await cp.request('POST', '/flows', { token, body: flowBody(overrides) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.data;
}

export async function countFlows(cp: TestControlPlane): Promise<number> {
  const [row] = await cp.services.db.select({ n: count() }).from(flows);
  return row!.n;
}

/** The events of `name` about flow `id` collected so far. */
export const eventsAbout = (events: EventEnvelope[], name: string, id: string) =>
  events.filter((e) => e.headers.name === name && (e.payload.id === id || e.payload.flowId === id));

/** Publishes a lifecycle event as the runner fleet would. */
export async function publishAsRunner(cp: TestControlPlane, name: string, payload: Record<string, unknown>): Promise<EventEnvelope> {
  const event = createEnvelope(name, payload, 'runner');
  await cp.services.bus.publish(event);
  return event;
}

/** The flow's status as GET /flows/{id} answers it. */
export const statusOf = async (cp: TestControlPlane, token: string, id: string): Promise<string> =>
  (await cp.request('GET', `/flows/${id}`, { token })).body.data.status;

/** Waits until the flow repository has recorded `eventId` as handled (its inbox row commits with its work). */
export async function handledByRepository(cp: TestControlPlane, eventId: string): Promise<void> {
  const recorded = async () =>
    (
      await cp.services.db
        .select()
        .from(processedEvents)
        .where(and(eq(processedEvents.consumer, 'flow-repository'), eq(processedEvents.eventId, eventId)))
    ).length;
  await waitFor(recorded, (rows) => rows === 1);
}

/**
 * A runner of the tenant that heartbeats but deploys nothing, so tests drive the lifecycle
 * themselves: flows are placed on it (and stay starting), and a stop waits for a flow.stopped.
 */
export async function silentRunner(cp: TestControlPlane, tenantId: string): Promise<{ id: string; token: string; stop(): void }> {
  const { token } = await runnerAccount(cp, tenantId);
  const registered = await cp.request('POST', '/runners', {
    token,
    body: { name: 'silent', host: 'test', driver: 'process', capacity: 1000 },
  });
  const id = registered.body.data.id as string;
  const timer = setInterval(() => void cp.request('POST', `/runners/${id}/heartbeat`, { token, body: {} }).catch(() => {}), 1000);
  timer.unref();
  return { id, token, stop: () => clearInterval(timer) };
}

/** Waits until the fleet has placed the flow (flow.starting handled). */
export async function placed(cp: TestControlPlane, flowId: string): Promise<void> {
  await waitFor(
    async () => (await cp.services.db.select().from(deployments).where(eq(deployments.flowId, flowId))).length,
    (n) => n === 1,
  );
}
