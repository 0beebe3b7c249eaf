import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from '../db/columns.js';
import { tenants } from '../iam/schema.js';

export const EXECUTION_STATUSES = ['running', 'succeeded', 'failed'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/** A step's counters, and when it was first and last heard of. */
export interface StepStats {
  in: number;
  out: number;
  errors: number;
  firstAt: string;
  lastAt: string;
}

/** One run of a flow (one flowExecId), built from flow.executed and the runner fleet's execution.* events. */
export const executions = pgTable(
  'executions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    flowExecId: text('flow_exec_id').notNull().unique(),
    flowId: text('flow_id').notNull(),
    tenantId: uuid('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    status: text('status', { enum: EXECUTION_STATUSES }).notNull().default('running'),
    /** Why it failed, as execution.finished said. */
    reason: text('reason'),
    /** Null until flow.executed arrives (step events may come first). */
    trigger: text('trigger', { enum: ['webhook', 'schedule', 'manual'] }),
    /** The first step's input, from flow.executed (capped like every recorded payload). */
    input: jsonb('input'),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull(),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
    steps: jsonb('steps').$type<Record<string, StepStats>>().notNull().default({}),
    /** How many outputs and errors fell off the capped lists in execution_messages. */
    droppedOutputs: integer('dropped_outputs').notNull().default(0),
    droppedErrors: integer('dropped_errors').notNull().default(0),
    ...timestamps,
  },
  (t) => [index('executions_tenant_started_idx').on(t.tenantId, t.startedAt), index('executions_flow_started_idx').on(t.flowId, t.startedAt)],
);

/**
 * The newest outputs and errors of an execution's steps, a row each: appending is an insert, not a
 * rewrite of the record, and the oldest beyond the cap (service.ts) are deleted.
 */
export const executionMessages = pgTable(
  'execution_messages',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    executionId: uuid('execution_id').notNull().references(() => executions.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['output', 'error'] }).notNull(),
    stepId: text('step_id').notNull(),
    /** The id of the input message the step was working on. */
    messageId: text('message_id'),
    /** The output message, or for an error the input that caused it. */
    message: jsonb('message'),
    error: jsonb('error').$type<{ message: string; stack?: string }>(),
    attempts: integer('attempts'),
    durationMs: integer('duration_ms'),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [index('execution_messages_execution_idx').on(t.executionId, t.kind, t.seq)],
);
