import type { EventEnvelope } from '../../protocol/envelope.js';
import type { Database } from '../db/index.js';
import { processedEvents } from './schema.js';

/** What `handleOnce` did: ran the work (its result), or found the event handled already. */
export type Handled<T> = { fresh: true; result: T } | { fresh: false };

/**
 * Runs `work` in a transaction that also records the event as handled by `consumer`; a
 * redelivered event (same headers.id) finds the record and does nothing. Once the work committed,
 * the outbox relay is woken, so the events it emitted go out now rather than at the next poll.
 */
export async function handleOnce<T>(
  services: { db: Database; relay: { kick(): void } },
  consumer: string,
  event: EventEnvelope,
  work: (tx: Database) => Promise<T>,
): Promise<Handled<T>> {
  const handled = await services.db.transaction(async (tx): Promise<Handled<T>> => {
    const fresh = await tx
      .insert(processedEvents)
      .values({ consumer, eventId: event.headers.id })
      .onConflictDoNothing()
      .returning({ eventId: processedEvents.eventId });
    if (fresh.length === 0) return { fresh: false };
    return { fresh: true, result: await work(tx) };
  });
  if (handled.fresh) services.relay.kick();
  return handled;
}
