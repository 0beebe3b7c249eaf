import { bigserial, boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from '../db/columns.js';
import { tenants } from '../iam/schema.js';

export const EXECUTION_STATUSES = ['running', 'succeeded', 'failed'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/** A step's counters (inputs it finished with, outputs, inputs it failed), and when its first result started and its last one ended. */
export interface StepStats {
  in: number;
  out: number;
  errors: number;
  firstAt: string;
  lastAt: string;
}

/** The earliest failure of an execution (by the time it failed): what its reason names when it ends. */
export interface FirstError {
  stepId: string;
  message: string;
  at: string;
}

/** One run of a flow (one flowExecId), built from flow.executed and the step workers' execution.step.results. */
export const executions = pgTable(
  'executions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    flowExecId: text('flow_exec_id').notNull().unique(),
    flowId: text('flow_id').notNull(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    status: text('status', { enum: EXECUTION_STATUSES }).notNull().default('running'),
    /** Why it failed: the first failing step and its error, the flow stopped, or the flow not running. */
    reason: text('reason'),
    /** Null until flow.executed arrives (step results may come first). */
    trigger: text('trigger', { enum: ['webhook', 'schedule', 'manual'] }),
    /** The first step's input, from flow.executed (capped like every recorded payload). */
    input: jsonb('input'),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull(),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
    steps: jsonb('steps').$type<Record<string, StepStats>>().notNull().default({}),
    /** How many outputs and errors fell off the capped lists in execution_messages. */
    droppedOutputs: integer('dropped_outputs').notNull().default(0),
    droppedErrors: integer('dropped_errors').notNull().default(0),
    firstError: jsonb('first_error').$type<FirstError>(),
    ...timestamps,
  },
  (t) => [
    index('executions_tenant_started_idx').on(t.tenantId, t.startedAt),
    index('executions_flow_started_idx').on(t.flowId, t.startedAt),
  ],
);

/**
 * The newest outputs and errors of an execution's steps, a row each: appending is an insert, not a
 * rewrite of the record, and the oldest beyond the cap (results.ts) are deleted.
 */
export const executionMessages = pgTable(
  'execution_messages',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    executionId: uuid('execution_id')
      .notNull()
      .references(() => executions.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['output', 'error'] }).notNull(),
    stepId: text('step_id').notNull(),
    /** The input delivery the step was working on (flow.executed's message id for the first step). */
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

/**
 * The deliveries of a running execution that are not yet both delivered (flow.executed, or a step's
 * result naming it in `delivered`) and done (a result with it as `deliveryId`). A delivery that
 * becomes both is deleted at once, so the execution is over when flow.executed has arrived and
 * none is left. Deleted when the execution ends.
 */
export const executionDeliveries = pgTable(
  'execution_deliveries',
  {
    executionId: uuid('execution_id')
      .notNull()
      .references(() => executions.id, { onDelete: 'cascade' }),
    deliveryId: text('delivery_id').notNull(),
    delivered: boolean('delivered').notNull().default(false),
    done: boolean('done').notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.executionId, t.deliveryId] })],
);
