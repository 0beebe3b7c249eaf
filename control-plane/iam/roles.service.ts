import { and, asc, count, eq, isNull, or } from 'drizzle-orm';
import { lacking } from '../../protocol/permissions.js';
import { emit } from '../bus/outbox.js';
import { isUniqueViolation, type Database } from '../db/index.js';
import { permissionScope } from '../http/auth.js';
import { badRequest, conflict, forbidden, notFound } from '../http/errors.js';
import { transact, type Services } from '../services.js';
import { roles, tenants, userRoles } from './schema.js';
import { checkGrantable, permissionsOf, SERVICE_NAME } from './service.js';
import type { Principal } from './tokens.js';

export interface Role {
  id: string;
  name: string;
  description: string | null;
  tenant: string | null;
  permissions: string[];
  isSystem: boolean;
  createdAt: string;
  updatedAt: string;
}

type RoleRow = typeof roles.$inferSelect;

const toRole = (row: RoleRow): Role => ({
  id: row.id,
  name: row.name,
  description: row.description,
  tenant: row.tenantId,
  permissions: row.permissions,
  isSystem: row.isSystem,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** Global roles are visible to everyone who may read roles; a tenant's roles to that tenant. */
const visible = (scope: string | null) => (scope === null ? undefined : or(isNull(roles.tenantId), eq(roles.tenantId, scope)));

const taken = (name: string) => conflict(`A role named ${name} exists already there`);

/** A tenant role may not take a global role's name: assigning that name would then mean two things. */
async function assertNameFree(db: Database, name: string | undefined, tenantId: string | null): Promise<void> {
  if (!name || tenantId === null) return;
  const [global] = await db
    .select({ id: roles.id })
    .from(roles)
    .where(and(eq(roles.name, name), isNull(roles.tenantId)));
  if (global) throw conflict(`${name} is the name of a global role; choose another`);
}

async function findRole(db: Database, scope: string | null, id: string): Promise<RoleRow> {
  const [row] = await db
    .select()
    .from(roles)
    .where(and(eq(roles.id, id), visible(scope)));
  if (!row) throw notFound(`No role ${id} that you may see`);
  return row;
}

/** Global roles only admins change, system roles nobody: they are what the platform's own rules refer to. */
function assertChangeable(row: RoleRow, scope: string | null): void {
  if (row.isSystem) throw conflict(`${row.name} is a system role and cannot be changed or deleted; create a role of your own instead`);
  if (scope !== null && row.tenantId === null) throw forbidden(`${row.name} is a global role: only an admin may change it`);
}

/**
 * Changing or deleting a role changes what its holders may do, so it follows the rule for accounts:
 * the caller must hold every permission of the role and of every account that holds it.
 */
async function assertRoleNotOutranked(db: Database, principal: Principal, row: RoleRow): Promise<void> {
  const own = lacking(principal.permissions, row.permissions);
  if (own.length > 0)
    throw forbidden(`Role ${row.name} holds permissions you lack (${own.join(', ')}), so you may not change or delete it`);
  const holders = db.select({ id: userRoles.userId }).from(userRoles).where(eq(userRoles.roleId, row.id));
  const theirs = lacking(principal.permissions, await permissionsOf(db, holders));
  if (theirs.length > 0)
    throw forbidden(
      `Role ${row.name} is held by accounts with permissions you lack (${theirs.join(', ')}), so you may not change or delete it`,
    );
}

export async function listRoles(
  db: Database,
  principal: Principal,
  query: { tenant?: string; limit: number; offset: number },
): Promise<{ roles: Role[]; total: number }> {
  const scope = permissionScope(principal, 'iam.role.read', 'tenant.roles.read');
  const where = and(visible(scope), query.tenant ? eq(roles.tenantId, query.tenant) : undefined);
  const [rows, [counted]] = await Promise.all([
    db.select().from(roles).where(where).orderBy(asc(roles.name), asc(roles.id)).limit(query.limit).offset(query.offset),
    db.select({ total: count() }).from(roles).where(where),
  ]);
  return { roles: rows.map(toRole), total: counted?.total ?? 0 };
}

export async function getRole(db: Database, principal: Principal, id: string): Promise<Role> {
  return toRole(await findRole(db, permissionScope(principal, 'iam.role.read', 'tenant.roles.read'), id));
}

/** Tenant admins create roles in their own tenant, admins anywhere or global ones (no tenant); a role holds only what its author holds. */
export async function createRole(
  services: Services,
  principal: Principal,
  input: { name: string; description?: string; permissions: string[]; tenant?: string | null },
): Promise<Role> {
  const scope = permissionScope(principal, 'iam.role.create', 'tenant.roles.create');
  if (scope !== null && input.tenant !== undefined && input.tenant !== scope)
    throw forbidden('You may create roles in your own tenant only');
  checkGrantable(principal, input.permissions);
  const tenantId = scope ?? input.tenant ?? null;
  return transact(services, async (tx) => {
    if (tenantId) {
      const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
      if (!tenant) throw badRequest(`tenant: no tenant ${tenantId}`);
    }
    await assertNameFree(tx, input.name, tenantId);
    const [row] = await tx
      .insert(roles)
      .values({ name: input.name, description: input.description, permissions: input.permissions, tenantId })
      .onConflictDoNothing()
      .returning();
    if (!row) throw taken(input.name);
    await emit(tx, SERVICE_NAME, 'iam.role.created', { id: row.id, tenant: tenantId, user: principal.userId });
    return toRole(row);
  });
}

export async function updateRole(
  services: Services,
  principal: Principal,
  id: string,
  patch: { name?: string; description?: string; permissions?: string[] },
): Promise<Role> {
  const scope = permissionScope(principal, 'iam.role.update', 'tenant.roles.update');
  if (patch.permissions) checkGrantable(principal, patch.permissions);
  return transact(services, async (tx) => {
    const row = await findRole(tx, scope, id);
    assertChangeable(row, scope);
    await assertRoleNotOutranked(tx, principal, row);
    await assertNameFree(tx, patch.name, row.tenantId);
    const [updated] = await tx
      .update(roles)
      .set({ ...patch, updatedAt: new Date() })
      .where(eq(roles.id, id))
      .returning()
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? taken(patch.name!) : error;
      });
    await emit(tx, SERVICE_NAME, 'iam.role.modified', { id, tenant: row.tenantId, user: principal.userId });
    return toRole(updated!);
  });
}

export async function deleteRole(services: Services, principal: Principal, id: string): Promise<void> {
  const scope = permissionScope(principal, 'iam.role.delete', 'tenant.roles.delete');
  await transact(services, async (tx) => {
    const row = await findRole(tx, scope, id);
    assertChangeable(row, scope);
    await assertRoleNotOutranked(tx, principal, row);
    await tx.delete(roles).where(eq(roles.id, id));
    await emit(tx, SERVICE_NAME, 'iam.role.deleted', { id, tenant: row.tenantId, user: principal.userId });
  });
}
