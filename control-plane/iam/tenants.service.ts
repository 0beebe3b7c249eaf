import { and, asc, count, eq, ne } from 'drizzle-orm';
import { emit } from '../bus/outbox.js';
import { isUniqueViolation, type Database } from '../db/index.js';
import { flows } from '../flows/schema.js';
import { permissionScope } from '../http/auth.js';
import { conflict, forbidden, notFound } from '../http/errors.js';
import { transact, type Services } from '../services.js';
import { tenants } from './schema.js';
import { SERVICE_NAME } from './service.js';
import type { Principal } from './tokens.js';

export interface Tenant {
  id: string;
  name: string;
  status: 'active' | 'disabled';
  createdAt: string;
  updatedAt: string;
}

type TenantRow = typeof tenants.$inferSelect;

const toTenant = (row: TenantRow): Tenant => ({
  id: row.id,
  name: row.name,
  status: row.status,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

const taken = (name: string) => conflict(`A tenant named ${name} exists already`);

async function findTenant(db: Database, scope: string | null, id: string): Promise<TenantRow> {
  const [row] = await db
    .select()
    .from(tenants)
    .where(and(eq(tenants.id, id), scope === null ? undefined : eq(tenants.id, scope)));
  if (!row) throw notFound(`No tenant ${id} that you may see`);
  return row;
}

export async function listTenants(
  db: Database,
  principal: Principal,
  query: { limit: number; offset: number },
): Promise<{ tenants: Tenant[]; total: number }> {
  const scope = permissionScope(principal, 'iam.tenant.read', 'tenant.profile.read');
  const where = scope === null ? undefined : eq(tenants.id, scope);
  const [rows, [counted]] = await Promise.all([
    db.select().from(tenants).where(where).orderBy(asc(tenants.name)).limit(query.limit).offset(query.offset),
    db.select({ total: count() }).from(tenants).where(where),
  ]);
  return { tenants: rows.map(toTenant), total: counted?.total ?? 0 };
}

export async function getTenant(db: Database, principal: Principal, id: string): Promise<Tenant> {
  return toTenant(await findTenant(db, permissionScope(principal, 'iam.tenant.read', 'tenant.profile.read'), id));
}

export async function createTenant(services: Services, principal: Principal, name: string): Promise<Tenant> {
  return transact(services, async (tx) => {
    const [row] = await tx.insert(tenants).values({ name }).onConflictDoNothing().returning();
    if (!row) throw taken(name);
    await emit(tx, SERVICE_NAME, 'iam.tenant.created', { id: row.id, tenant: row.id, user: principal.userId });
    return toTenant(row);
  });
}

/** Tenant admins may rename their own tenant (tenant.profile.update); only iam.tenant.update changes its status. */
export async function updateTenant(
  services: Services,
  principal: Principal,
  id: string,
  patch: { name?: string; status?: Tenant['status'] },
): Promise<Tenant> {
  const scope = permissionScope(principal, 'iam.tenant.update', 'tenant.profile.update');
  if (scope !== null && patch.status !== undefined) throw forbidden('Missing permission: iam.tenant.update (to change a tenant’s status)');
  if (patch.status === 'disabled' && id === principal.tenantId)
    throw conflict('You cannot disable your own tenant: you would lock yourself out');
  return transact(services, async (tx) => {
    await findTenant(tx, scope, id);
    const [row] = await tx
      .update(tenants)
      .set({ ...patch, updatedAt: new Date() })
      .where(eq(tenants.id, id))
      .returning()
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? taken(patch.name!) : error;
      });
    await emit(tx, SERVICE_NAME, 'iam.tenant.modified', { id, tenant: id, user: principal.userId });
    return toTenant(row!);
  });
}

/** Deletes a tenant with its users, roles and flows; refused while any of its flows is not inactive, so nothing keeps running for it. */
export async function deleteTenant(services: Services, principal: Principal, id: string): Promise<void> {
  if (id === principal.tenantId) throw conflict('You cannot delete your own tenant');
  await transact(services, async (tx) => {
    await findTenant(tx, null, id);
    const [running] = await tx
      .select({ n: count() })
      .from(flows)
      .where(and(eq(flows.tenantId, id), ne(flows.status, 'inactive')));
    if (running!.n > 0) throw conflict(`Tenant ${id} has ${running!.n} flows that are not inactive: stop them first`);
    await tx.delete(tenants).where(eq(tenants.id, id));
    await emit(tx, SERVICE_NAME, 'iam.tenant.deleted', { id, tenant: id, user: principal.userId });
  });
}
