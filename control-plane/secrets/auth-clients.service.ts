import { randomUUID } from 'node:crypto';
import { and, count, desc, eq } from 'drizzle-orm';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { grants } from '../../protocol/permissions.js';
import { MASK } from '../../protocol/secrets.js';
import { emit } from '../bus/outbox.js';
import type { Database } from '../db/index.js';
import { tenantScope } from '../http/auth.js';
import { badRequest, forbidden, notFound } from '../http/errors.js';
import { users } from '../iam/schema.js';
import type { Principal } from '../iam/tokens.js';
import { transact, type Services } from '../services.js';
import { authorizationUrl, exchangeCode, OAuthError } from './oauth2.js';
import { authClients } from './schema.js';
import { createSecret, openClientSecret, sealClientSecret, SERVICE_NAME, type Secret } from './service.js';

type ClientRow = typeof authClients.$inferSelect;

export interface AuthClient {
  id: string;
  name: string;
  tenant: string;
  clientId: string;
  clientSecret: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  scopes: string[];
  createdAt: string;
  updatedAt: string;
}

export interface AuthClientInput {
  name: string;
  clientId: string;
  clientSecret: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  scopes: string[];
}

/** How long a user has to come back from the provider. */
const FLOW_TTL_SECONDS = 10 * 60;
const STATE_AUDIENCE = 'hookline:oauth2-state';

async function present(services: Services, row: ClientRow, principal: Principal): Promise<AuthClient> {
  const raw = grants(principal.permissions, 'secrets.authClient.readRaw');
  return {
    id: row.id,
    name: row.name,
    tenant: row.tenantId,
    clientId: row.clientId,
    clientSecret: raw ? await openClientSecret(services, row) : MASK,
    authorizationEndpoint: row.authorizationEndpoint,
    tokenEndpoint: row.tokenEndpoint,
    scopes: row.scopes,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Auth clients belong to a tenant and serve all its members. */
async function findClient(db: Database, principal: Principal, id: string): Promise<ClientRow> {
  const scope = tenantScope(principal);
  const [row] = await db
    .select()
    .from(authClients)
    .where(and(eq(authClients.id, id), scope === null ? undefined : eq(authClients.tenantId, scope)));
  if (!row) throw notFound(`No auth client ${id} that you may see`);
  return row;
}

export async function listAuthClients(services: Services, principal: Principal, paging: { limit: number; offset: number }) {
  const scope = tenantScope(principal);
  const where = scope === null ? undefined : eq(authClients.tenantId, scope);
  const [rows, [counted]] = await Promise.all([
    services.db
      .select()
      .from(authClients)
      .where(where)
      .orderBy(desc(authClients.createdAt), desc(authClients.id))
      .limit(paging.limit)
      .offset(paging.offset),
    services.db.select({ total: count() }).from(authClients).where(where),
  ]);
  return { clients: await Promise.all(rows.map((row) => present(services, row, principal))), total: counted?.total ?? 0 };
}

export const getAuthClient = async (services: Services, principal: Principal, id: string) =>
  present(services, await findClient(services.db, principal, id), principal);

export async function createAuthClient(services: Services, principal: Principal, input: AuthClientInput): Promise<AuthClient> {
  const tenantId = principal.tenantId;
  if (!tenantId) throw forbidden('Your account belongs to no tenant; auth clients belong to a tenant');
  const id = randomUUID();
  const row = await transact(services, async (tx) => {
    const clientSecret = await sealClientSecret(services, tx, { id, tenantId }, input.clientSecret);
    const [created] = await tx
      .insert(authClients)
      .values({ ...input, id, tenantId, clientSecret, owners: [{ id: principal.userId, type: 'user' }] })
      .returning();
    await emit(tx, SERVICE_NAME, 'secrets.authClient.created', { id, tenant: tenantId, user: principal.userId });
    return created!;
  });
  return present(services, row, principal);
}

/** The fields that say where the client's secret, codes and refresh tokens are sent (the token endpoint) or users are sent (the authorization endpoint). */
const ENDPOINTS = ['authorizationEndpoint', 'tokenEndpoint'] as const;

/**
 * Changes an auth client. Moving an endpoint needs secrets.authClient.readRaw, or the client secret
 * in the same request: otherwise anyone who may write secrets could have the next refresh send the
 * stored client secret to a server of theirs.
 */
export async function updateAuthClient(
  services: Services,
  principal: Principal,
  id: string,
  patch: Partial<AuthClientInput>,
): Promise<AuthClient> {
  const row = await transact(services, async (tx) => {
    const current = await findClient(tx, principal, id);
    const moved = ENDPOINTS.filter((field) => patch[field] !== undefined && patch[field] !== current[field]);
    if (moved.length > 0 && patch.clientSecret === undefined && !grants(principal.permissions, 'secrets.authClient.readRaw')) {
      throw forbidden(
        `Changing ${moved.join(' and ')} needs secrets.authClient.readRaw, or the client secret given again (clientSecret) in the same request`,
      );
    }
    const { clientSecret, ...rest } = patch;
    const sealed = clientSecret === undefined ? undefined : await sealClientSecret(services, tx, current, clientSecret);
    const [updated] = await tx
      .update(authClients)
      .set({ ...rest, clientSecret: sealed, updatedAt: new Date() })
      .where(eq(authClients.id, id))
      .returning();
    await emit(tx, SERVICE_NAME, 'secrets.authClient.modified', { id, tenant: current.tenantId, user: principal.userId });
    return updated!;
  });
  return present(services, row, principal);
}

export async function deleteAuthClient(services: Services, principal: Principal, id: string): Promise<void> {
  await transact(services, async (tx) => {
    const current = await findClient(tx, principal, id);
    await tx.delete(authClients).where(eq(authClients.id, id));
    await emit(tx, SERVICE_NAME, 'secrets.authClient.deleted', { id, tenant: current.tenantId, user: principal.userId });
  });
}

interface FlowState {
  client: string;
  user: string;
  tenant: string;
  name: string;
  redirectUri: string;
  successUrl?: string;
}

/**
 * Starts the authorization-code flow: the provider's URL, with a `state` signed by the control
 * plane that carries who asked and what to create, so the unauthenticated callback can trust it.
 */
export async function startFlow(
  services: Services,
  principal: Principal,
  id: string,
  options: { secretName: string; scope?: string; successUrl?: string; redirectUri: string },
): Promise<{ authUrl: string; expiresAt: string }> {
  const client = await findClient(services.db, principal, id);
  const { signingKey } = services;
  const claims: FlowState = {
    client: client.id,
    user: principal.userId,
    tenant: client.tenantId,
    name: options.secretName,
    redirectUri: options.redirectUri,
    successUrl: options.successUrl,
  };
  const expiresAt = new Date(Date.now() + FLOW_TTL_SECONDS * 1000);
  const state = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: signingKey.algorithm, kid: signingKey.kid })
    .setAudience(STATE_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
    .sign(signingKey.privateKey);
  const scope = options.scope ?? client.scopes.join(' ');
  return {
    authUrl: authorizationUrl({ ...client, clientSecret: '' }, { redirectUri: options.redirectUri, scope, state }),
    expiresAt: expiresAt.toISOString(),
  };
}

/** The provider sent the user back: exchange the code for tokens and store them as an OAUTH2 secret of the user who started the flow. */
export async function completeFlow(
  services: Services,
  query: { state: string; code?: string; error?: string; errorDescription?: string },
): Promise<{ secret: Secret; successUrl?: string }> {
  const state = await verifyState(services, query.state);
  if (query.error) throw badRequest(`The provider refused: ${query.error}${query.errorDescription ? ` (${query.errorDescription})` : ''}`);
  if (!query.code) throw badRequest('The callback carries neither code nor error');
  const [client] = await services.db.select().from(authClients).where(eq(authClients.id, state.client));
  if (!client) throw badRequest('The auth client of this flow was deleted');
  const [user] = await services.db
    .select({ id: users.id, tenantId: users.tenantId, status: users.status })
    .from(users)
    .where(eq(users.id, state.user));
  if (user?.status !== 'active' || user.tenantId !== state.tenant)
    throw badRequest('The user who started this flow can no longer own secrets here');

  let tokens: Awaited<ReturnType<typeof exchangeCode>>;
  try {
    tokens = await exchangeCode(
      services.outbound,
      { ...client, clientSecret: await openClientSecret(services, client) },
      query.code,
      state.redirectUri,
    );
  } catch (error) {
    if (error instanceof OAuthError) throw badRequest(`Could not exchange the code: ${error.message}`);
    throw error;
  }
  const secret = await createSecret(
    services,
    { userId: user.id, tenantId: state.tenant },
    { name: state.name, type: 'OAUTH2', value: tokens, authClientId: client.id },
  );
  return { secret, successUrl: state.successUrl };
}

async function verifyState(services: Services, state: string): Promise<FlowState> {
  try {
    const { payload } = await jwtVerify(state, services.signingKey.verifyKey, {
      audience: STATE_AUDIENCE,
      algorithms: [services.signingKey.algorithm],
    });
    return payload as unknown as FlowState;
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw badRequest('This authorization flow has expired: start it again');
    if (error instanceof joseErrors.JOSEError) throw badRequest('The state of this callback is invalid');
    throw error;
  }
}
