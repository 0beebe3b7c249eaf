import { index, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import type { FlowGraph, FlowSettings, FlowStatus } from '../../protocol/flow.js';
import { FLOW_STATUSES, FLOW_TYPES } from '../../protocol/flow.js';
import { timestamps } from '../db/columns.js';
import { tenants } from '../iam/schema.js';

export const flows = pgTable(
  'flows',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    type: text('type', { enum: FLOW_TYPES }).notNull().default('ordinary'),
    status: text('status', { enum: FLOW_STATUSES }).$type<FlowStatus>().notNull().default('inactive'),
    /** Why the flow last failed to start, or null. */
    statusReason: text('status_reason'),
    cron: text('cron'),
    timezone: text('timezone'),
    owners: jsonb('owners').$type<{ id: string; type: 'user' | 'tenant' }[]>().notNull(),
    graph: jsonb('graph').$type<FlowGraph>().notNull(),
    flowSettings: jsonb('flow_settings').$type<FlowSettings>(),
    createdBy: uuid('created_by'),
    startedBy: uuid('started_by'),
    ...timestamps,
  },
  (t) => [index('flows_tenant_created_idx').on(t.tenantId, t.createdAt), index('flows_status_idx').on(t.status)],
);
