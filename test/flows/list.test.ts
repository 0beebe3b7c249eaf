import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenant, createUser, type TestUser } from '../support/tenants.js';
import { createFlow, placed, publishAsRunner, silentRunner, statusOf } from './support.js';
import { waitFor } from '../support/events.js';

let cp: TestControlPlane;
let ann: TestUser;
let bob: TestUser;
let runner: { stop(): void };
/** The tenant's flows, in creation order. */
const made: Record<string, any> = {};
const byCreation = () => Object.values(made).sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));

beforeAll(async () => {
  cp = await startTestControlPlane();
  const tenant = await createTenant(cp);
  ann = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'] });
  bob = await createUser(cp, { tenantId: tenant.id, roles: ['TENANT_INTEGRATOR'] });
  made.alpha = await createFlow(cp, ann.token, { name: 'alpha', description: 'Sends 100% of the orders' });
  made.beta = await createFlow(cp, ann.token, { name: 'beta_report', description: 'The nightly report', type: 'long_running' });
  made.gamma = await createFlow(cp, bob.token, { name: 'gamma', description: undefined });
  made.delta = await createFlow(cp, bob.token, { name: 'delta 50%', description: 'half' });
  made.epsilon = await createFlow(cp, bob.token, { name: 'epsilon', description: 'C:\\path', type: 'long_running' });

  // beta starting; gamma stopping; delta active
  runner = await silentRunner(cp, tenant.id);
  for (const flow of [made.beta, made.gamma, made.delta]) {
    expect((await cp.request('POST', `/flows/${flow.id}/start`, { token: ann.token })).status).toBe(200);
    await placed(cp, flow.id);
  }
  expect((await cp.request('POST', `/flows/${made.gamma.id}/stop`, { token: ann.token })).status).toBe(200);
  await publishAsRunner(cp, 'flow.started', { id: made.delta.id, tenant: ann.tenantId });
  await waitFor(
    () => statusOf(cp, ann.token, made.delta.id),
    (status) => status === 'active',
  );
});
afterAll(async () => {
  runner?.stop();
  await cp?.close();
});

const list = async (query: string, token = ann.token) => {
  const res = await cp.request('GET', `/flows${query}`, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { data: any[]; meta: { total: number; page: number; perPage: number; totalPages: number } };
};
const names = (body: { data: any[] }) => body.data.map((f) => f.name);
const messages = (res: { body: any }) => (res.body.errors as { message: string }[]).map((e) => e.message);

describe('paging', () => {
  it('defaults to 10 per page, newest first', async () => {
    const body = await list('');
    expect(body.meta).toEqual({ total: 5, page: 1, perPage: 10, totalPages: 1 });
    expect(body.data.map((f) => f.id)).toEqual(
      byCreation()
        .reverse()
        .map((f) => f.id),
    );
  });

  it('pages with page[size] and page[number]', async () => {
    const newest = byCreation()
      .reverse()
      .map((f) => f.name);
    const first = await list('?page[size]=2');
    expect(first.meta).toEqual({ total: 5, page: 1, perPage: 2, totalPages: 3 });
    expect(names(first)).toEqual(newest.slice(0, 2));
    const second = await list('?page[size]=2&page[number]=2');
    expect(names(second)).toEqual(newest.slice(2, 4));
    const last = await list('?page[size]=2&page[number]=3');
    expect(last.meta).toEqual({ total: 5, page: 3, perPage: 2, totalPages: 3 });
    expect(names(last)).toEqual(newest.slice(4));
    const beyond = await list('?page[size]=2&page[number]=9');
    expect(beyond.data).toEqual([]);
    expect(beyond.meta.total).toBe(5);
  });

  it('pages through filtered results with the filtered total', async () => {
    const body = await list('?filter[type]=long_running&page[size]=1&page[number]=2&sort=name');
    expect(body.meta).toEqual({ total: 2, page: 2, perPage: 1, totalPages: 2 });
    expect(names(body)).toEqual(['epsilon']);
  });
});

describe('filters', () => {
  it.each([
    ['inactive', ['alpha', 'epsilon']],
    ['starting', ['beta_report']],
    ['active', ['delta 50%']],
    ['stopping', ['gamma']],
  ])('filter[status]=%s', async (status, expected) => {
    const body = await list(`?filter[status]=${status}&sort=name`);
    expect(names(body)).toEqual(expected);
    expect(body.meta.total).toBe(expected.length);
  });

  it('filter[type]', async () => {
    expect(names(await list('?filter[type]=long_running&sort=name'))).toEqual(['beta_report', 'epsilon']);
    expect(names(await list('?filter[type]=ordinary&sort=name'))).toEqual(['alpha', 'delta 50%', 'gamma']);
  });

  it('filter[user]: the flows that user owns', async () => {
    expect(names(await list(`?filter[user]=${ann.id}&sort=name`))).toEqual(['alpha', 'beta_report']);
    expect(names(await list(`?filter[user]=${bob.id}&sort=name`, ann.token))).toEqual(['delta 50%', 'epsilon', 'gamma']);
    expect((await list('?filter[user]=00000000-0000-4000-8000-000000000000')).meta.total).toBe(0);
  });

  it('combines filters', async () => {
    expect(names(await list(`?filter[user]=${bob.id}&filter[type]=long_running&filter[status]=inactive`))).toEqual(['epsilon']);
    expect((await list(`?filter[user]=${ann.id}&filter[status]=active`)).data).toEqual([]);
  });
});

describe('sort', () => {
  it('by name, both ways', async () => {
    const ascending = ['alpha', 'beta_report', 'delta 50%', 'epsilon', 'gamma'];
    expect(names(await list('?sort=name'))).toEqual(ascending);
    expect(names(await list('?sort=-name'))).toEqual([...ascending].reverse());
  });

  it('by createdAt, both ways', async () => {
    const oldest = byCreation().map((f) => f.id);
    expect((await list('?sort=createdAt')).data.map((f) => f.id)).toEqual(oldest);
    expect((await list('?sort=-createdAt')).data.map((f) => f.id)).toEqual([...oldest].reverse());
  });

  it('by updatedAt, both ways', async () => {
    const patched = await cp.request('PATCH', `/flows/${made.alpha.id}`, {
      token: ann.token,
      body: { description: 'Sends 100% of the orders, now' },
    });
    expect(patched.status).toBe(200);
    const ascending = await list('?sort=updatedAt');
    const stamps = ascending.data.map((f) => Date.parse(f.updatedAt));
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
    expect(ascending.data.at(-1).name).toBe('alpha');
    const descending = await list('?sort=-updatedAt');
    expect(descending.data.map((f) => f.id)).toEqual(ascending.data.map((f) => f.id).reverse());
  });
});

describe('search', () => {
  it.each([
    ['ALPHA', ['alpha']],
    ['Nightly', ['beta_report']],
    ['PATH', ['epsilon']],
    ['a', ['alpha', 'beta_report', 'delta 50%', 'epsilon', 'gamma']],
    ['%', ['alpha', 'delta 50%']],
    ['_', ['beta_report']],
    ['\\', ['epsilon']],
    ['50%', ['delta 50%']],
    ['no such flow', []],
  ])('search=%s finds %j', async (text, expected) => {
    expect(names(await list(`?search=${encodeURIComponent(text)}&sort=name`))).toEqual(expected);
  });

  it('an empty search finds everything', async () => {
    expect((await list('?search=')).meta.total).toBe(5);
  });
});

describe('bad query values are 400s that say what is wrong', () => {
  it.each([
    ['page[size]=0', /^page\[size\]: .*>=1/],
    ['page[size]=abc', /^page\[size\]: Invalid input: expected number/],
    ['page[size]=101', /^page\[size\]: .*<=100/],
    ['page[size]=2.5', /^page\[size\]: Invalid input: expected int/],
    ['page[number]=0', /^page\[number\]: .*>=1/],
    ['filter[status]=bogus', /^filter\[status\]: Invalid option: expected one of "inactive"\|"starting"\|"active"\|"stopping"$/],
    ['filter[status]=1', /^filter\[status\]: Invalid option/],
    ['filter[type]=realtime', /^filter\[type\]: Invalid option: expected one of "ordinary"\|"long_running"$/],
    ['filter[user]=ann', /^filter\[user\]: Invalid UUID$/],
    ['sort=bogus', /^sort: sort must be one of name, createdAt, updatedAt, with a leading - for descending$/],
    ['sort=-', /^sort: sort must be one of/],
    ['sort=status', /^sort: sort must be one of/],
    ['filter[statuss]=active', /^query: Unrecognized key: "filter\[statuss\]"$/],
    [`search=${'x'.repeat(201)}`, /^search: .*<=200 characters/],
  ])('%s', async (query, message) => {
    const res = await cp.request('GET', `/flows?${query}`, { token: ann.token });
    expect(res.status).toBe(400);
    expect(messages(res)).toHaveLength(1);
    expect(messages(res)[0]).toMatch(message);
  });
});
