import { z } from 'zod';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { stepResultSchema, type StepResult } from '../../protocol/events.js';
import { on } from '../bus/handler.js';
import { coalesced } from '../bus/coalesce.js';
import { handleEachOnce, handleOnce } from '../bus/inbox.js';
import { PoisonEventError } from '../bus/types.js';
import type { Services } from '../services.js';
import { recordFlowStopped } from './finish.js';
import { SERVICE_NAME } from './records.js';
import { recordResults } from './results.js';

/** A batch is checked result by result, so that one malformed result does not dead-letter the others with it. */
const batchSchema = z.object({ results: z.array(z.unknown()).min(1).max(1000) });
/** Results applied in one transaction at most, however many batches wait (a batch of more goes alone). */
const MAX_RESULTS_PER_TRANSACTION = 1000;
/** How many ignored results a warning names (it counts them all). */
const LOGGED_RESULTS = 20;

/**
 * Keeps each execution's record (made when the edge's delivery was accepted) up to date from the
 * step workers' execution.step.results; each event applies once (handleOnce), each result too (by
 * its id), batches that arrive together in one transaction. An execution ends when every delivery of it has a result, or when its flow stops; then
 * execution.finished goes out.
 */
export async function subscribeExecutions(services: Services) {
  const { logger } = services;

  /** Batches that come while one applies are applied together next, in one transaction (bus/coalesce.ts). */
  const apply = coalesced(
    async (batches: { event: EventEnvelope; results: StepResult[] }[]) => {
      const handled = await handleEachOnce(
        services,
        SERVICE_NAME,
        batches.map((b) => b.event),
        (tx, fresh) => {
          const ids = new Set(fresh.map((event) => event.headers.id));
          return recordResults(
            tx,
            batches.filter((b) => ids.has(b.event.headers.id)).flatMap((b) => b.results),
          );
        },
      );
      const ignored = handled.result?.ignored ?? [];
      if (ignored.length > 0) {
        logger.warn(
          {
            eventIds: handled.fresh.map((event) => event.headers.id),
            ignored: ignored.length,
            results: ignored
              .slice(0, LOGGED_RESULTS)
              .map((r) => ({ id: r.id, flowExecId: r.flowExecId, flowId: r.flowId, tenant: r.tenant })),
          },
          'step results ignored: their tenant is unknown, or the execution belongs to another tenant or flow',
        );
      }
    },
    { limit: MAX_RESULTS_PER_TRANSACTION, weight: (batch) => batch.results.length },
  );

  const results = async (event: EventEnvelope) => {
    const batch = batchSchema.safeParse(event.payload);
    if (!batch.success)
      throw new PoisonEventError(`execution.step.results ${event.headers.id}: payload does not match its schema: ${batch.error.message}`);
    const valid: StepResult[] = [];
    const malformed: { index: number; problem: string }[] = [];
    batch.data.results.forEach((raw, index) => {
      const parsed = stepResultSchema.safeParse(raw);
      if (parsed.success) valid.push(parsed.data);
      else malformed.push({ index, problem: parsed.error.message });
    });
    if (malformed.length > 0) {
      logger.warn(
        { eventId: event.headers.id, malformed: malformed.length, results: malformed.slice(0, LOGGED_RESULTS) },
        'step results ignored: they do not match their schema',
      );
    }
    await apply({ event, results: valid });
  };

  await services.bus.subscribe(SERVICE_NAME, {
    'flow.stopped': on('flow.stopped', async (payload, event) => {
      const handled = await handleOnce(services, SERVICE_NAME, event, (tx) =>
        recordFlowStopped(tx, payload, new Date(event.headers.createdAt)),
      );
      if (handled.fresh && handled.result > 0)
        logger.info(
          { flowId: payload.id, tenant: payload.tenant, executions: handled.result },
          'flow stopped: its running executions failed',
        );
    }),
    'execution.step.results': results,
  });
}
