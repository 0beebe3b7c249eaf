import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { and, count, desc, eq, inArray, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import { grants } from '../../protocol/permissions.js';
import { maskSecretValue, secretValueSchemas, type SecretType, type SecretValue } from '../../protocol/secrets.js';
import { emit } from '../bus/outbox.js';
import { isUuid, type Database } from '../db/index.js';
import { tenantScope } from '../http/auth.js';
import { ApiError, badRequest, conflict, describeIssue, forbidden, notFound } from '../http/errors.js';
import { flows } from '../flows/schema.js';
import { users } from '../iam/schema.js';
import type { Principal } from '../iam/tokens.js';
import { transact, type Services } from '../services.js';
import { open, seal } from './crypto.js';
import { OAuthError, refreshTokens } from './oauth2.js';
import { authClients, secrets } from './schema.js';
import type { Owner } from '../../protocol/flow.js';

export const SERVICE_NAME = 'secrets';

/** An OAuth2 access token this close to its expiry is refreshed when the secret is read. */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
/** How long a reader may hold the refresh lock before another may take it over. */
const REFRESH_LOCK_MS = 15_000;

type SecretRow = typeof secrets.$inferSelect;

export interface Secret {
  id: string;
  name: string;
  type: SecretType;
  tenant: string;
  owners: Owner[];
  value: Record<string, unknown>;
  /** Whether `value` is the real one (the caller holds secrets.secret.readRaw) or masked. */
  raw: boolean;
  authClientId: string | null;
  expiresAt: string | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

const context = (id: string) => `secret:${id}`;

/** Seals a value with its tenant's data key; the row id is bound in, so the ciphertext is useless elsewhere. */
async function sealValue(services: Services, db: Database, tenantId: string, id: string, value: unknown): Promise<string> {
  return seal(await services.keys.dataKey(db, tenantId), Buffer.from(JSON.stringify(value), 'utf8'), context(id));
}

/** An auth client's secret, sealed with its tenant's data key and its row id bound in. */
export async function sealClientSecret(
  services: Services,
  db: Database,
  client: { id: string; tenantId: string },
  secret: string,
): Promise<string> {
  return seal(await services.keys.dataKey(db, client.tenantId), Buffer.from(secret, 'utf8'), `auth-client:${client.id}`);
}

export async function openClientSecret(
  services: Services,
  client: { id: string; tenantId: string; clientSecret: string },
): Promise<string> {
  return open(await services.keys.dataKey(services.db, client.tenantId), client.clientSecret, `auth-client:${client.id}`).toString('utf8');
}

async function openValue(
  services: Services,
  db: Database,
  row: { id: string; tenantId: string; value: string },
): Promise<Record<string, unknown>> {
  return JSON.parse(open(await services.keys.dataKey(db, row.tenantId), row.value, context(row.id)).toString('utf8'));
}

/** Checks a value against its type's schema: one 400 message per broken rule. */
function checkValue(type: SecretType, value: unknown): SecretValue {
  const parsed = secretValueSchemas[type].safeParse(value);
  if (!parsed.success)
    throw new ApiError(
      400,
      parsed.error.issues.map((issue) => describeIssue({ ...issue, path: ['value', ...issue.path] }, 'value')).join('; '),
      'validation_error',
    );
  return parsed.data;
}

/** A secret is visible to its user owners and, when shared with the tenant, to the tenant's members; holders of `all` see every one. */
function visible(principal: Principal, ...more: (SQL | undefined)[]): SQL | undefined {
  const scope = tenantScope(principal);
  if (scope === null) return and(...more);
  const ownedBy = (owner: Owner) => sql`${secrets.owners} @> ${JSON.stringify([owner])}::jsonb`;
  return and(
    eq(secrets.tenantId, scope),
    or(ownedBy({ id: principal.userId, type: 'user' }), ownedBy({ id: scope, type: 'tenant' })),
    ...more,
  );
}

async function findSecret(db: Database, principal: Principal, id: string): Promise<SecretRow> {
  const [row] = await db
    .select()
    .from(secrets)
    .where(visible(principal, eq(secrets.id, id)));
  if (!row) throw notFound(`No secret ${id} that you may see`);
  return row;
}

/** Who a flow's steps read secrets as: the user who saves or starts it (a step token acts for the user who started it). */
export type FlowUser = { userId: string; tenantId: string | null };

/**
 * Whether a step of a flow of `tenantId` may read `row` for `user`: the user owns it, or it is
 * shared with the tenant they and the flow belong to. Permissions lend nothing here (not even
 * `all`): a step carries a secret wherever its flow sends it, so it reads only what is the user's own.
 */
const readableForFlow = (row: SecretRow, user: FlowUser, tenantId: string) =>
  row.tenantId === tenantId &&
  row.owners.some(
    (owner) =>
      (owner.type === 'user' && owner.id === user.userId) ||
      (owner.type === 'tenant' && owner.id === tenantId && user.tenantId === tenantId),
  );

/**
 * Which of `ids` `user` may not have a flow of `tenantId` use, unknown ones alike (so nobody
 * learns whether another user's secret exists).
 */
export async function unreadableSecrets(db: Database, user: FlowUser, tenantId: string, ids: string[]): Promise<Set<string>> {
  const known = [...new Set(ids.filter(isUuid))];
  const rows =
    known.length > 0
      ? await db
          .select()
          .from(secrets)
          .where(and(eq(secrets.tenantId, tenantId), inArray(secrets.id, known)))
      : [];
  const readable = new Set(rows.filter((row) => readableForFlow(row, user, tenantId)).map((row) => row.id));
  return new Set(ids.filter((id) => !readable.has(id)));
}

/**
 * A step token reads exactly the credential its step names (`credentials_id`), in its flow's
 * tenant, and only while the user it acts for may still read it.
 */
async function findStepCredential(
  db: Database,
  principal: Principal,
  step: { flowId: string; stepId: string },
  id: string,
): Promise<SecretRow> {
  const [flow] = await db.select({ graph: flows.graph, tenantId: flows.tenantId }).from(flows).where(eq(flows.id, step.flowId));
  const node = flow?.graph.nodes.find((n) => n.id === step.stepId);
  if (!flow || node?.credentials_id !== id) throw forbidden(`This step token may read only the credential of step ${step.stepId}`);
  const [row] = await db
    .select()
    .from(secrets)
    .where(and(eq(secrets.id, id), eq(secrets.tenantId, flow.tenantId)));
  if (!row || !readableForFlow(row, principal, flow.tenantId)) {
    throw forbidden(
      `The user this step acts for (who started the flow) may not read secret ${id}: a step reads only secrets that user owns or the tenant shares`,
    );
  }
  return row;
}

async function present(services: Services, row: SecretRow, raw: boolean): Promise<Secret> {
  const value = await openValue(services, services.db, row);
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    tenant: row.tenantId,
    owners: row.owners,
    value: raw ? value : maskSecretValue(row.type, value),
    raw,
    authClientId: row.authClientId,
    expiresAt: row.expiresAt?.toISOString() ?? null,
    lastError: row.lastError,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export async function listSecrets(
  services: Services,
  principal: Principal,
  query: { type?: SecretType; limit: number; offset: number },
): Promise<{ secrets: Secret[]; total: number }> {
  const where = visible(principal, query.type ? eq(secrets.type, query.type) : undefined);
  const [rows, [counted]] = await Promise.all([
    services.db
      .select()
      .from(secrets)
      .where(where)
      .orderBy(desc(secrets.createdAt), desc(secrets.id))
      .limit(query.limit)
      .offset(query.offset),
    services.db.select({ total: count() }).from(secrets).where(where),
  ]);
  return { secrets: await Promise.all(rows.map((row) => present(services, row, false))), total: counted?.total ?? 0 };
}

/**
 * One secret: refreshed first when it is an OAuth2 token about to expire, and unmasked for holders
 * of secrets.secret.readRaw, each such read recorded in the audit log.
 */
export async function readSecret(services: Services, principal: Principal, id: string): Promise<Secret> {
  const found = principal.step
    ? await findStepCredential(services.db, principal, principal.step, id)
    : await findSecret(services.db, principal, id);
  const row = await refreshIfDue(services, found);
  const raw = principal.step !== null || grants(principal.permissions, 'secrets.secret.readRaw');
  if (raw) {
    await transact(services, async (tx) => {
      await emit(tx, SERVICE_NAME, 'secrets.secret.rawRead', { id, tenant: row.tenantId, user: principal.userId });
    });
  }
  return present(services, row, raw);
}

export interface SecretCreate {
  name: string;
  type: SecretType;
  value: unknown;
  /** Share with every member of the caller's tenant. */
  shared?: boolean;
  authClientId?: string;
}

/** Creates a secret owned by `actor` (the caller, or the user who started an OAuth2 flow) in their tenant. */
export async function createSecret(
  services: Services,
  actor: { userId: string; tenantId: string | null },
  input: SecretCreate,
): Promise<Secret> {
  const { tenantId } = actor;
  if (!tenantId) throw forbidden('Your account belongs to no tenant; secrets belong to a tenant');
  const value = checkValue(input.type, input.value);
  const owners: Owner[] = [{ id: actor.userId, type: 'user' }, ...(input.shared ? [{ id: tenantId, type: 'tenant' } as const] : [])];
  const id = randomUUID();
  const row = await transact(services, async (tx) => {
    if (input.authClientId) await requireAuthClient(tx, tenantId, input.authClientId);
    const [created] = await tx
      .insert(secrets)
      .values({
        id,
        tenantId,
        owners,
        name: input.name,
        type: input.type,
        value: await sealValue(services, tx, tenantId, id, value),
        authClientId: input.authClientId,
        expiresAt:
          input.type === 'OAUTH2' && (value as SecretValue<'OAUTH2'>).expiresAt
            ? new Date((value as SecretValue<'OAUTH2'>).expiresAt!)
            : null,
      })
      .returning();
    await emit(tx, SERVICE_NAME, 'secrets.secret.created', { id, tenant: tenantId, user: actor.userId });
    return created!;
  });
  return present(services, row, false);
}

async function requireAuthClient(db: Database, tenantId: string, id: string): Promise<void> {
  const [client] = await db
    .select({ id: authClients.id })
    .from(authClients)
    .where(and(eq(authClients.id, id), eq(authClients.tenantId, tenantId)));
  if (!client) throw badRequest(`authClientId: no auth client ${id} in your tenant`);
}

/** Renames a secret, replaces its value, or shares or unshares it with the tenant. */
export async function updateSecret(
  services: Services,
  principal: Principal,
  id: string,
  patch: { name?: string; value?: unknown; shared?: boolean },
): Promise<Secret> {
  const row = await transact(services, async (tx) => {
    const current = await findSecret(tx, principal, id);
    const changes: Partial<typeof secrets.$inferInsert> = { name: patch.name, updatedAt: new Date() };
    if (patch.value !== undefined) {
      const value = checkValue(current.type, patch.value);
      changes.value = await sealValue(services, tx, current.tenantId, id, value);
      if (current.type === 'OAUTH2') {
        const expiresAt = (value as SecretValue<'OAUTH2'>).expiresAt;
        Object.assign(changes, { expiresAt: expiresAt ? new Date(expiresAt) : null, lastError: null });
      }
    }
    if (patch.shared !== undefined) {
      const others = current.owners.filter((owner) => owner.type !== 'tenant');
      changes.owners = patch.shared ? [...others, { id: current.tenantId, type: 'tenant' }] : others;
      if (changes.owners.length === 0)
        throw conflict('A secret needs an owner: it is shared with the tenant only, so it cannot be unshared');
    }
    const [updated] = await tx.update(secrets).set(changes).where(eq(secrets.id, id)).returning();
    await emit(tx, SERVICE_NAME, 'secrets.secret.modified', { id, tenant: current.tenantId, user: principal.userId });
    return updated!;
  });
  return present(services, row, false);
}

/** Adds a user of the secret's tenant as an owner. */
export async function addOwner(services: Services, principal: Principal, id: string, userId: string): Promise<Secret> {
  const row = await transact(services, async (tx) => {
    const current = await findSecret(tx, principal, id);
    const [user] = await tx
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.id, userId), eq(users.tenantId, current.tenantId)));
    if (!user) throw badRequest(`No user ${userId} in the secret's tenant`);
    if (current.owners.some((owner) => owner.id === userId)) return current;
    const [updated] = await tx
      .update(secrets)
      .set({ owners: [...current.owners, { id: userId, type: 'user' }], updatedAt: new Date() })
      .where(eq(secrets.id, id))
      .returning();
    await emit(tx, SERVICE_NAME, 'secrets.secret.modified', { id, tenant: current.tenantId, user: principal.userId });
    return updated!;
  });
  return present(services, row, false);
}

export async function removeOwner(services: Services, principal: Principal, id: string, ownerId: string): Promise<Secret> {
  const row = await transact(services, async (tx) => {
    const current = await findSecret(tx, principal, id);
    const owners = current.owners.filter((owner) => owner.id !== ownerId);
    if (owners.length === current.owners.length) throw notFound(`${ownerId} is not an owner of secret ${id}`);
    if (owners.length === 0) throw conflict('A secret needs an owner: delete it instead');
    const [updated] = await tx.update(secrets).set({ owners, updatedAt: new Date() }).where(eq(secrets.id, id)).returning();
    await emit(tx, SERVICE_NAME, 'secrets.secret.modified', { id, tenant: current.tenantId, user: principal.userId });
    return updated!;
  });
  return present(services, row, false);
}

export async function deleteSecret(services: Services, principal: Principal, id: string): Promise<void> {
  await transact(services, async (tx) => {
    const current = await findSecret(tx, principal, id);
    await tx.delete(secrets).where(eq(secrets.id, id));
    await emit(tx, SERVICE_NAME, 'secrets.secret.deleted', { id, tenant: current.tenantId, user: principal.userId });
  });
}

/**
 * Refreshes an OAuth2 secret whose access token expires within REFRESH_MARGIN_MS. The reader that
 * wins the compare-and-set on refresh_locked_until refreshes; the others wait for it and read its
 * result, so two readers never spend one refresh token twice. A failed refresh is recorded on the
 * secret (lastError) and in the audit log, and the reader gets the secret as it was.
 */
async function refreshIfDue(services: Services, row: SecretRow): Promise<SecretRow> {
  if (row.type !== 'OAUTH2' || !row.authClientId || !row.expiresAt || row.expiresAt.getTime() - Date.now() > REFRESH_MARGIN_MS) return row;
  const { db } = services;
  const now = new Date();
  const [locked] = await db
    .update(secrets)
    .set({ refreshLockedUntil: new Date(now.getTime() + REFRESH_LOCK_MS) })
    .where(and(eq(secrets.id, row.id), or(isNull(secrets.refreshLockedUntil), lt(secrets.refreshLockedUntil, now))))
    .returning();
  if (!locked) return waitForRefresh(services, row);
  if (
    locked.updatedAt.getTime() !== row.updatedAt.getTime() &&
    (!locked.expiresAt || locked.expiresAt.getTime() - Date.now() > REFRESH_MARGIN_MS)
  ) {
    // Another reader refreshed between our read and our lock.
    await db.update(secrets).set({ refreshLockedUntil: null }).where(eq(secrets.id, row.id));
    return { ...locked, refreshLockedUntil: null };
  }

  const [client] = await db.select().from(authClients).where(eq(authClients.id, row.authClientId));
  const value = (await openValue(services, db, locked)) as SecretValue<'OAUTH2'>;
  try {
    if (!client) throw new OAuthError('its auth client was deleted');
    if (!value.refreshToken) throw new OAuthError('the provider gave no refresh token');
    const fresh = await refreshTokens(services.outbound, { ...client, clientSecret: await openClientSecret(services, client) }, value);
    const [updated] = await transact(services, async (tx) =>
      tx
        .update(secrets)
        .set({
          value: await sealValue(services, tx, row.tenantId, row.id, fresh),
          expiresAt: fresh.expiresAt ? new Date(fresh.expiresAt) : null,
          lastError: null,
          refreshLockedUntil: null,
          updatedAt: new Date(),
        })
        .where(eq(secrets.id, row.id))
        .returning(),
    );
    services.logger.info({ secretId: row.id, tenant: row.tenantId }, 'OAuth2 secret refreshed');
    return updated!;
  } catch (error) {
    if (!(error instanceof OAuthError)) {
      await db.update(secrets).set({ refreshLockedUntil: null }).where(eq(secrets.id, row.id));
      throw error;
    }
    const reason = `refresh failed: ${error.message}`;
    const [failed] = await transact(services, async (tx) => {
      await emit(tx, SERVICE_NAME, 'secrets.secret.refreshFailed', { id: row.id, tenant: row.tenantId, reason });
      return tx.update(secrets).set({ lastError: reason, refreshLockedUntil: null }).where(eq(secrets.id, row.id)).returning();
    });
    services.logger.warn({ secretId: row.id, tenant: row.tenantId, reason }, 'OAuth2 secret refresh failed');
    return failed!;
  }
}

async function waitForRefresh(services: Services, row: SecretRow): Promise<SecretRow> {
  const deadline = Date.now() + REFRESH_LOCK_MS;
  for (;;) {
    await sleep(50);
    const [current] = await services.db.select().from(secrets).where(eq(secrets.id, row.id));
    if (!current) throw notFound(`No secret ${row.id}`);
    if (!current.refreshLockedUntil || Date.now() > deadline) return current;
  }
}

/** A deleted user's secrets, within the caller's transaction: those only they owned go, the others lose them as an owner. */
export async function forgetUser(tx: Database, tenantId: string | null, userId: string): Promise<{ deleted: number; reowned: number }> {
  const ownedBy = sql`${secrets.owners} @> ${JSON.stringify([{ id: userId, type: 'user' }])}::jsonb`;
  const rows = await tx
    .select()
    .from(secrets)
    .where(and(tenantId ? eq(secrets.tenantId, tenantId) : undefined, ownedBy));
  let deleted = 0;
  for (const row of rows) {
    const owners = row.owners.filter((owner) => owner.id !== userId);
    if (owners.length === 0) {
      await tx.delete(secrets).where(eq(secrets.id, row.id));
      await emit(tx, SERVICE_NAME, 'secrets.secret.deleted', { id: row.id, tenant: row.tenantId, user: null });
      deleted++;
    } else {
      await tx.update(secrets).set({ owners, updatedAt: new Date() }).where(eq(secrets.id, row.id));
      await emit(tx, SERVICE_NAME, 'secrets.secret.modified', { id: row.id, tenant: row.tenantId, user: null });
    }
  }
  return { deleted, reowned: rows.length - deleted };
}

/** The API_KEY secrets `ids` of `tenantId`: a 400 naming any that is missing or of another type. */
async function apiKeyRows(db: Database, tenantId: string, ids: string[]): Promise<SecretRow[]> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return [];
  const rows = await db
    .select()
    .from(secrets)
    .where(and(eq(secrets.tenantId, tenantId), inArray(secrets.id, unique)));
  const wrong = unique.filter((id) => rows.find((row) => row.id === id)?.type !== 'API_KEY');
  if (wrong.length > 0)
    throw badRequest(`No API_KEY secret ${wrong.join(', ')} in the flow's tenant (webhook auth names its secrets by id)`);
  return rows;
}

/** Checks, when a flow is saved, that the secrets its webhook auth names exist. */
export async function checkApiKeySecrets(db: Database, tenantId: string, ids: string[]): Promise<void> {
  await apiKeyRows(db, tenantId, ids);
}

/** The keys of API_KEY secrets, decrypted, for the control plane's own use (the edge's webhook auth). */
export async function apiKeyValues(
  services: Services,
  tenantId: string,
  ids: string[],
  db: Database = services.db,
): Promise<Map<string, string>> {
  const rows = await apiKeyRows(db, tenantId, ids);
  const values = await Promise.all(rows.map(async (row) => [row.id, String((await openValue(services, db, row)).key)] as const));
  return new Map(values);
}
