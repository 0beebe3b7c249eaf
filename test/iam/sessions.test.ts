import { generateKeyPairSync } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { createRemoteJWKSet, decodeJwt, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { users } from '../../control-plane/iam/schema.js';
import { ADMIN, startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createTenant, createUser } from '../support/tenants.js';

describe('POST /login and /logout', () => {
  let cp: TestControlPlane;
  let events: EventEnvelope[];
  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { LOGIN_MAX_FAILURES: '3', LOGIN_LOCK_SECONDS: '60', TOKEN_TTL_SECONDS: '120' } });
    events = await collectEvents(cp, 'iam.user.loginFailed');
  });
  afterAll(() => cp.close());

  it('answers a signed token that authenticates, expiring after TOKEN_TTL_SECONDS', async () => {
    const before = Date.now();
    const res = await cp.request('POST', '/login', { body: { username: ADMIN.username.toUpperCase(), password: ADMIN.password } });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ tokenType: 'Bearer', user: { username: ADMIN.username } });
    const claims = decodeJwt(res.body.data.token);
    expect(claims.sub).toBe(res.body.data.user.id);
    expect(claims.exp! * 1000).toBeGreaterThanOrEqual(before + 119_000);
    expect(claims.exp! * 1000).toBeLessThanOrEqual(Date.now() + 121_000);
    expect((await cp.request('GET', '/flows', { token: res.body.data.token })).status).toBe(200);
  });

  it('rejects a wrong password and an unknown user with the same 401', async () => {
    const wrong = await cp.request('POST', '/login', { body: { username: ADMIN.username, password: 'not-the-password' } });
    const unknown = await cp.request('POST', '/login', { body: { username: 'nobody@hookline.test', password: 'whatever-it-is' } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    // The admin's failure count is reset by a good login, so the other tests are not locked out.
    await cp.login();
  });

  it('rejects malformed JSON, missing fields, wrong types and unknown fields with 400', async () => {
    const cases = [
      '{"username": "a",',
      { username: ADMIN.username },
      { username: 42, password: ADMIN.password },
      { username: ADMIN.username, password: ADMIN.password, remember: true },
    ];
    for (const body of cases) {
      const res = await cp.request('POST', '/login', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors[0].message).toBeTruthy();
    }
  });

  it('locks an account after LOGIN_MAX_FAILURES wrong passwords, even for the right one, and records each failure', async () => {
    const tenant = await createTenant(cp);
    const user = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_GUEST'] });
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect((await cp.request('POST', '/login', { body: { username: user.username, password: 'wrong-password' } })).status).toBe(401);
    }
    const locked = await cp.request('POST', '/login', { body: { username: user.username, password: user.password } });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(locked.body.errors[0].message).toMatch(/locked/);

    const failures = () => Promise.resolve(events.map((e) => e.payload).filter((p) => p.id === user.id));
    const mine = await waitFor(failures, (found) => found.length === 3);
    expect(mine.map((p) => [p.attempts, p.locked])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(mine.every((p) => p.tenant === tenant.id)).toBe(true);

    // Once the lock has run out, the right password works again.
    await cp.services.db
      .update(users)
      .set({ lockedUntil: new Date(Date.now() - 1000) })
      .where(eq(users.id, user.id));
    expect((await cp.request('POST', '/login', { body: { username: user.username, password: user.password } })).status).toBe(200);
  });

  it('does not let a disabled account log in, answering the right password exactly as a wrong one', async () => {
    const tenant = await createTenant(cp);
    const user = await createUser(cp, { tenantId: tenant.id });
    await cp.services.db.update(users).set({ status: 'disabled' }).where(eq(users.id, user.id));
    const right = await cp.request('POST', '/login', { body: { username: user.username, password: user.password } });
    const wrong = await cp.request('POST', '/login', { body: { username: user.username, password: 'not-the-password' } });
    const unknown = await cp.request('POST', '/login', { body: { username: 'nobody@hookline.test', password: user.password } });
    expect(right.status).toBe(401);
    expect(right.body).toEqual({ errors: [{ message: 'Wrong username or password', code: 'unauthorized' }] });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual(right.body);
    expect(unknown.body).toEqual(right.body);
    expect((await cp.request('GET', '/flows', { token: user.token })).status).toBe(401);
    // Guessing at a disabled account locks nothing either: it answers as an unknown one does.
    for (let attempt = 1; attempt <= 3; attempt++)
      await cp.request('POST', '/login', { body: { username: user.username, password: 'wrong-password' } });
    const later = await cp.request('POST', '/login', { body: { username: user.username, password: user.password } });
    expect(later.status).toBe(401);
    expect(later.body).toEqual(right.body);
  });

  it('revokes the token on logout; the next request with it is a 401', async () => {
    const token = await cp.login();
    const other = await cp.login();
    expect((await cp.request('POST', '/logout', { token })).status).toBe(204);
    const after = await cp.request('GET', '/flows', { token });
    expect(after.status).toBe(401);
    expect(after.body.errors[0].message).toMatch(/revoked/);
    expect((await cp.request('GET', '/flows', { token: other })).status).toBe(200);
    expect((await cp.request('POST', '/logout')).status).toBe(401);
  });

  it('refuses expired and forged tokens, naming why', async () => {
    const token = await cp.login();
    const claims = decodeJwt(token);
    const forged = await new SignJWT({ tenant: null })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('hookline')
      .setSubject(claims.sub!)
      .setJti(claims.jti!)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('a-key-that-is-not-the-real-one-0123456789'));
    const forgedRes = await cp.request('GET', '/flows', { token: forged });
    expect(forgedRes.status).toBe(401);
    expect(forgedRes.body.errors[0].message).toMatch(/invalid/);

    const key = cp.services.signingKey;
    const expired = await new SignJWT({ tenant: null })
      .setProtectedHeader({ alg: key.algorithm, kid: key.kid })
      .setIssuer('hookline')
      .setSubject(claims.sub!)
      .setJti(claims.jti!)
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(key.privateKey);
    const expiredRes = await cp.request('GET', '/flows', { token: expired });
    expect(expiredRes.status).toBe(401);
    expect(expiredRes.body.errors[0].message).toMatch(/expired/);
  });

  it('refuses a token that authenticated before, once it has expired or been revoked', async () => {
    const token = await cp.login();
    expect((await cp.request('GET', '/flows', { token })).status).toBe(200);
    const { exp } = decodeJwt(token);
    // Only Date is faked: the request still runs on real timers, at a clock one second past the expiry.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(exp! * 1000 + 1000);
      const later = await cp.request('GET', '/flows', { token });
      expect(later.status).toBe(401);
      expect(later.body.errors[0].message).toMatch(/expired/);
    } finally {
      vi.useRealTimers();
    }
    expect((await cp.request('GET', '/flows', { token })).status).toBe(200);
    expect((await cp.request('POST', '/logout', { token })).status).toBe(204);
    expect((await cp.request('GET', '/flows', { token })).body.errors[0].message).toMatch(/revoked/);
  });

  it('publishes no JWKS for HS256', async () => {
    const res = await cp.request('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(404);
    expect(res.body.errors[0].message).toMatch(/HS256/);
  });
});

describe.each(['RS256', 'EdDSA'] as const)('%s tokens', (algorithm) => {
  let cp: TestControlPlane;
  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { JWT_ALGORITHM: algorithm } });
  });
  afterAll(() => cp.close());

  it('are verifiable with the public key at /.well-known/jwks.json, which holds no private part', async () => {
    const res = await cp.request('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.body.keys).toHaveLength(1);
    expect(res.body.keys[0]).not.toHaveProperty('d');
    const token = await cp.login();
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(`${cp.url}/.well-known/jwks.json`)), {
      issuer: 'hookline',
    });
    expect(protectedHeader.alg).toBe(algorithm);
    expect(payload.sub).toBeTruthy();
  });
});

describe('a configured RS256 private key', () => {
  it('signs the tokens, and the JWKS publishes its public half', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const cp = await startTestControlPlane({ env: { JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: pem } });
    try {
      const token = await cp.login();
      const { payload } = await jwtVerify(token, publicKey, { issuer: 'hookline' });
      expect(payload.sub).toBeTruthy();
      const jwks = await cp.request('GET', '/.well-known/jwks.json');
      expect(jwks.body.keys[0].n).toBe((publicKey.export({ format: 'jwk' }) as { n: string }).n);
    } finally {
      await cp.close();
    }
  });
});
