import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { OAuth2Server } from 'oauth2-mock-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authClients, secrets } from '../../control-plane/secrets/schema.js';
import { MASK } from '../../protocol/secrets.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { createTenant, createUser, type TestUser } from '../support/tenants.js';

/** A real OAuth2 provider on a local port; its hooks count and shape the token responses. */
describe('OAuth2 secrets against a local provider', () => {
  let provider: OAuth2Server;
  let cp: TestControlPlane;
  let user: TestUser;
  let other: TestUser;
  let tokenGrants: string[];
  /** Seconds the provider's next tokens live; under the 5-minute margin they are due for refresh at once. */
  let lifetime: number;
  let refuseRefresh: boolean;

  beforeAll(async () => {
    provider = new OAuth2Server();
    await provider.issuer.keys.generate('RS256');
    await provider.start(0, '127.0.0.1');
    provider.service.on(
      'beforeResponse',
      (response: { body: Record<string, unknown>; statusCode: number }, req: { body: Record<string, string> }) => {
        tokenGrants.push(req.body.grant_type!);
        response.body.expires_in = lifetime;
        if (refuseRefresh && req.body.grant_type === 'refresh_token') {
          response.statusCode = 400;
          response.body = { error: 'invalid_grant', error_description: 'refresh token revoked' };
        }
      },
    );
    // The provider is on loopback, which the control plane reaches only when allowed explicitly.
    cp = await startTestControlPlane({ env: { OUTBOUND_ALLOWED_NETWORKS: '127.0.0.1/32' } });
    const tenant = await createTenant(cp);
    user = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'], permissions: ['secrets.secret.readRaw'] });
    other = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_INTEGRATOR'] });
  });
  afterAll(async () => {
    await cp?.close();
    await provider?.stop();
  });
  beforeEach(() => {
    tokenGrants = [];
    lifetime = 3600;
    refuseRefresh = false;
  });

  async function registerClient(token = user.token) {
    const issuer = provider.issuer.url!;
    const res = await cp.request('POST', '/api/v1/auth-clients', {
      token,
      body: {
        name: 'CRM',
        clientId: 'hookline',
        clientSecret: 'client-secret-value',
        authorizationEndpoint: `${issuer}/authorize`,
        tokenEndpoint: `${issuer}/token`,
        scopes: ['contacts.read'],
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.data;
  }

  /** The whole dance: start-flow, the provider's redirect (no login page in the mock), our callback. */
  async function connect(options: { successUrl?: string } = {}) {
    const client = await registerClient();
    const started = await cp.request('POST', `/api/v1/auth-clients/${client.id}/start-flow`, {
      token: user.token,
      body: { secretName: 'CRM access', ...options },
    });
    expect(started.status).toBe(200);
    const authorize = await fetch(started.body.data.authUrl, { redirect: 'manual' });
    expect(authorize.status).toBe(302);
    const callback = new URL(authorize.headers.get('location')!);
    expect(`${callback.origin}${callback.pathname}`).toBe(`${cp.url}/callback`);
    const done = await fetch(callback, { redirect: 'manual' });
    return { client, started, done };
  }

  it('runs the authorization-code flow and stores the tokens as an OAUTH2 secret of the user', async () => {
    const { client, started, done } = await connect();
    const authUrl = new URL(started.body.data.authUrl);
    expect(authUrl.searchParams.get('client_id')).toBe('hookline');
    expect(authUrl.searchParams.get('scope')).toBe('contacts.read');
    expect(done.status).toBe(200);
    const { secretId } = ((await done.json()) as { data: { secretId: string } }).data;
    const secret = await cp.request('GET', `/api/v1/secrets/${secretId}`, { token: user.token });
    expect(secret.body.data).toMatchObject({
      name: 'CRM access',
      type: 'OAUTH2',
      authClientId: client.id,
      owners: [{ id: user.id, type: 'user' }],
      lastError: null,
    });
    expect(secret.body.data.value.accessToken).toMatch(/^ey/);
    expect(secret.body.data.value.refreshToken).toBeTruthy();
    expect(tokenGrants).toEqual(['authorization_code']);
  });

  it('redirects to the successUrl with the secret id', async () => {
    const { done } = await connect({ successUrl: 'https://app.example.com/connected?tab=crm' });
    expect(done.status).toBe(302);
    const target = new URL(done.headers.get('location')!);
    expect(target.origin + target.pathname).toBe('https://app.example.com/connected');
    expect(target.searchParams.get('tab')).toBe('crm');
    expect(target.searchParams.get('secretId')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refreshes a token about to expire when it is read, once for two concurrent readers', async () => {
    lifetime = 60; // inside the 5-minute margin: due at the first read
    const { done } = await connect();
    const { secretId } = ((await done.json()) as { data: { secretId: string } }).data;
    const before = (await cp.services.db.select().from(secrets).where(eq(secrets.id, secretId)))[0]!;
    lifetime = 3600;

    const [a, b] = await Promise.all([
      cp.request('GET', `/api/v1/secrets/${secretId}`, { token: user.token }),
      cp.request('GET', `/api/v1/secrets/${secretId}`, { token: user.token }),
    ]);
    expect(tokenGrants).toEqual(['authorization_code', 'refresh_token']);
    expect(a.body.data.value.accessToken).toBe(b.body.data.value.accessToken);
    expect(Date.parse(a.body.data.expiresAt)).toBeGreaterThan(before.expiresAt!.getTime() + 3000 * 1000);
    // Fresh now: a third read does not refresh.
    await cp.request('GET', `/api/v1/secrets/${secretId}`, { token: user.token });
    expect(tokenGrants).toHaveLength(2);
  });

  it('records a failed refresh on the secret and in the audit log, and keeps the old tokens', async () => {
    lifetime = 60;
    const { done } = await connect();
    const { secretId } = ((await done.json()) as { data: { secretId: string } }).data;
    const old = (await cp.request('GET', `/api/v1/secrets/${secretId}`, { token: user.token })).body.data.value.accessToken;
    refuseRefresh = true;
    await cp.services.db
      .update(secrets)
      .set({ expiresAt: new Date(Date.now() + 30_000) })
      .where(eq(secrets.id, secretId));
    const res = await cp.request('GET', `/api/v1/secrets/${secretId}`, { token: user.token });
    expect(res.status).toBe(200);
    expect(res.body.data.lastError).toMatch(/refresh failed: token endpoint answered 400 \(invalid_grant: refresh token revoked\)/);
    expect(res.body.data.value.accessToken).toBe(old);
    const admin = await cp.login();
    await waitFor(
      async () =>
        (await cp.request('GET', '/logs?filter[name]=secrets.secret.refreshFailed', { token: admin })).body.data.filter(
          (r: { payload: { id: string } }) => r.payload.id === secretId,
        ),
      (found) => found.length === 1,
    );
  });

  it('refuses a callback with a forged, tampered or expired state, or the provider’s error, creating nothing', async () => {
    const before = (await cp.services.db.select().from(secrets)).length;
    const client = await registerClient();
    const started = await cp.request('POST', `/api/v1/auth-clients/${client.id}/start-flow`, {
      token: user.token,
      body: { secretName: 'x' },
    });
    const state = new URL(started.body.data.authUrl).searchParams.get('state')!;
    const [header, payload, signature] = state.split('.');
    const tampered = [
      header,
      Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), user: other.id })).toString('base64url'),
      signature,
    ].join('.');
    for (const [query, message] of [
      [`state=${tampered}&code=abc`, /state of this callback is invalid/],
      ['state=not-a-jwt&code=abc', /state of this callback is invalid/],
      [`state=${state}&error=access_denied&error_description=User%20said%20no`, /provider refused: access_denied \(User said no\)/],
      [`state=${state}`, /neither code nor error/],
      ['code=abc', /state/],
    ] as const) {
      const res = await cp.request('GET', `/callback?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' '), query).toMatch(message);
    }
    expect((await cp.services.db.select().from(secrets)).length).toBe(before);
  });

  it('moves an endpoint only for holders of secrets.authClient.readRaw, or with the client secret given again', async () => {
    const writer = await createUser(cp, { tenantId: user.tenantId, roles: ['TENANT_INTEGRATOR'] });
    const client = await registerClient();
    const patch = (token: string, body: Record<string, unknown>) =>
      cp.request('PATCH', `/api/v1/auth-clients/${client.id}`, { token, body });
    for (const body of [
      { tokenEndpoint: 'https://attacker.example/token' },
      { authorizationEndpoint: 'https://attacker.example/authorize', name: 'CRM' },
    ]) {
      const refused = await patch(writer.token, body);
      expect(refused.status).toBe(403);
      expect(refused.body.errors[0].message).toMatch(
        /^Changing (tokenEndpoint|authorizationEndpoint) needs secrets\.authClient\.readRaw, or the client secret given again \(clientSecret\) in the same request$/,
      );
    }
    const [stored] = await cp.services.db.select().from(authClients).where(eq(authClients.id, client.id));
    expect(stored).toMatchObject({ tokenEndpoint: client.tokenEndpoint, authorizationEndpoint: client.authorizationEndpoint });
    // Other fields, and an endpoint given unchanged, need nothing more.
    expect((await patch(writer.token, { name: 'CRM 2', tokenEndpoint: client.tokenEndpoint, scopes: [] })).status).toBe(200);
    const withSecret = await patch(writer.token, {
      tokenEndpoint: `${provider.issuer.url}/token?v=2`,
      clientSecret: 'a-secret-the-writer-knows',
    });
    expect(withSecret.status).toBe(200);
    expect(withSecret.body.data.tokenEndpoint).toBe(`${provider.issuer.url}/token?v=2`);
    const keeper = await createUser(cp, {
      tenantId: user.tenantId,
      roles: ['TENANT_INTEGRATOR'],
      permissions: ['secrets.authClient.readRaw'],
    });
    expect((await patch(keeper.token, { tokenEndpoint: client.tokenEndpoint })).status).toBe(200);
  });

  it('sends no token request through a redirect', async () => {
    const redirector = createServer((_req, res) => {
      res.writeHead(307, { location: `${provider.issuer.url}/token` });
      res.end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      lifetime = 60;
      const { client, done } = await connect();
      const { secretId } = ((await done.json()) as { data: { secretId: string } }).data;
      const tokenEndpoint = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/token`;
      expect(
        (
          await cp.request('PATCH', `/api/v1/auth-clients/${client.id}`, {
            token: user.token,
            body: { tokenEndpoint, clientSecret: 'client-secret-value' },
          })
        ).status,
      ).toBe(200);
      const res = await cp.request('GET', `/api/v1/secrets/${secretId}`, { token: user.token });
      expect(res.body.data.lastError).toBe('refresh failed: token endpoint answered 307');
      expect(tokenGrants).toEqual(['authorization_code']);
    } finally {
      await new Promise((resolve) => redirector.close(resolve));
    }
  });

  it('masks the client secret, confines clients to their tenant, and checks the input', async () => {
    const client = await registerClient();
    expect(client.clientSecret).toBe(MASK);
    expect((await cp.request('GET', `/api/v1/auth-clients/${client.id}`, { token: other.token })).status).toBe(404);
    expect(
      (await cp.request('POST', `/api/v1/auth-clients/${client.id}/start-flow`, { token: other.token, body: { secretName: 'x' } })).status,
    ).toBe(404);
    const listed = await cp.request('GET', '/api/v1/auth-clients', { token: other.token });
    expect(listed.body.data.map((c: { id: string }) => c.id)).not.toContain(client.id);
    const bad = await cp.request('POST', '/api/v1/auth-clients', {
      token: user.token,
      body: { name: 'x', clientId: 'c', clientSecret: 's', authorizationEndpoint: 'ftp://x', tokenEndpoint: 'https://x/token' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].message).toMatch(/authorizationEndpoint/);
    const noName = await cp.request('POST', `/api/v1/auth-clients/${client.id}/start-flow`, { token: user.token, body: {} });
    expect(noName.status).toBe(400);
    expect((await cp.request('DELETE', `/api/v1/auth-clients/${randomUUID()}`, { token: user.token })).status).toBe(404);
  });
});

describe('the control plane’s outbound calls, with no network allowed (the default)', () => {
  let provider: OAuth2Server;
  let cp: TestControlPlane;
  let user: TestUser;
  let tokenRequests: number;

  beforeAll(async () => {
    provider = new OAuth2Server();
    await provider.issuer.keys.generate('RS256');
    await provider.start(0, '127.0.0.1');
    provider.service.on('beforeResponse', () => void tokenRequests++);
    cp = await startTestControlPlane();
    user = await createUser(cp, {
      tenantId: (await createTenant(cp)).id,
      roles: ['TENANT_INTEGRATOR'],
      permissions: ['secrets.secret.readRaw'],
    });
  });
  afterAll(async () => {
    await cp?.close();
    await provider?.stop();
  });
  beforeEach(() => {
    tokenRequests = 0;
  });

  const loopback =
    /token endpoint refused: 127\.0\.0\.1 is a private address \(loopback\); outbound calls reach private networks only where the operator allows them \(OUTBOUND_ALLOWED_NETWORKS\)/;

  async function registerClient(issuer = provider.issuer.url!) {
    const res = await cp.request('POST', '/api/v1/auth-clients', {
      token: user.token,
      body: {
        name: 'CRM',
        clientId: 'hookline',
        clientSecret: 'client-secret-value',
        authorizationEndpoint: `${issuer}/authorize`,
        tokenEndpoint: `${issuer}/token`,
      },
    });
    expect(res.status).toBe(201);
    return res.body.data.id as string;
  }

  it('exchanges no code with a token endpoint on loopback', async () => {
    const client = await registerClient(provider.issuer.url!.replace('localhost', '127.0.0.1'));
    const started = await cp.request('POST', `/api/v1/auth-clients/${client}/start-flow`, {
      token: user.token,
      body: { secretName: 'CRM access' },
    });
    const authorize = await fetch(started.body.data.authUrl, { redirect: 'manual' });
    const callback = await cp.request('GET', `/callback${new URL(authorize.headers.get('location')!).search}`);
    expect(callback.status).toBe(400);
    expect(callback.body.errors[0].message).toMatch(new RegExp(`^Could not exchange the code: ${loopback.source}$`));
    expect(tokenRequests).toBe(0);
  });

  it('records a refresh refused this way as any failed refresh: lastError and the audit log', async () => {
    // oauth2-mock-server names itself http://localhost:<port>: refused after DNS.
    const client = await registerClient();
    const soon = new Date(Date.now() + 60_000).toISOString();
    const created = await cp.request('POST', '/api/v1/secrets', {
      token: user.token,
      body: {
        name: 'CRM',
        type: 'OAUTH2',
        authClientId: client,
        value: { accessToken: 'old-access', refreshToken: 'old-refresh', expiresAt: soon },
      },
    });
    const res = await cp.request('GET', `/api/v1/secrets/${created.body.data.id}`, { token: user.token });
    expect(res.status).toBe(200);
    expect(res.body.data.value.accessToken).toBe('old-access');
    expect(res.body.data.lastError).toMatch(
      /^refresh failed: token endpoint refused: localhost resolves to (127\.0\.0\.1|::1), which is a private address \(loopback\)/,
    );
    expect(tokenRequests).toBe(0);
    const admin = await cp.login();
    await waitFor(
      async () =>
        (await cp.request('GET', '/logs?filter[name]=secrets.secret.refreshFailed', { token: admin })).body.data.filter(
          (r: { payload: { id: string } }) => r.payload.id === created.body.data.id,
        ),
      (found) => found.length === 1,
    );
  });
});
