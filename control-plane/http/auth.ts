import type { MiddlewareHandler } from 'hono';
import { grants, type Permission } from '../../protocol/permissions.js';
import type { Principal } from '../iam/tokens.js';
import type { Services } from '../services.js';
import { forbidden, unauthorized } from './errors.js';

export type AppEnv = { Variables: { principal: Principal; services: Services; requestId: string } };

/**
 * The one auth middleware of every protected route: a valid bearer token, then every permission named.
 * Use as `middleware: guard('flows.read')` in a route definition.
 */
export function guard(...needed: Permission[]): MiddlewareHandler<AppEnv>[] {
  return guardWith(false, needed);
}

/**
 * For the one route step tokens may call: step tokens pass (the route checks their scope), every
 * other token needs the permissions named.
 */
export function guardAllowingSteps(...needed: Permission[]): MiddlewareHandler<AppEnv>[] {
  return guardWith(true, needed);
}

function guardWith(allowStepTokens: boolean, needed: Permission[]): MiddlewareHandler<AppEnv>[] {
  const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) throw unauthorized('Missing bearer token: send Authorization: Bearer <token>');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('Malformed Authorization header: expected Bearer <token>');
    const principal = await c.get('services').tokens.authenticate(match[1]!);
    if (principal.step && !allowStepTokens)
      throw forbidden('A step token may only read the credential of its step (GET /api/v1/secrets/{id})');
    c.set('principal', principal);
    await next();
  };
  const authorize: MiddlewareHandler<AppEnv> = async (c, next) => {
    const principal = c.get('principal');
    if (principal.step) return next();
    const missing = needed.filter((permission) => !grants(principal.permissions, permission));
    if (missing.length > 0) throw forbidden(`Missing permission: ${missing.join(', ')}`);
    await next();
  };
  return needed.length > 0 ? [authenticate, authorize] : [authenticate];
}

/** The tenant a caller's queries are confined to; null for holders of `all`, who see every tenant. */
export function tenantScope(principal: Principal): string | null {
  if (principal.isAdmin) return null;
  if (!principal.tenantId) throw forbidden('Your account belongs to no tenant');
  return principal.tenantId;
}

/**
 * Where a caller may act on IAM resources: everywhere (null) with the global permission, in their
 * own tenant with the tenant permission, else a 403 naming both.
 */
export function permissionScope(principal: Principal, global: Permission, tenant: Permission): string | null {
  if (grants(principal.permissions, global)) return null;
  if (grants(principal.permissions, tenant) && principal.tenantId) return principal.tenantId;
  throw forbidden(`Missing permission: ${global} or ${tenant}`);
}
