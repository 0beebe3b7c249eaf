import { index, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from '../db/columns.js';

/** The executions received from the edge, by flowExecId: a batch the edge sends again is not published twice. */
export const edgeExecutions = pgTable(
  'edge_executions',
  {
    flowExecId: text('flow_exec_id').primaryKey(),
    flowId: uuid('flow_id').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull(),
    createdAt: timestamps.createdAt,
  },
  (t) => [index('edge_executions_created_idx').on(t.createdAt)],
);
