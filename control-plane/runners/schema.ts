import { bigserial, boolean, index, integer, jsonb, pgTable, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core';
import type { DeploymentReport, DeploymentSpec } from '../../protocol/fleet.js';
import type { TrustedModules } from '../../protocol/runner.js';
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
    /** Null: a platform-wide runner (its account belongs to no tenant), which runs every tenant's flows. */
    tenantId: uuid('tenant_id').references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    host: text('host').notNull(),
    driver: text('driver', { enum: ['process', 'docker'] }).notNull(),
    capacity: integer('capacity').notNull(),
    version: text('version'),
    /** What its operator lets its process driver run besides the built-ins (RUNNER_TRUSTED_MODULES), as it registered. */
    trustedModules: jsonb('trusted_modules').$type<TrustedModules>().notNull().default({ packages: [], folders: false }),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** Its deployments as its last heartbeat reported them. */
    running: jsonb('running').$type<DeploymentReport[]>().notNull().default([]),
    /** Bumped with every change to its deployments, so its long poll knows when to answer. */
    desiredVersion: integer('desired_version').notNull().default(0),
    ...timestamps,
  },
  (t) => [unique('runners_account_name_unique').on(t.accountId, t.name), index('runners_tenant_idx').on(t.tenantId)],
);

export const DEPLOYMENT_PHASES = ['deploying', 'running', 'removing', 'cleanup'] as const;
export type DeploymentPhase = (typeof DEPLOYMENT_PHASES)[number];
/** The phases in which a deployment holds its step workers' room on its runner. */
export const ACTIVE_PHASES = ['deploying', 'running'] as const;

/**
 * Where each started flow runs: the fleet's desired state (docs/runner-fleet.md). One row per flow,
 * from its start until its runner removed its queues. No foreign key to flows: a cleanup may
 * outlive the flow.
 */
export const deployments = pgTable(
  'deployments',
  {
    flowId: uuid('flow_id').primaryKey(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /** Null while no runner has room (or, for a cleanup, none is alive). */
    runnerId: uuid('runner_id').references(() => runners.id, { onDelete: 'set null' }),
    phase: text('phase', { enum: DEPLOYMENT_PHASES }).notNull(),
    /** Bumped at every start and every move to another runner. */
    generation: integer('generation').notNull(),
    spec: jsonb('spec').$type<DeploymentSpec>().notNull(),
    /** Step workers it takes on its runner. */
    workers: integer('workers').notNull(),
    /** The drivers that can run every one of its steps. */
    drivers: jsonb('drivers').$type<('process' | 'docker')[]>().notNull(),
    /** flow.started went out for this start (a move to another runner does not announce it again). */
    announced: boolean('announced').notNull().default(false),
    ...timestamps,
  },
  (t) => [index('deployments_runner_idx').on(t.runnerId)],
);

/** What step workers wrote, shipped by their runners; kept STEP_LOG_RETENTION_DAYS. */
export const stepLogs = pgTable(
  'step_logs',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    flowId: uuid('flow_id').notNull(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    stepId: text('step_id').notNull(),
    runnerId: uuid('runner_id'),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
    stream: text('stream', { enum: ['stdout', 'stderr'] }).notNull(),
    line: text('line').notNull(),
  },
  (t) => [index('step_logs_flow_step_idx').on(t.flowId, t.stepId, t.seq), index('step_logs_at_idx').on(t.at)],
);
