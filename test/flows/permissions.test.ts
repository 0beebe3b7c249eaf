import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokens } from '../../control-plane/iam/schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenant, createUser, type TestUser } from '../support/tenants.js';
import { countFlows, createFlow, flowBody } from './support.js';

let cp: TestControlPlane;
let nobody: TestUser;
let guest: TestUser;
let developer: TestUser;
let integrator: TestUser;
let flow: any;

beforeAll(async () => {
  cp = await startTestControlPlane();
  const tenant = await createTenant(cp);
  const user = (roles: string[]) => createUser(cp, { tenantId: tenant.id, roles });
  [nobody, guest, developer, integrator] = await Promise.all([
    user(['USER']),
    user(['TENANT_GUEST']),
    user(['TENANT_DEVELOPER']),
    user(['TENANT_INTEGRATOR']),
  ]);
  flow = await createFlow(cp, integrator.token);
});
afterAll(() => cp?.close());

type Route = { method: string; path: () => string; body?: unknown; permission: string; allowed: () => TestUser; denied: () => TestUser };
const routes: Route[] = [
  { method: 'GET', path: () => '/flows', permission: 'flows.read', allowed: () => guest, denied: () => nobody },
  { method: 'GET', path: () => `/flows/${flow.id}`, permission: 'flows.read', allowed: () => guest, denied: () => nobody },
  { method: 'POST', path: () => '/flows', body: flowBody(), permission: 'flows.write', allowed: () => developer, denied: () => guest },
  {
    method: 'PATCH',
    path: () => `/flows/${flow.id}`,
    body: { name: 'renamed' },
    permission: 'flows.write',
    allowed: () => developer,
    denied: () => guest,
  },
  { method: 'DELETE', path: () => `/flows/${flow.id}`, permission: 'flows.write', allowed: () => developer, denied: () => guest },
  {
    method: 'POST',
    path: () => `/flows/${flow.id}/start`,
    permission: 'flows.control',
    allowed: () => integrator,
    denied: () => developer,
  },
  { method: 'POST', path: () => `/flows/${flow.id}/stop`, permission: 'flows.control', allowed: () => integrator, denied: () => developer },
];

describe.each(routes)('$method $permission', (route) => {
  const snapshot = async () => ({
    count: await countFlows(cp),
    flow: (await cp.request('GET', `/flows/${flow.id}`, { token: integrator.token })).body.data,
  });

  it('401 without a token, with a malformed header, a forged token or a revoked token; nothing changes', async () => {
    const before = await snapshot();
    const forged = `${integrator.token.slice(0, -4)}AAAA`;
    const revoked = await createUser(cp, { tenantId: integrator.tenantId, roles: ['TENANT_ADMIN'] });
    await cp.services.db.update(tokens).set({ revokedAt: new Date() }).where(eq(tokens.userId, revoked.id));
    const expired = await createUser(cp, { tenantId: integrator.tenantId, roles: ['TENANT_ADMIN'] });
    await cp.services.db
      .update(tokens)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(tokens.userId, expired.id));
    const attempts: [Record<string, string>, RegExp][] = [
      [{}, /^Missing bearer token/],
      [{ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, /^Malformed Authorization header/],
      [{ authorization: `Bearer ${forged}` }, /^Token is invalid$/],
      [{ authorization: `Bearer ${revoked.token}` }, /^Token has been revoked$/],
      [{ authorization: `Bearer ${expired.token}` }, /^Token has expired$/],
      [{ authorization: 'Bearer hlk_not-a-service-token' }, /^Token is invalid$/],
    ];
    for (const [headers, message] of attempts) {
      const res = await cp.request(route.method, route.path(), { headers, body: route.body });
      expect(res.status).toBe(401);
      expect(res.body.errors[0].message).toMatch(message);
    }
    expect(await snapshot()).toEqual(before);
  });

  it(`403 without ${route.permission}, naming it; nothing changes`, async () => {
    const before = await snapshot();
    const res = await cp.request(route.method, route.path(), { token: route.denied().token, body: route.body });
    expect(res.status).toBe(403);
    expect(res.body.errors).toEqual([{ message: `Missing permission: ${route.permission}`, code: 'forbidden' }]);
    expect(await snapshot()).toEqual(before);
  });

  it(`succeeds with ${route.permission}`, async () => {
    const res = await cp.request(route.method, route.path(), { token: route.allowed().token, body: route.body });
    expect(res.status).toBeLessThan(300);
    if (route.method === 'DELETE') flow = await createFlow(cp, integrator.token);
  });
});
