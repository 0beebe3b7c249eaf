import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { expect } from 'vitest';
import { processedEvents } from '../../control-plane/bus/schema.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import type { EventName, EventPayload } from '../../protocol/events.js';
import type { TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';

/** Publishes an event on the control plane's bus, as the edge or a runner would. */
export async function publish<N extends EventName>(cp: TestControlPlane, name: N, payload: EventPayload<N>): Promise<EventEnvelope> {
  const event = createEnvelope(name, payload as Record<string, unknown>, 'runner');
  await cp.services.bus.publish(event);
  return event;
}

/** The ids one execution's events share. */
export type ExecutionRef = { flowExecId: string; flowId: string; tenant: string };
export const executionRef = (tenant: string): ExecutionRef => ({ flowExecId: randomUUID(), flowId: randomUUID(), tenant });

export const executedPayload = (ref: ExecutionRef, data: unknown = { order: 1 }): EventPayload<'flow.executed'> => ({
  ...ref,
  trigger: 'webhook',
  message: { id: randomUUID(), data, attachments: {}, headers: {}, metadata: {}, passthrough: {} },
  receivedAt: new Date().toISOString(),
});

/** A step's output message. */
export const output = (data: unknown) => ({ id: randomUUID(), data, attachments: {}, headers: {}, metadata: {}, passthrough: {} });

/** GET /executions/{id}, expecting a 200. */
export async function readExecution(cp: TestControlPlane, token: string, id: string) {
  const res = await cp.request('GET', `/executions/${id}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data;
}

/** Waits until the execution exists and `done` holds for it. */
export async function waitForExecution(cp: TestControlPlane, token: string, id: string, done: (execution: any) => boolean = () => true) {
  return waitFor(
    async () => {
      const res = await cp.request('GET', `/executions/${id}`, { token });
      return res.status === 200 ? res.body.data : null;
    },
    (execution) => execution !== null && done(execution),
  );
}

/** Waits until the executions consumer has handled (applied or ignored) the event. */
export async function handled(cp: TestControlPlane, event: EventEnvelope): Promise<void> {
  const where = and(eq(processedEvents.consumer, 'executions'), eq(processedEvents.eventId, event.headers.id));
  await waitFor(() => cp.services.db.select().from(processedEvents).where(where), (rows) => rows.length === 1);
}
