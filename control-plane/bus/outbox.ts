import { createEnvelope, type EventEnvelope } from '../../protocol/envelope.js';
import { EVENTS, type EventName, type EventPayload } from '../../protocol/events.js';
import type { Database } from '../db/index.js';
import { outbox } from './schema.js';

/**
 * Writes an event into the outbox within the caller's transaction, so the state change and the
 * event commit or roll back together. The relay publishes it afterwards.
 */
export async function emit<N extends EventName>(
  tx: Database,
  serviceName: string,
  name: N,
  payload: EventPayload<N>,
): Promise<EventEnvelope> {
  const checked = EVENTS[name].parse(payload) as Record<string, unknown>;
  const envelope = createEnvelope(name, checked, serviceName);
  await tx.insert(outbox).values({ eventId: envelope.headers.id, name, envelope });
  return envelope;
}

/** emit() for many events of one name, in one statement; they are published in the order given. */
export async function emitAll<N extends EventName>(tx: Database, serviceName: string, name: N, payloads: EventPayload<N>[]): Promise<void> {
  if (payloads.length === 0) return;
  const envelopes = payloads.map((payload) => createEnvelope(name, EVENTS[name].parse(payload) as Record<string, unknown>, serviceName));
  await tx.insert(outbox).values(envelopes.map((envelope) => ({ eventId: envelope.headers.id, name, envelope })));
}
