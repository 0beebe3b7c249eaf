import { and, asc, count, eq, ne, or, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import { componentProblems, type Component, type ComponentCreate, type ComponentPatch } from '../../protocol/component.js';
import type { Owner } from '../../protocol/flow.js';
import { emit } from '../bus/outbox.js';
import { isUniqueViolation, type Database } from '../db/index.js';
import { ApiError, conflict, forbidden, notFound } from '../http/errors.js';
import type { Principal } from '../iam/tokens.js';
import { transact, type Services } from '../services.js';
import { components } from './schema.js';

export const SERVICE_NAME = 'components';

type ComponentRow = typeof components.$inferSelect;

const toComponent = (row: ComponentRow): Component => ({
  id: row.id,
  name: row.name,
  description: row.description,
  access: row.access,
  owners: row.owners,
  tenant: row.tenantId,
  builtIn: row.tenantId === null,
  image: row.image,
  module: row.module,
  functions: row.functions,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** Public components of every tenant (the built-ins among them), and the private ones of `tenantId`. */
const visibleTo = (tenantId: string | null) =>
  or(eq(components.access, 'public'), tenantId ? eq(components.tenantId, tenantId) : undefined);

/** Holders of `all` read every component. */
const readable = (principal: Principal): SQL | undefined => (principal.isAdmin ? undefined : visibleTo(principal.tenantId));

const taken = (name: string) => conflict(`The tenant has a component named "${name}" already`);

/** Owners as given, plus those that must be there, each once. */
function withOwners(given: Owner[] | undefined, ...required: Owner[]): Owner[] {
  const owners: Owner[] = [];
  for (const owner of [...(given ?? []), ...required]) {
    if (!owners.some((o) => o.id === owner.id && o.type === owner.type)) owners.push(owner);
  }
  return owners;
}

/**
 * A component the caller may read (else 404, as if it did not exist). To write, it must be of their
 * tenant: a public component of another tenant is a 403 (they can see it, so a 404 would lie), and
 * a built-in is a 403 for everyone, admins too (the next start would undo any change).
 */
async function findComponent(db: Database, principal: Principal, id: string, access: 'read'): Promise<ComponentRow>;
async function findComponent(db: Database, principal: Principal, id: string, access: 'write'): Promise<ComponentRow & { tenantId: string }>;
async function findComponent(db: Database, principal: Principal, id: string, access: 'read' | 'write'): Promise<ComponentRow> {
  const query = db
    .select()
    .from(components)
    .where(and(eq(components.id, id), readable(principal)));
  const [row] = access === 'write' ? await query.for('update') : await query;
  if (!row) throw notFound(`No component ${id} that you may see`);
  if (access === 'write' && row.tenantId === null) {
    throw forbidden(
      `Built-in components cannot be changed or deleted: ${row.name} (${id}) is one. A component of your tenant named ${row.name} takes its place in your tenant's flows`,
    );
  }
  if (access === 'write' && !principal.isAdmin && row.tenantId !== principal.tenantId) {
    throw forbidden(`Component ${id} belongs to another tenant: it is public, so you may read it, not change it`);
  }
  return row;
}

export async function listComponents(
  db: Database,
  principal: Principal,
  query: { name?: string; limit: number; offset: number },
): Promise<{ components: Component[]; total: number }> {
  const where = and(readable(principal), query.name === undefined ? undefined : eq(components.name, query.name));
  const [rows, [counted]] = await Promise.all([
    db
      .select()
      .from(components)
      .where(where)
      .orderBy(asc(components.name), asc(components.createdAt), asc(components.id))
      .limit(query.limit)
      .offset(query.offset),
    db.select({ total: count() }).from(components).where(where),
  ]);
  return { components: rows.map(toComponent), total: counted?.total ?? 0 };
}

export async function getComponent(db: Database, principal: Principal, id: string): Promise<Component> {
  return toComponent(await findComponent(db, principal, id, 'read'));
}

/**
 * The component a flow node's `componentId` names, as the flow's tenant sees it: by id, or by
 * name: the tenant's own component of that name first, then the built-in of that name, then the
 * oldest public one of another tenant. Null when there is none.
 */
export async function resolveComponent(db: Database, tenantId: string, ref: string): Promise<Component | null> {
  const byId = z.uuid().safeParse(ref).success;
  const [row] = await db
    .select()
    .from(components)
    .where(and(visibleTo(tenantId), byId ? or(eq(components.id, ref), eq(components.name, ref)) : eq(components.name, ref)))
    // An id match before a name match; the tenant's own, then the built-in, then other tenants' public ones; then the oldest.
    .orderBy(
      ...(byId ? [ne(components.id, ref)] : []),
      sql`case when ${components.tenantId} = ${tenantId} then 0 when ${components.tenantId} is null then 1 else 2 end`,
      asc(components.createdAt),
      asc(components.id),
    )
    .limit(1);
  return row ? toComponent(row) : null;
}

/** The component belongs to the caller's tenant; the caller and the tenant are among its owners. */
export async function createComponent(services: Services, principal: Principal, input: ComponentCreate): Promise<Component> {
  const tenantId = principal.tenantId;
  if (!tenantId) throw forbidden('Your account belongs to no tenant, and a component belongs to one');
  return transact(services, async (tx) => {
    const [row] = await tx
      .insert(components)
      .values({
        tenantId,
        name: input.name,
        description: input.description ?? null,
        access: input.access ?? 'private',
        owners: withOwners(input.owners, { id: principal.userId, type: 'user' }, { id: tenantId, type: 'tenant' }),
        image: input.image ?? null,
        module: input.module ?? null,
        functions: input.functions,
      })
      .returning()
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? taken(input.name) : error;
      });
    await emit(tx, SERVICE_NAME, 'components.component.created', { id: row!.id, tenant: tenantId, user: principal.userId });
    return toComponent(row!);
  });
}

/** Merges the given fields into the component and checks the result with every rule; the tenant stays among the owners. */
export async function updateComponent(services: Services, principal: Principal, id: string, patch: ComponentPatch): Promise<Component> {
  return transact(services, async (tx) => {
    const row = await findComponent(tx, principal, id, 'write');
    const merged = { ...row, ...patch, owners: patch.owners && withOwners(patch.owners, { id: row.tenantId, type: 'tenant' }) };
    const problems = componentProblems(merged);
    if (problems.length > 0) throw new ApiError(400, problems.join('; '), 'validation_error');
    const [updated] = await tx
      .update(components)
      .set({ ...patch, owners: merged.owners, updatedAt: new Date() })
      .where(eq(components.id, id))
      .returning()
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? taken(patch.name!) : error;
      });
    await emit(tx, SERVICE_NAME, 'components.component.modified', { id, tenant: row.tenantId, user: principal.userId });
    return toComponent(updated!);
  });
}

/** Flows naming it keep their graph (a reference may be a name, so there is no foreign key); resolveComponent finds nothing for them after. */
export async function deleteComponent(services: Services, principal: Principal, id: string): Promise<void> {
  await transact(services, async (tx) => {
    const row = await findComponent(tx, principal, id, 'write');
    await tx.delete(components).where(eq(components.id, id));
    await emit(tx, SERVICE_NAME, 'components.component.deleted', { id, tenant: row.tenantId, user: principal.userId });
  });
}
