import type { EventEnvelope } from '../../protocol/envelope.js';
import { on } from '../bus/handler.js';
import { handleOnce } from '../bus/inbox.js';
import type { Database } from '../db/index.js';
import type { Services } from '../services.js';
import { recordExecuted, recordFinished, recordStepFailed, recordStepStarted, recordStepSucceeded, SERVICE_NAME } from './service.js';

/**
 * Keeps one record per flowExecId from flow.executed and the runner fleet's execution.* events,
 * whichever comes first; each event applies once (handleOnce), and in any order.
 */
export async function subscribeExecutions(services: Services) {
  const apply = async (event: EventEnvelope, ref: { flowExecId: string; tenant: string }, record: (tx: Database, at: Date) => Promise<boolean>) => {
    let applied = true;
    await handleOnce(services.db, SERVICE_NAME, event, async (tx) => {
      applied = await record(tx, new Date(event.headers.createdAt));
    });
    if (!applied) {
      services.logger.warn(
        { event: event.headers.name, eventId: event.headers.id, flowExecId: ref.flowExecId, tenant: ref.tenant },
        'execution event ignored: its tenant is unknown, or the execution belongs to another tenant or flow',
      );
    }
  };

  await services.bus.subscribe(SERVICE_NAME, {
    'flow.executed': on('flow.executed', (payload, event) => apply(event, payload, (tx) => recordExecuted(tx, payload))),
    'execution.step.started': on('execution.step.started', (payload, event) => apply(event, payload, (tx, at) => recordStepStarted(tx, payload, at))),
    'execution.step.succeeded': on('execution.step.succeeded', (payload, event) => apply(event, payload, (tx, at) => recordStepSucceeded(tx, payload, at))),
    'execution.step.failed': on('execution.step.failed', (payload, event) => apply(event, payload, (tx, at) => recordStepFailed(tx, payload, at))),
    'execution.finished': on('execution.finished', (payload, event) => apply(event, payload, (tx, at) => recordFinished(tx, payload, at))),
  });
}
