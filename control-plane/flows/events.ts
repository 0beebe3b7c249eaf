import type { EventEnvelope } from '../../protocol/envelope.js';
import { on } from '../bus/handler.js';
import { handleOnce } from '../bus/inbox.js';
import type { Database } from '../db/index.js';
import type { Services } from '../services.js';
import { markFailed, markStarted, markStopped, SERVICE_NAME, type FlowRef } from './service.js';

/** Follows the fleet's lifecycle reports: flow.started, flow.stopped and flow.failed move a flow's status on. */
export async function subscribeFlowRepository(services: Services) {
  const apply = async (event: EventEnvelope, ref: FlowRef, change: (tx: Database) => Promise<boolean>) => {
    const handled = await handleOnce(services, SERVICE_NAME, event, change);
    if (handled.fresh && !handled.result)
      services.logger.info(
        { event: event.headers.name, eventId: event.headers.id, flowId: ref.id, tenant: ref.tenant },
        'lifecycle event ignored: no flow of that tenant in the state it reports on',
      );
  };

  await services.bus.subscribe(SERVICE_NAME, {
    'flow.started': on('flow.started', (ref, event) => apply(event, ref, (tx) => markStarted(tx, ref))),
    'flow.stopped': on('flow.stopped', (ref, event) => apply(event, ref, (tx) => markStopped(tx, ref))),
    'flow.failed': on('flow.failed', (ref, event) => apply(event, ref, (tx) => markFailed(tx, ref, ref.reason))),
  });
}
