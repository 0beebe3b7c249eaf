import type { EventEnvelope } from '../../protocol/envelope.js';
import type { Database } from '../db/index.js';
import { processedEvents } from './schema.js';

/**
 * Runs `work` in a transaction that also records the event as handled by `consumer`; a
 * redelivered event (same headers.id) finds the record and does nothing. Returns whether work ran.
 */
export async function handleOnce(
  db: Database,
  consumer: string,
  event: EventEnvelope,
  work: (tx: Database) => Promise<void>,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const fresh = await tx
      .insert(processedEvents)
      .values({ consumer, eventId: event.headers.id })
      .onConflictDoNothing()
      .returning({ eventId: processedEvents.eventId });
    if (fresh.length === 0) return false;
    await work(tx);
    return true;
  });
}
