import { index, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { EventHeaders } from '../../protocol/envelope.js';

/** Where a record came from: an event Hookline published on the bus, or a caller's POST /logs. */
export type RecordOrigin = 'event' | 'pushed';

/** One event envelope as received; kept when its tenant or user is deleted. */
export const auditRecords = pgTable(
  'audit_records',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    eventId: text('event_id').notNull().unique(),
    name: text('name').notNull(),
    serviceName: text('service_name').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    tenantId: uuid('tenant_id'),
    userId: text('user_id'),
    headers: jsonb('headers').$type<EventHeaders>().notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    origin: text('origin').$type<RecordOrigin>().notNull().default('event'),
    /** The user or service account that pushed it; null for events. */
    pushedBy: text('pushed_by'),
  },
  (t) => [
    index('audit_tenant_created_idx').on(t.tenantId, t.createdAt),
    index('audit_name_idx').on(t.name),
    index('audit_service_idx').on(t.serviceName),
  ],
);
