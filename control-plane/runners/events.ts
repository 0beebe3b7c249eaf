import type { EventEnvelope } from '../../protocol/envelope.js';
import { on } from '../bus/handler.js';
import { handleOnce } from '../bus/inbox.js';
import type { Database } from '../db/index.js';
import type { Services } from '../services.js';
import { placeFlow, removeFlow, SERVICE_NAME, type Touched } from './deployments.js';

/** The fleet's side of the lifecycle: flow.starting places a flow on a runner, flow.stopping has it removed. */
export async function subscribeFleet(services: Services): Promise<void> {
  const apply = async (event: EventEnvelope, work: (tx: Database, touched: Touched) => Promise<void>) => {
    const touched: Touched = new Set();
    await handleOnce(services, SERVICE_NAME, event, (tx) => work(tx, touched));
    services.notifier.notify(touched);
  };
  await services.bus.subscribe(SERVICE_NAME, {
    'flow.starting': on('flow.starting', (flow, event) => apply(event, (tx, touched) => placeFlow(tx, services, flow, touched))),
    'flow.stopping': on('flow.stopping', (flow, event) =>
      apply(event, (tx, touched) => removeFlow(tx, services, { id: flow.id, tenant: flow.tenant }, touched)),
    ),
  });
}
