import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core';
import { timestamps } from '../db/columns.js';

export const tenants = pgTable('tenants', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  status: text('status', { enum: ['active', 'disabled'] })
    .notNull()
    .default('active'),
  ...timestamps,
});

/** People log in with a password; service accounts have none and use permanent tokens. */
export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    username: text('username').notNull().unique(),
    kind: text('kind', { enum: ['person', 'service'] })
      .notNull()
      .default('person'),
    passwordHash: text('password_hash'),
    firstname: text('firstname'),
    lastname: text('lastname'),
    status: text('status', { enum: ['active', 'disabled'] })
      .notNull()
      .default('active'),
    /** Null only for system accounts (the first admin). */
    tenantId: uuid('tenant_id').references(() => tenants.id, { onDelete: 'cascade' }),
    /** Permissions granted directly, on top of those of the user's roles. */
    permissions: text('permissions').array().notNull().default(sql`'{}'::text[]`),
    failedLogins: integer('failed_logins').notNull().default(0),
    lockedUntil: timestamp('locked_until', { withTimezone: true, mode: 'date' }),
    lastLoginAt: timestamp('last_login_at', { withTimezone: true, mode: 'date' }),
    ...timestamps,
  },
  (t) => [index('users_tenant_idx').on(t.tenantId)],
);

/** A role with a null tenant is global (ADMIN, USER, TENANT_ADMIN...); others belong to one tenant. */
export const roles = pgTable(
  'roles',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    description: text('description'),
    tenantId: uuid('tenant_id').references(() => tenants.id, { onDelete: 'cascade' }),
    permissions: text('permissions').array().notNull().default(sql`'{}'::text[]`),
    isSystem: boolean('is_system').notNull().default(false),
    ...timestamps,
  },
  (t) => [unique('roles_name_tenant_unique').on(t.name, t.tenantId).nullsNotDistinct()],
);

export const userRoles = pgTable(
  'user_roles',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    roleId: uuid('role_id')
      .notNull()
      .references(() => roles.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.userId, t.roleId] })],
);

/**
 * Every token that can authenticate: login sessions (a JWT whose jti is the id), permanent
 * service-account tokens (`hlk_<id>_<secret>`) and step tokens (`hls_<id>_<secret>`, scoped to one
 * step of one flow, minted at deploy, revoked when the flow stops); of the last two only the
 * secret's SHA-256 is stored. Revocation is a row update.
 */
export const tokens = pgTable(
  'tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind', { enum: ['session', 'service', 'step'] }).notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    secretHash: text('secret_hash'),
    description: text('description'),
    createdBy: uuid('created_by'),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
    /** Step tokens: the flow and step they act for. */
    flowId: uuid('flow_id'),
    stepId: text('step_id'),
    createdAt: timestamps.createdAt,
  },
  (t) => [index('tokens_user_idx').on(t.userId), index('tokens_flow_idx').on(t.flowId)],
);

/** JWT signing keys (JWK), generated once when none is configured, so every replica signs alike. */
export const signingKeys = pgTable('iam_signing_keys', {
  id: text('id').primaryKey(),
  algorithm: text('algorithm').notNull(),
  privateJwk: jsonb('private_jwk').notNull(),
  publicJwk: jsonb('public_jwk'),
  createdAt: timestamps.createdAt,
});
