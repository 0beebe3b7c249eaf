import { boolean, index, jsonb, pgTable, text, unique, uuid } from 'drizzle-orm/pg-core';
import type { Owner } from '../../protocol/flow.js';
import { timestamps } from '../db/columns.js';
import { tenants } from '../iam/schema.js';

/** A domain groups the JSON Schemas (master data models) of one subject area. */
export const domains = pgTable(
  'domains',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    /** Readable by every authenticated caller, not only the tenant's members. */
    public: boolean('public').notNull().default(false),
    owners: jsonb('owners').$type<Owner[]>().notNull(),
    ...timestamps,
  },
  (t) => [index('domains_tenant_idx').on(t.tenantId, t.name)],
);

export const schemas = pgTable(
  'schemas',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    domainId: uuid('domain_id')
      .notNull()
      .references(() => domains.id, { onDelete: 'cascade' }),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /** The path within the domain, such as `person.json` or `crm/contact.json`. */
    uri: text('uri').notNull(),
    name: text('name').notNull(),
    description: text('description'),
    /** The JSON Schema as stored, its `$id` rewritten to the repository's URL. */
    value: jsonb('value').$type<Record<string, unknown>>().notNull(),
    /** The `$id`s of the schemas it references. */
    refs: text('refs').array().notNull().default([]),
    ...timestamps,
  },
  (t) => [unique('schemas_domain_uri_unique').on(t.domainId, t.uri)],
);
