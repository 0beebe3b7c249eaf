import type { EventEnvelope } from '../../protocol/envelope.js';
import { EVENTS, type EventName, type EventPayload } from '../../protocol/events.js';
import { PoisonEventError, type EventHandler } from './types.js';

/** A handler for one known event whose payload is checked against its schema first; a bad payload is poison. */
export function on<N extends EventName>(name: N, handle: (payload: EventPayload<N>, event: EventEnvelope) => Promise<void>): EventHandler {
  return async (event) => {
    const parsed = EVENTS[name].safeParse(event.payload);
    if (!parsed.success) {
      throw new PoisonEventError(`${name} ${event.headers.id}: payload does not match its schema: ${parsed.error.message}`);
    }
    await handle(parsed.data as EventPayload<N>, event);
  };
}
