import type { EventEnvelope } from '../../protocol/envelope.js';
import type { EventPayload } from '../../protocol/events.js';
import { entryExchange, entryMessage } from '../../protocol/fleet.js';
import type { EventBus } from '../bus/types.js';

/**
 * Where the outbox relay sends what it takes from the outbox: a flow.executed goes to the flows'
 * entry as its first step's input (protocol/fleet.ts), so that a step queue holds step messages
 * only; every other event goes to the bus.
 */
export function relayOutlet(bus: EventBus, namespace: string): Pick<EventBus, 'publish'> {
  const exchange = entryExchange(namespace);
  return {
    publish: (event: EventEnvelope) =>
      event.headers.name === 'flow.executed'
        ? // Checked against its schema when the edge delivered it (edge/service.ts), before it was written.
          bus.send({ exchange, ...entryMessage(event.payload as EventPayload<'flow.executed'>) })
        : bus.publish(event),
  };
}
