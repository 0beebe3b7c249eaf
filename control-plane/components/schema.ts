import { isNull } from 'drizzle-orm';
import { index, jsonb, pgTable, text, unique, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { COMPONENT_ACCESS, type ComponentFunction } from '../../protocol/component.js';
import type { Owner } from '../../protocol/flow.js';
import { timestamps } from '../db/columns.js';
import { tenants } from '../iam/schema.js';

/**
 * A component: what a flow node's componentId names, and how the runner fleet runs it. Tenant null:
 * a built-in (protocol/builtins.ts), seeded at every start by components/builtins.ts.
 */
export const components = pgTable(
  'components',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Null for the built-ins, which belong to the platform. */
    tenantId: uuid('tenant_id').references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    /** public: every tenant may use and read it; private: its tenant only. */
    access: text('access', { enum: COMPONENT_ACCESS }).notNull().default('private'),
    owners: jsonb('owners').$type<Owner[]>().notNull(),
    /** The Docker image the docker driver runs. */
    image: text('image'),
    /** The Node module (path or package name) the process driver loads. */
    module: text('module'),
    functions: jsonb('functions').$type<ComponentFunction[]>().notNull(),
    ...timestamps,
  },
  // Names are unique within a tenant, so a flow node may name a component of its own tenant unambiguously;
  // the built-ins' too (a unique constraint lets NULL tenants repeat a name, hence the partial index).
  (t) => [
    unique('components_tenant_name_unique').on(t.tenantId, t.name),
    uniqueIndex('components_builtin_name_unique').on(t.name).where(isNull(t.tenantId)),
    index('components_name_idx').on(t.name),
  ],
);
