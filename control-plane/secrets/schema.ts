import { index, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { Owner } from '../../protocol/flow.js';
import { timestamps } from '../db/columns.js';
import { tenants } from '../iam/schema.js';

/** One data key per tenant, stored only wrapped (AES-256-GCM) by a master key from configuration. */
export const dataKeys = pgTable('secret_data_keys', {
  tenantId: uuid('tenant_id')
    .primaryKey()
    .references(() => tenants.id, { onDelete: 'cascade' }),
  masterKeyId: text('master_key_id').notNull(),
  wrapped: text('wrapped').notNull(),
  createdAt: timestamps.createdAt,
  rewrappedAt: timestamp('rewrapped_at', { withTimezone: true, mode: 'date' }),
});

/** OAuth2 clients of other applications, whose authorization-code flow creates OAUTH2 secrets. */
export const authClients = pgTable(
  'auth_clients',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    owners: jsonb('owners').$type<Owner[]>().notNull(),
    name: text('name').notNull(),
    clientId: text('client_id').notNull(),
    /** The client secret, sealed with the tenant's data key. */
    clientSecret: text('client_secret').notNull(),
    authorizationEndpoint: text('authorization_endpoint').notNull(),
    tokenEndpoint: text('token_endpoint').notNull(),
    scopes: text('scopes').array().notNull(),
    ...timestamps,
  },
  (t) => [index('auth_clients_tenant_idx').on(t.tenantId)],
);

/** A credential; `value` is its JSON sealed with the tenant's data key, so no plaintext reaches the database. */
export const secrets = pgTable(
  'secrets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    owners: jsonb('owners').$type<Owner[]>().notNull(),
    name: text('name').notNull(),
    type: text('type', { enum: ['SIMPLE', 'API_KEY', 'MIXED', 'OAUTH2'] }).notNull(),
    value: text('value').notNull(),
    authClientId: uuid('auth_client_id').references(() => authClients.id, { onDelete: 'set null' }),
    /** When an OAUTH2 access token expires; it is refreshed shortly before. */
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }),
    /** Held by the one reader refreshing the token (compare-and-set), so two never refresh at once. */
    refreshLockedUntil: timestamp('refresh_locked_until', { withTimezone: true, mode: 'date' }),
    lastError: text('last_error'),
    ...timestamps,
  },
  (t) => [index('secrets_tenant_idx').on(t.tenantId)],
);
