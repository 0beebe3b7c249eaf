import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flows } from '../../control-plane/flows/schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { createFlow, handledByRepository, publishAsRunner, statusOf } from './support.js';
import { waitFor } from '../support/events.js';

let cp: TestControlPlane;
let admin: string;
let mine: TestUser;
let theirs: TestUser;
let theirFlow: any;
let myFlow: any;

beforeAll(async () => {
  cp = await startTestControlPlane();
  admin = await cp.login();
  mine = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  theirs = await createTenantWithUser(cp, ['TENANT_ADMIN']);
  myFlow = await createFlow(cp, mine.token, { name: 'mine' });
  theirFlow = await createFlow(cp, theirs.token, { name: 'theirs' });
});
afterAll(() => cp?.close());

const storedRow = async (id: string) => (await cp.services.db.select().from(flows).where(eq(flows.id, id)))[0];

describe('a user sees only the flows of their own tenant', () => {
  it('lists only their tenant’s flows', async () => {
    const res = await cp.request('GET', '/flows', { token: mine.token });
    expect(res.body.data.map((f: any) => f.id)).toEqual([myFlow.id]);
    expect(res.body.meta.total).toBe(1);
  });

  it('filter[user] with another tenant’s user finds nothing (it narrows, never widens)', async () => {
    const res = await cp.request('GET', `/flows?filter[user]=${theirs.id}`, { token: mine.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([]);
    expect(res.body.meta.total).toBe(0);
    const search = await cp.request('GET', `/flows?filter[user]=${theirs.id}&search=theirs`, { token: mine.token });
    expect(search.body.data).toEqual([]);
  });

  it('answers 404 for another tenant’s flow on every route, exactly as for an unknown id, and changes nothing', async () => {
    const before = await storedRow(theirFlow.id);
    const unknown = '00000000-0000-4000-8000-000000000000';
    const routes: [string, string, unknown?][] = [
      ['GET', ''],
      ['PATCH', '', { name: 'taken over' }],
      ['DELETE', ''],
      ['POST', '/start'],
      ['POST', '/stop'],
    ];
    for (const [method, suffix, body] of routes) {
      const other = await cp.request(method, `/flows/${theirFlow.id}${suffix}`, { token: mine.token, body });
      const missing = await cp.request(method, `/flows/${unknown}${suffix}`, { token: mine.token, body });
      expect(other.status, `${method} ${suffix}`).toBe(404);
      expect(missing.status).toBe(404);
      expect(other.body.errors[0].message).toBe(`Flow ${theirFlow.id} not found`);
      expect(missing.body.errors[0].message).toBe(`Flow ${unknown} not found`);
    }
    expect(await storedRow(theirFlow.id)).toEqual(before);
  });

  it('ignores lifecycle events that name the flow with another tenant', async () => {
    const started = await cp.request('POST', `/flows/${myFlow.id}/start`, { token: mine.token });
    expect(started.status).toBe(200);
    const forged = await publishAsRunner(cp, 'flow.started', { id: myFlow.id, tenant: theirs.tenantId });
    await handledByRepository(cp, forged.headers.id);
    expect(await statusOf(cp, mine.token, myFlow.id)).toBe('starting');
    await publishAsRunner(cp, 'flow.started', { id: myFlow.id, tenant: mine.tenantId });
    expect(
      await waitFor(
        () => statusOf(cp, mine.token, myFlow.id),
        (status) => status === 'active',
      ),
    ).toBe('active');
  });
});

describe('holders of `all` see every tenant', () => {
  it('lists and reads flows of every tenant, and filter[user] narrows to one user', async () => {
    const all = await cp.request('GET', '/flows?sort=name', { token: admin });
    expect(all.body.data.map((f: any) => f.name)).toEqual(['mine', 'theirs']);
    expect((await cp.request('GET', `/flows/${theirFlow.id}`, { token: admin })).status).toBe(200);
    const narrowed = await cp.request('GET', `/flows?filter[user]=${theirs.id}`, { token: admin });
    expect(narrowed.body.data.map((f: any) => f.id)).toEqual([theirFlow.id]);
  });

  it('creates flows in their own tenant', async () => {
    const flow = await createFlow(cp, admin, { name: 'admin’s' });
    const me = await cp.request('GET', `/flows/${flow.id}`, { token: mine.token });
    expect(me.status).toBe(404);
    expect(flow.tenant).not.toBe(mine.tenantId);
    expect(flow.tenant).not.toBe(theirs.tenantId);
  });
});
