import { and, eq, inArray, isNull, or } from 'drizzle-orm';
import { isCommonPermission, isPermission } from '../../protocol/permissions.js';
import { isUuid, type Database } from '../db/index.js';
import { badRequest, forbidden } from '../http/errors.js';
import { roles, userRoles, users } from './schema.js';
import type { Principal } from './tokens.js';

/** The name IAM emits its events under. */
export const SERVICE_NAME = 'iam';

/** The restricted permissions (`all`, `iam.*`...) in a list: only holders of `all` may grant them. */
export const restrictedAmong = (permissions: Iterable<string>) => [...new Set(permissions)].filter((p) => !isCommonPermission(p)).sort();

/** Every permission an account holds, directly and through its roles. */
export async function permissionsOf(db: Database, userId: string): Promise<string[]> {
  const [user] = await db.select({ permissions: users.permissions }).from(users).where(eq(users.id, userId));
  const held = await db
    .select({ permissions: roles.permissions })
    .from(userRoles)
    .innerJoin(roles, eq(roles.id, userRoles.roleId))
    .where(eq(userRoles.userId, userId));
  return [...(user?.permissions ?? []), ...held.flatMap((r) => r.permissions)];
}

/**
 * A caller without `all` may not act on an account that holds restricted permissions (such as the
 * first admin in tenant `default`): a tenant admin must never outrank themselves through it.
 */
export async function assertNotOutranked(db: Database, principal: Principal, account: { id: string; username: string }, action: string): Promise<void> {
  if (principal.isAdmin) return;
  const restricted = restrictedAmong(await permissionsOf(db, account.id));
  if (restricted.length > 0) throw forbidden(`Account ${account.username} holds restricted permissions (${restricted.join(', ')}); only an admin may ${action} it`);
}

/** Checks permission names a caller wants to grant: each must exist, and restricted ones need `all`. */
export function checkGrantable(principal: Principal, permissions: string[]): void {
  const unknown = permissions.filter((p) => !isPermission(p));
  if (unknown.length > 0) throw badRequest(`Unknown permissions: ${unknown.join(', ')} (GET /api/v1/permissions lists them)`);
  const restricted = restrictedAmong(permissions);
  if (restricted.length > 0 && !principal.isAdmin) throw forbidden(`Only an admin may grant restricted permissions: ${restricted.join(', ')}`);
}

/**
 * The roles named (by name or id), among the global ones and those of `tenantId`, which the caller
 * may assign: an unknown one is a 400, a role with restricted permissions a 403 for callers without `all`.
 */
export async function resolveRoles(db: Database, principal: Principal, refs: string[], tenantId: string | null): Promise<{ id: string; name: string }[]> {
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
  if (!principal.isAdmin) {
    const outranking = found.filter((role) => restrictedAmong(role.permissions).length > 0).map((role) => role.name);
    if (outranking.length > 0) throw forbidden(`Only an admin may assign roles with restricted permissions: ${outranking.join(', ')}`);
  }
  // Names are unique among the global roles and a tenant's together (roles.service.ts), and a role
  // named twice (by name and id) is found once.
  return found.map((role) => ({ id: role.id, name: role.name }));
}
