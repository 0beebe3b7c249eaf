import { and, asc, count, eq, ilike, inArray, isNull, or, type SQL } from 'drizzle-orm';
import { emit } from '../bus/outbox.js';
import { escapeLike, isUniqueViolation, type Database } from '../db/index.js';
import { permissionScope } from '../http/auth.js';
import { badRequest, conflict, forbidden, notFound } from '../http/errors.js';
import { transact, type Services } from '../services.js';
import { checkPasswordAttempt } from './password-attempts.js';
import { passwordWeakness } from './password-policy.js';
import { hashPassword } from './passwords.js';
import { roles, tenants, tokens, userRoles, users } from './schema.js';
import { assertNotOutranked, checkGrantable, resolveRoles, SERVICE_NAME } from './service.js';
import type { Principal } from './tokens.js';

export interface Account {
  id: string;
  username: string;
  kind: 'person' | 'service';
  firstname: string | null;
  lastname: string | null;
  status: 'active' | 'disabled';
  tenant: string | null;
  roles: string[];
  permissions: string[];
  lastLoginAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AccountCreate {
  username: string;
  kind: 'person' | 'service';
  password?: string;
  firstname?: string;
  lastname?: string;
  /** A tenant's id; null (admins only) for an account of no tenant, such as a platform-wide runner's. */
  tenant?: string | null;
  roles: string[];
  permissions: string[];
}

export type AccountPatch = Partial<Pick<AccountCreate, 'username' | 'password' | 'firstname' | 'lastname' | 'roles' | 'permissions'>> & {
  status?: Account['status'];
  /** Required to change one's own password; refused otherwise. */
  currentPassword?: string;
};

type UserRow = typeof users.$inferSelect;

async function toAccounts(db: Database, rows: UserRow[]): Promise<Account[]> {
  const ids = rows.map((row) => row.id);
  const held = ids.length
    ? await db
        .select({ userId: userRoles.userId, name: roles.name })
        .from(userRoles)
        .innerJoin(roles, eq(roles.id, userRoles.roleId))
        .where(inArray(userRoles.userId, ids))
    : [];
  return rows.map((row) => ({
    id: row.id,
    username: row.username,
    kind: row.kind,
    firstname: row.firstname,
    lastname: row.lastname,
    status: row.status,
    tenant: row.tenantId,
    roles: held
      .filter((r) => r.userId === row.id)
      .map((r) => r.name)
      .sort(),
    permissions: row.permissions,
    lastLoginAt: row.lastLoginAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  }));
}

const toAccount = async (db: Database, row: UserRow) => (await toAccounts(db, [row]))[0]!;

/** A 400 unless `password` is strong enough for the account named. */
async function assertStrongPassword(
  password: string,
  account: { username: string; firstname?: string | null; lastname?: string | null },
): Promise<void> {
  const weakness = await passwordWeakness(password, [account.username, account.firstname, account.lastname]);
  if (weakness) throw badRequest(`password: ${weakness}`);
}

/**
 * Changing one's own password needs the current one, checked like a login (it counts towards the
 * lock), so a stolen session can neither take the account over nor guess its password freely.
 */
async function confirmCurrentPassword(services: Services, principal: Principal, patch: AccountPatch): Promise<void> {
  if (patch.currentPassword === undefined) throw badRequest('currentPassword: give your current password to set a new one');
  const [user] = await services.db.select().from(users).where(eq(users.id, principal.userId));
  if (!user?.passwordHash) throw badRequest('password: service accounts have no password; they use tokens');
  const right = await checkPasswordAttempt(
    services,
    { id: user.id, tenantId: user.tenantId, passwordHash: user.passwordHash },
    patch.currentPassword,
  );
  if (!right) throw forbidden('currentPassword is wrong');
}

const inScope = (scope: string | null, ...more: (SQL | undefined)[]) =>
  and(scope === null ? undefined : eq(users.tenantId, scope), ...more);

async function findAccount(db: Database, scope: string | null, id: string): Promise<UserRow> {
  const [row] = await db
    .select()
    .from(users)
    .where(inScope(scope, eq(users.id, id)));
  if (!row) throw notFound(`No user ${id} that you may see`);
  return row;
}

export async function listAccounts(
  db: Database,
  principal: Principal,
  query: { tenant?: string; search?: string; limit: number; offset: number },
): Promise<{ users: Account[]; total: number }> {
  const scope = permissionScope(principal, 'iam.account.read', 'tenant.account.read');
  const search = query.search?.trim();
  const pattern = search ? `%${escapeLike(search)}%` : undefined;
  const where = inScope(
    scope,
    query.tenant ? eq(users.tenantId, query.tenant) : undefined,
    pattern ? or(ilike(users.username, pattern), ilike(users.firstname, pattern), ilike(users.lastname, pattern)) : undefined,
  );
  const [rows, [counted]] = await Promise.all([
    db.select().from(users).where(where).orderBy(asc(users.username)).limit(query.limit).offset(query.offset),
    db.select({ total: count() }).from(users).where(where),
  ]);
  return { users: await toAccounts(db, rows), total: counted?.total ?? 0 };
}

export async function getAccount(db: Database, principal: Principal, id: string): Promise<Account> {
  const scope = id === principal.userId ? null : permissionScope(principal, 'iam.account.read', 'tenant.account.read');
  return toAccount(db, await findAccount(db, scope, id));
}

export async function createAccount(services: Services, principal: Principal, input: AccountCreate): Promise<Account> {
  const scope = permissionScope(principal, 'iam.account.create', 'tenant.account.create');
  if (scope !== null && input.tenant !== undefined && input.tenant !== scope)
    throw forbidden(input.tenant === null ? 'Only admins create accounts of no tenant' : 'You may create users in your own tenant only');
  // Admins name the tenant, or null for none: falling back to their own would quietly put users beside the first admin.
  if (scope === null && input.tenant === undefined)
    throw badRequest('tenant: name the tenant the user belongs to (null for an account of no tenant, such as a platform-wide runner)');
  const tenantId = scope ?? input.tenant ?? null;
  if (input.kind === 'person' && !input.password) throw badRequest('password: a person needs a password (at least 12 characters)');
  if (input.kind === 'service' && input.password)
    throw badRequest('password: service accounts have no password; they use tokens (POST /api/v1/tokens)');
  if (input.password) await assertStrongPassword(input.password, input);
  checkGrantable(principal, input.permissions);

  return transact(services, async (tx) => {
    if (tenantId !== null) {
      const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
      if (!tenant) throw badRequest(`tenant: no tenant ${tenantId}`);
    }
    const assigned = await resolveRoles(tx, principal, input.roles, tenantId);
    const [row] = await tx
      .insert(users)
      .values({
        username: input.username.toLowerCase(),
        kind: input.kind,
        passwordHash: input.password ? await hashPassword(input.password) : null,
        firstname: input.firstname,
        lastname: input.lastname,
        tenantId,
        permissions: input.permissions,
      })
      .onConflictDoNothing()
      .returning();
    if (!row) throw conflict(`A user named ${input.username.toLowerCase()} exists already`);
    if (assigned.length > 0) await tx.insert(userRoles).values(assigned.map((role) => ({ userId: row.id, roleId: role.id })));
    await emit(tx, SERVICE_NAME, 'iam.user.created', { id: row.id, tenant: tenantId, user: principal.userId });
    return toAccount(tx, row);
  });
}

/**
 * Changes an account. Everyone may change their own names, and their password by giving the current
 * one; the rest needs the account permissions, and nothing may be granted that the caller lacks.
 * A new password or a disabled account ends the account's login sessions.
 */
export async function updateAccount(services: Services, principal: Principal, id: string, patch: AccountPatch): Promise<Account> {
  const self = id === principal.userId;
  const onlyOwnProfile =
    self && patch.status === undefined && patch.roles === undefined && patch.permissions === undefined && patch.username === undefined;
  const scope = onlyOwnProfile ? null : permissionScope(principal, 'iam.account.update', 'tenant.account.update');
  if (self && patch.status === 'disabled') throw conflict('You cannot disable your own account');
  if (patch.currentPassword !== undefined && !(self && patch.password))
    throw badRequest('currentPassword: give it only with password, to change your own');
  if (patch.permissions) checkGrantable(principal, patch.permissions);
  if (self && patch.password) await confirmCurrentPassword(services, principal, patch);

  return transact(services, async (tx) => {
    const row = await findAccount(tx, scope, id);
    if (!self) await assertNotOutranked(tx, principal, row, 'change');
    if (patch.password && row.kind === 'service') throw badRequest('password: service accounts have no password; they use tokens');
    if (patch.password) {
      await assertStrongPassword(patch.password, {
        username: patch.username ?? row.username,
        firstname: patch.firstname ?? row.firstname,
        lastname: patch.lastname ?? row.lastname,
      });
    }
    const assigned = patch.roles ? await resolveRoles(tx, principal, patch.roles, row.tenantId) : null;
    const changes: Partial<typeof users.$inferInsert> = {
      username: patch.username?.toLowerCase(),
      firstname: patch.firstname,
      lastname: patch.lastname,
      status: patch.status,
      permissions: patch.permissions,
      passwordHash: patch.password ? await hashPassword(patch.password) : undefined,
      updatedAt: new Date(),
    };
    if (patch.status === 'active') Object.assign(changes, { failedLogins: 0, lockedUntil: null });
    const [updated] = await tx
      .update(users)
      .set(changes)
      .where(eq(users.id, id))
      .returning()
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? conflict(`A user named ${patch.username?.toLowerCase()} exists already`) : error;
      });
    if (assigned) {
      await tx.delete(userRoles).where(eq(userRoles.userId, id));
      if (assigned.length > 0) await tx.insert(userRoles).values(assigned.map((role) => ({ userId: id, roleId: role.id })));
    }
    if (patch.password || patch.status === 'disabled') {
      await tx
        .update(tokens)
        .set({ revokedAt: new Date() })
        .where(and(eq(tokens.userId, id), eq(tokens.kind, 'session'), isNull(tokens.revokedAt)));
    }
    await emit(tx, SERVICE_NAME, 'iam.user.modified', { id, tenant: row.tenantId, user: principal.userId });
    return toAccount(tx, updated!);
  });
}

export async function deleteAccount(services: Services, principal: Principal, id: string): Promise<void> {
  if (id === principal.userId) throw conflict('You cannot delete your own account');
  const scope = permissionScope(principal, 'iam.account.delete', 'tenant.account.delete');
  await transact(services, async (tx) => {
    const row = await findAccount(tx, scope, id);
    await assertNotOutranked(tx, principal, row, 'delete');
    await tx.delete(users).where(eq(users.id, id));
    await emit(tx, SERVICE_NAME, 'iam.user.deleted', { id, tenant: row.tenantId, user: principal.userId });
  });
}
