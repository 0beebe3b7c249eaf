import { index, integer, jsonb, pgTable, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core';
import type { Heartbeat } from '../../protocol/runner.js';
import { timestamps } from '../db/columns.js';
import { tenants, users } from '../iam/schema.js';

/** The runner nodes: each registered by its service account, known by (account, name). */
export const runners = pgTable(
  'runners',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    accountId: uuid('account_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tenantId: uuid('tenant_id').references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    host: text('host').notNull(),
    driver: text('driver', { enum: ['process', 'docker'] }).notNull(),
    capacity: integer('capacity').notNull(),
    version: text('version'),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** What it ran at its last heartbeat. */
    running: jsonb('running').$type<Heartbeat['running']>().notNull().default([]),
    ...timestamps,
  },
  (t) => [unique('runners_account_name_unique').on(t.accountId, t.name), index('runners_tenant_idx').on(t.tenantId)],
);
