import { randomUUID } from 'node:crypto';
import { and, inArray, isNull } from 'drizzle-orm';
import { hashPassword } from '../../control-plane/iam/passwords.js';
import { roles, tenants, userRoles, users } from '../../control-plane/iam/schema.js';
import type { TestControlPlane } from './control-plane.js';

export interface TestUser {
  id: string;
  username: string;
  password: string;
  tenantId: string;
  /** A session token from POST /login. */
  token: string;
}

/** A tenant with a name unique to this run, written straight to the database. */
export async function createTenant(
  cp: TestControlPlane,
  name = `tenant-${randomUUID().slice(0, 8)}`,
): Promise<{ id: string; name: string }> {
  const [tenant] = await cp.services.db.insert(tenants).values({ name }).returning({ id: tenants.id, name: tenants.name });
  return tenant!;
}

/**
 * A user of `tenantId` with global system roles (TENANT_ADMIN, TENANT_GUEST, USER...) and direct
 * permissions, written straight to the database, then logged in through POST /login.
 */
export async function createUser(
  cp: TestControlPlane,
  options: { tenantId: string; roles?: string[]; permissions?: string[] },
): Promise<TestUser> {
  const username = `user-${randomUUID().slice(0, 8)}@hookline.test`;
  const password = `password-${randomUUID()}`;
  const { db } = cp.services;
  const [user] = await db
    .insert(users)
    .values({ username, passwordHash: await hashPassword(password), tenantId: options.tenantId, permissions: options.permissions ?? [] })
    .returning({ id: users.id });
  const wanted = options.roles ?? [];
  if (wanted.length > 0) {
    const found = await db
      .select({ id: roles.id, name: roles.name })
      .from(roles)
      .where(and(inArray(roles.name, wanted), isNull(roles.tenantId)));
    if (found.length !== wanted.length) throw new Error(`unknown system roles among ${wanted.join(', ')}`);
    await db.insert(userRoles).values(found.map((role) => ({ userId: user!.id, roleId: role.id })));
  }
  return { id: user!.id, username, password, tenantId: options.tenantId, token: await cp.login(username, password) };
}

/** A service account of `tenantId` with global system roles and direct permissions, written straight to the database. */
export async function createServiceAccount(
  cp: TestControlPlane,
  tenantId: string | null,
  options: { roles?: string[]; permissions?: string[] } = {},
) {
  const { db } = cp.services;
  const [account] = await db
    .insert(users)
    .values({
      username: `svc-${randomUUID().slice(0, 8)}@hookline.test`,
      kind: 'service',
      tenantId,
      permissions: options.permissions ?? [],
    })
    .returning();
  if (options.roles?.length) {
    const found = await db
      .select()
      .from(roles)
      .where(and(inArray(roles.name, options.roles), isNull(roles.tenantId)));
    await db.insert(userRoles).values(found.map((role) => ({ userId: account!.id, roleId: role.id })));
  }
  return account!;
}

/** A new tenant and one user of it with the given roles. */
export async function createTenantWithUser(cp: TestControlPlane, roleNames: string[] = ['TENANT_ADMIN']): Promise<TestUser> {
  const tenant = await createTenant(cp);
  return createUser(cp, { tenantId: tenant.id, roles: roleNames });
}
