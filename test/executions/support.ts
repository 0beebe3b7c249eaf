import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { expect } from 'vitest';
import { outbox, processedEvents } from '../../control-plane/bus/schema.js';
import { ingestExecutions } from '../../control-plane/edge/service.js';
import { executionDeliveries, executions } from '../../control-plane/executions/schema.js';
import { flows } from '../../control-plane/flows/schema.js';
import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import type { EventName, EventPayload, StepResult } from '../../protocol/events.js';
import type { FlowStatus } from '../../protocol/flow.js';
import type { TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';

/** Publishes an event on the control plane's bus, as the edge or a runner would. */
export async function publish<N extends EventName>(cp: TestControlPlane, name: N, payload: EventPayload<N>): Promise<EventEnvelope> {
  const event = createEnvelope(name, payload as Record<string, unknown>, 'runner');
  await cp.services.bus.publish(event);
  return event;
}

/** Delivers executions as the edge does: once it answers, each is recorded and its flow.executed is in the outbox. */
export const deliver = (cp: TestControlPlane, ...executed: EventPayload<'flow.executed'>[]) => ingestExecutions(cp.services, executed);

/** Publishes one batch of step results, as a step worker would. */
export const report = (cp: TestControlPlane, ...results: StepResult[]) => publish(cp, 'execution.step.results', { results });

/** A flow of `tenantId` in `status` (active: it runs), written straight to the database; returns its id. */
export async function createFlowRow(cp: TestControlPlane, tenantId: string, status: FlowStatus = 'active'): Promise<string> {
  const [flow] = await cp.services.db
    .insert(flows)
    .values({
      tenantId,
      name: `flow-${randomUUID().slice(0, 8)}`,
      status,
      owners: [],
      graph: { nodes: [{ id: 'a', componentId: 'webhook', function: 'receive' }], edges: [] },
    })
    .returning({ id: flows.id });
  return flow!.id;
}

/** The ids one execution's events share. */
export type ExecutionRef = { flowExecId: string; flowId: string; tenant: string };
export const executionRef = (tenant: string, flowId: string = randomUUID()): ExecutionRef => ({ flowExecId: randomUUID(), flowId, tenant });

/** The ids of an execution of a new running flow of `tenant`. */
export const runningExecution = async (cp: TestControlPlane, tenant: string): Promise<ExecutionRef> =>
  executionRef(tenant, await createFlowRow(cp, tenant));

export const executedPayload = (
  ref: ExecutionRef,
  data: unknown = { order: 1 },
  receivedAt = new Date(),
): EventPayload<'flow.executed'> => ({
  ...ref,
  trigger: 'webhook',
  message: { id: randomUUID(), data, attachments: {}, headers: {}, metadata: {}, passthrough: {} },
  receivedAt: receivedAt.toISOString(),
});

/** A step's output message. */
export const output = (data: unknown) => ({ id: randomUUID(), data, attachments: {}, headers: {}, metadata: {}, passthrough: {} });

/**
 * What step `stepId` made of the input delivery `deliveryId`: succeeded with `outputs`, each sent
 * on as the deliveries `delivered`, unless `error` is given. Its id is derived from the execution,
 * the step and the delivery, as a step worker derives it, so the same input reported again has the same id.
 */
export function stepResult(
  ref: ExecutionRef,
  stepId: string,
  deliveryId: string,
  options: {
    outputs?: unknown[];
    outputCount?: number;
    delivered?: string[];
    error?: { message: string; stack?: string };
    input?: unknown;
    attempts?: number;
    startedAt?: Date;
    durationMs?: number;
  } = {},
): StepResult {
  const outputs = options.outputs ?? [];
  return {
    ...ref,
    id: `${ref.flowExecId}:${stepId}:${deliveryId}`,
    stepId,
    deliveryId,
    status: options.error ? 'failed' : 'succeeded',
    startedAt: (options.startedAt ?? new Date()).toISOString(),
    durationMs: options.durationMs ?? 5,
    attempts: options.attempts ?? 1,
    outputs,
    outputCount: options.outputCount ?? outputs.length,
    delivered: options.delivered ?? [],
    ...(options.error ? { error: options.error, input: options.input ?? null } : {}),
  };
}

/** GET /executions/{id}, expecting a 200. */
export async function readExecution(cp: TestControlPlane, token: string, id: string) {
  const res = await cp.request('GET', `/executions/${id}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data;
}

/** Waits until the executions consumer has handled (applied or ignored) the event: its work committed with this record. */
export async function handled(cp: TestControlPlane, event: EventEnvelope): Promise<void> {
  const where = and(eq(processedEvents.consumer, 'executions'), eq(processedEvents.eventId, event.headers.id));
  await waitFor(
    () => cp.services.db.select().from(processedEvents).where(where),
    (rows) => rows.length === 1,
  );
}

/** Publishes and waits until the executions consumer has handled the event. */
export async function apply<N extends EventName>(cp: TestControlPlane, name: N, payload: EventPayload<N>): Promise<EventEnvelope> {
  const event = await publish(cp, name, payload);
  await handled(cp, event);
  return event;
}

/** Reports a batch and waits until it was handled. */
export const applyResults = (cp: TestControlPlane, ...results: StepResult[]) => apply(cp, 'execution.step.results', { results });

/** The deliveries still tracked for the execution of `flowExecId`. */
export async function trackedDeliveries(cp: TestControlPlane, flowExecId: string) {
  return cp.services.db
    .select({ deliveryId: executionDeliveries.deliveryId, delivered: executionDeliveries.delivered, done: executionDeliveries.done })
    .from(executionDeliveries)
    .innerJoin(executions, eq(executions.id, executionDeliveries.executionId))
    .where(eq(executions.flowExecId, flowExecId));
}

/**
 * Collects every execution.finished. `settled()` returns those collected once everything the
 * outbox held was published and delivered: it waits until no execution.finished is left in the
 * outbox, then until a marker published after them has arrived (the bus keeps their order).
 */
export async function finishedEvents(cp: TestControlPlane) {
  const events = await collectEvents(cp, 'execution.finished');
  return {
    events,
    async settled(): Promise<EventEnvelope[]> {
      await waitFor(
        () => cp.services.db.select().from(outbox).where(eq(outbox.name, 'execution.finished')),
        (rows) => rows.length === 0,
      );
      const marker = await publish(cp, 'execution.finished', { ...executionRef(randomUUID()), status: 'succeeded' });
      await waitFor(
        async () => events.some((e) => e.headers.id === marker.headers.id),
        (seen) => seen,
      );
      return events.filter((e) => e.headers.id !== marker.headers.id);
    },
  };
}
