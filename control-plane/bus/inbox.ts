import type { EventEnvelope } from '../../protocol/envelope.js';
import type { Database } from '../db/index.js';
import { processedEvents } from './schema.js';

/** What `handleOnce` did: ran the work (its result), or found the event handled already. */
export type Handled<T> = { fresh: true; result: T } | { fresh: false };

type Inbox = { db: Database; relay: { kick(): void } };

/**
 * Runs `work` in a transaction that also records the event as handled by `consumer`; a
 * redelivered event (same headers.id) finds the record and does nothing. Once the work committed,
 * the outbox relay is woken, so the events it emitted go out now rather than at the next poll.
 */
export async function handleOnce<T>(
  services: Inbox,
  consumer: string,
  event: EventEnvelope,
  work: (tx: Database) => Promise<T>,
): Promise<Handled<T>> {
  const handled = await handleEachOnce(services, consumer, [event], work);
  return handled.fresh.length > 0 ? { fresh: true, result: handled.result as T } : { fresh: false };
}

/**
 * `handleOnce` for several events in one transaction (one statement records them all): `work` gets
 * those not handled by `consumer` before (once each), and does not run when there are none.
 */
export async function handleEachOnce<T>(
  services: Inbox,
  consumer: string,
  events: EventEnvelope[],
  work: (tx: Database, fresh: EventEnvelope[]) => Promise<T>,
): Promise<{ fresh: EventEnvelope[]; result?: T }> {
  const handled = await services.db.transaction(async (tx) => {
    const unique = [...new Map(events.map((event) => [event.headers.id, event])).values()];
    const recorded = await tx
      .insert(processedEvents)
      .values(unique.map((event) => ({ consumer, eventId: event.headers.id })))
      .onConflictDoNothing()
      .returning({ eventId: processedEvents.eventId });
    const ids = new Set(recorded.map((row) => row.eventId));
    const fresh = unique.filter((event) => ids.has(event.headers.id));
    if (fresh.length === 0) return { fresh };
    return { fresh, result: await work(tx, fresh) };
  });
  if (handled.fresh.length > 0) services.relay.kick();
  return handled;
}
