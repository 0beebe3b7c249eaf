import { bigserial, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import type { EventEnvelope } from '../../protocol/envelope.js';

/** Events written in the same transaction as the state change that raised them; the relay publishes and deletes them. */
export const outbox = pgTable('outbox', {
  seq: bigserial('seq', { mode: 'number' }).primaryKey(),
  eventId: text('event_id').notNull().unique(),
  name: text('name').notNull(),
  envelope: jsonb('envelope').$type<EventEnvelope>().notNull(),
  attempts: integer('attempts').notNull().default(0),
  lastError: text('last_error'),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/** The events a consumer has handled, written in the handler's transaction, so a redelivery does nothing. */
export const processedEvents = pgTable(
  'processed_events',
  {
    consumer: text('consumer').notNull(),
    eventId: text('event_id').notNull(),
    processedAt: timestamp('processed_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.consumer, t.eventId] }), index('processed_events_processed_at_idx').on(t.processedAt)],
);
