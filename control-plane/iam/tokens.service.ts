import { and, count, desc, eq, type SQL } from 'drizzle-orm';
import { emit } from '../bus/outbox.js';
import type { Database } from '../db/index.js';
import { permissionScope } from '../http/auth.js';
import { ApiError, badRequest, notFound } from '../http/errors.js';
import { transact, type Services } from '../services.js';
import { assertNotOutranked, SERVICE_NAME } from './service.js';
import type { Principal } from './tokens.js';
import { tokens, users } from './schema.js';

export interface ServiceToken {
  id: string;
  accountId: string;
  username: string;
  tenant: string | null;
  description: string | null;
  createdBy: string | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

const columns = {
  id: tokens.id,
  accountId: tokens.userId,
  username: users.username,
  tenant: users.tenantId,
  description: tokens.description,
  createdBy: tokens.createdBy,
  createdAt: tokens.createdAt,
  expiresAt: tokens.expiresAt,
  revokedAt: tokens.revokedAt,
};
type Row = Omit<ServiceToken, 'createdAt' | 'expiresAt' | 'revokedAt'> & {
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
};

const toToken = (row: Row): ServiceToken => ({
  ...row,
  createdAt: row.createdAt.toISOString(),
  expiresAt: row.expiresAt?.toISOString() ?? null,
  revokedAt: row.revokedAt?.toISOString() ?? null,
});

const visible = (scope: string | null, ...more: (SQL | undefined)[]) =>
  and(eq(tokens.kind, 'service'), scope === null ? undefined : eq(users.tenantId, scope), ...more);

/**
 * Mints a permanent token for a service account: tenant admins for their own tenant's accounts, and
 * nobody for an account holding a permission they lack, so a token never outranks its minter.
 */
export async function createServiceToken(
  services: Services,
  principal: Principal,
  input: { accountId: string; description?: string; expiresAt?: Date },
): Promise<ServiceToken & { token: string }> {
  const scope = permissionScope(principal, 'iam.token.create', 'tenant.token.create');
  const [account] = await services.db.select().from(users).where(eq(users.id, input.accountId));
  if (!account || (scope !== null && account.tenantId !== scope)) throw notFound(`No account ${input.accountId} that you may see`);
  if (account.kind !== 'service')
    throw badRequest(`Account ${account.username} is a person, who logs in with POST /login; tokens are for service accounts`);
  if (account.status !== 'active') throw badRequest(`Account ${account.username} is disabled`);
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) throw badRequest('expiresAt must be in the future');
  await assertNotOutranked(services.db, principal, account, 'mint tokens for');

  return transact(services, async (tx) => {
    const { id, token } = await services.tokens.issueServiceToken(tx, {
      userId: account.id,
      description: input.description,
      createdBy: principal.userId,
      expiresAt: input.expiresAt ?? null,
    });
    await emit(tx, SERVICE_NAME, 'iam.token.created', { id, tenant: account.tenantId, user: principal.userId, accountId: account.id });
    return { ...(await readToken(tx, null, id)), token };
  });
}

export async function listServiceTokens(
  db: Database,
  principal: Principal,
  query: { accountId?: string; limit: number; offset: number },
): Promise<{ tokens: ServiceToken[]; total: number }> {
  const scope = permissionScope(principal, 'iam.token.read', 'tenant.token.read');
  const where = visible(scope, query.accountId ? eq(tokens.userId, query.accountId) : undefined);
  const [rows, [counted]] = await Promise.all([
    db
      .select(columns)
      .from(tokens)
      .innerJoin(users, eq(users.id, tokens.userId))
      .where(where)
      .orderBy(desc(tokens.createdAt), desc(tokens.id))
      .limit(query.limit)
      .offset(query.offset),
    db.select({ total: count() }).from(tokens).innerJoin(users, eq(users.id, tokens.userId)).where(where),
  ]);
  return { tokens: rows.map(toToken), total: counted?.total ?? 0 };
}

export async function getServiceToken(db: Database, principal: Principal, id: string): Promise<ServiceToken> {
  return readToken(db, permissionScope(principal, 'iam.token.read', 'tenant.token.read'), id);
}

/** Revokes a service token at once (every request checks it). Revoking a revoked token changes nothing. */
export async function revokeServiceToken(services: Services, principal: Principal, id: string): Promise<void> {
  const scope = permissionScope(principal, 'iam.token.delete', 'tenant.token.delete');
  await transact(services, async (tx) => {
    const token = await readToken(tx, scope, id);
    if (token.revokedAt) return;
    await services.tokens.revoke(tx, id);
    await emit(tx, SERVICE_NAME, 'iam.token.deleted', { id, tenant: token.tenant, user: principal.userId, accountId: token.accountId });
  });
}

async function readToken(db: Database, scope: string | null, id: string): Promise<ServiceToken> {
  const [row] = await db
    .select(columns)
    .from(tokens)
    .innerJoin(users, eq(users.id, tokens.userId))
    .where(visible(scope, eq(tokens.id, id)));
  if (!row) throw notFound(`No service token ${id} that you may see`);
  return toToken(row);
}

/** RFC 7662 in spirit: who a token stands for, or only `active: false` for any token that does not authenticate. */
export async function introspect(services: Services, token: string) {
  try {
    const principal = await services.tokens.authenticate(token);
    return {
      active: true as const,
      tokenId: principal.tokenId,
      tokenKind: principal.tokenKind,
      step: principal.step,
      user: { id: principal.userId, username: principal.username },
      tenant: principal.tenantId,
      roles: principal.roles,
      permissions: [...principal.permissions].sort(),
      expiresAt: principal.expiresAt?.toISOString() ?? null,
    };
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return { active: false as const };
    throw error;
  }
}
