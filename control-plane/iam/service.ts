import { and, eq, inArray, isNull, or, sql, type SQLWrapper } from 'drizzle-orm';
import { isPermission, lacking } from '../../protocol/permissions.js';
import { isUuid, type Database } from '../db/index.js';
import { badRequest, forbidden } from '../http/errors.js';
import { roles, userRoles, users } from './schema.js';
import type { Principal } from './tokens.js';

/** The name IAM emits its events under. */
export const SERVICE_NAME = 'iam';

/**
 * Every permission the accounts hold, directly and through their roles: `accounts` is a list of
 * user ids or a subquery selecting them (such as the holders of a role).
 */
export async function permissionsOf(db: Database, accounts: string[] | SQLWrapper): Promise<string[]> {
  const direct = db
    .selectDistinct({ permission: sql<string>`unnest(${users.permissions})` })
    .from(users)
    .where(inArray(users.id, accounts));
  const throughRoles = db
    .selectDistinct({ permission: sql<string>`unnest(${roles.permissions})` })
    .from(userRoles)
    .innerJoin(roles, eq(roles.id, userRoles.roleId))
    .where(inArray(userRoles.userId, accounts));
  const [own, held] = await Promise.all([direct, throughRoles]);
  return [...own, ...held].map((row) => row.permission);
}

/**
 * Nobody may act on an account that holds a permission they lack (change it, delete it, mint its
 * tokens): whoever controls an account has what it holds, so that would be a way up.
 */
export async function assertNotOutranked(
  db: Database,
  principal: Principal,
  account: { id: string; username: string },
  action: string,
): Promise<void> {
  const missing = lacking(principal.permissions, await permissionsOf(db, [account.id]));
  if (missing.length > 0)
    throw forbidden(`Account ${account.username} holds permissions you lack (${missing.join(', ')}), so you may not ${action} it`);
}

/** Checks permission names a caller wants to grant (to anyone, a role or themselves): each must exist, and the caller must hold it. */
export function checkGrantable(principal: Principal, permissions: string[]): void {
  const unknown = permissions.filter((p) => !isPermission(p));
  if (unknown.length > 0) throw badRequest(`Unknown permissions: ${unknown.join(', ')} (GET /api/v1/permissions lists them)`);
  const missing = lacking(principal.permissions, permissions);
  if (missing.length > 0) throw forbidden(`You may grant only permissions you hold; you lack ${missing.join(', ')}`);
}

/**
 * The roles named (by name or id), among the global ones and those of `tenantId`, which the caller
 * may assign: an unknown one is a 400, a role holding a permission the caller lacks a 403.
 */
export async function resolveRoles(
  db: Database,
  principal: Principal,
  refs: string[],
  tenantId: string | null,
): Promise<{ id: string; name: string }[]> {
  const wanted = [...new Set(refs)];
  if (wanted.length === 0) return [];
  const ids = wanted.filter(isUuid).map((id) => id.toLowerCase());
  const found = await db
    .select({ id: roles.id, name: roles.name, permissions: roles.permissions })
    .from(roles)
    .where(
      and(
        ids.length > 0 ? or(inArray(roles.name, wanted), inArray(roles.id, ids)) : inArray(roles.name, wanted),
        tenantId ? or(isNull(roles.tenantId), eq(roles.tenantId, tenantId)) : isNull(roles.tenantId),
      ),
    );
  const missing = wanted.filter((ref) => !found.some((role) => role.name === ref || role.id === ref.toLowerCase()));
  if (missing.length > 0) throw badRequest(`Unknown roles: ${missing.join(', ')} (GET /api/v1/roles lists them)`);
  const outranking = found.flatMap((role) => {
    const lacked = lacking(principal.permissions, role.permissions);
    return lacked.length > 0 ? [`${role.name} (you lack ${lacked.join(', ')})`] : [];
  });
  if (outranking.length > 0) throw forbidden(`You may assign only roles whose permissions you hold: ${outranking.join('; ')}`);
  // Names are unique among the global roles and a tenant's together (roles.service.ts), and a role
  // named twice (by name and id) is found once.
  return found.map((role) => ({ id: role.id, name: role.name }));
}
