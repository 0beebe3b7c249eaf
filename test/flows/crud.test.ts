import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flows } from '../../control-plane/flows/schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { countFlows, createFlow, eventsAbout, flowBody } from './support.js';
import { collectEvents, waitFor } from '../support/events.js';

let cp: TestControlPlane;
let user: TestUser;

beforeAll(async () => {
  cp = await startTestControlPlane();
  user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
});
afterAll(() => cp?.close());

const messages = (res: { body: any }) => (res.body.errors as { message: string }[]).map((e) => e.message);
const storedRow = async (id: string) => (await cp.services.db.select().from(flows).where(eq(flows.id, id)))[0];

describe('POST /flows', () => {
  it('refuses webhook auth naming a secret that is not an API_KEY secret of the tenant, and never takes a secret value', async () => {
    const simple = await cp.request('POST', '/api/v1/secrets', {
      token: user.token,
      body: { name: 'login', type: 'SIMPLE', value: { username: 'u', passphrase: 'p' } },
    });
    const cases: [string, RegExp][] = [
      [randomUUID(), /^flowSettings\.webhooks\.auth: no secret .+ that you may read/],
      [simple.body.data.id, /No API_KEY secret/],
    ];
    for (const [secretId, message] of cases) {
      const res = await cp.request('POST', '/flows', {
        token: user.token,
        body: flowBody({ flowSettings: { webhooks: { auth: { type: 'bearer', secretId } } } }),
      });
      expect(res.status).toBe(400);
      expect(messages(res).join(' ')).toMatch(message);
    }
    const inline = await cp.request('POST', '/flows', {
      token: user.token,
      body: flowBody({ flowSettings: { webhooks: { auth: { type: 'bearer', token: 'inline-secret-value-123' } } } }),
    });
    expect(inline.status).toBe(400);
  });

  it('creates an inactive flow in the caller’s tenant, owned by the caller and the tenant, and emits flowrepo.flow.created', async () => {
    const events = await collectEvents(cp, 'flowrepo.#');
    const secret = await cp.request('POST', '/api/v1/secrets', {
      token: user.token,
      body: { name: 'webhook token', type: 'API_KEY', value: { key: 'a-caller-token-0123456789' }, shared: true },
    });
    const auth = { type: 'bearer', secretId: secret.body.data.id };
    const res = await cp.request('POST', '/flows', {
      token: user.token,
      body: flowBody({ cron: '*/5 * * * *', timezone: 'Europe/Berlin', flowSettings: { webhooks: { auth } } }),
    });
    expect(res.status).toBe(201);
    const flow = res.body.data;
    expect(flow).toMatchObject({
      name: 'Orders to CRM',
      description: 'Receives orders and maps them',
      status: 'inactive',
      type: 'ordinary',
      cron: '*/5 * * * *',
      timezone: 'Europe/Berlin',
      tenant: user.tenantId,
      graph: flowBody().graph,
      flowSettings: { webhooks: { auth } },
    });
    expect(flow.owners).toEqual(
      expect.arrayContaining([
        { id: user.id, type: 'user' },
        { id: user.tenantId, type: 'tenant' },
      ]),
    );
    expect(flow.owners).toHaveLength(2);
    expect(Date.parse(flow.createdAt)).not.toBeNaN();

    const read = await cp.request('GET', `/flows/${flow.id}`, { token: user.token });
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual(flow);

    const [created] = await waitFor(
      async () => eventsAbout(events, 'flowrepo.flow.created', flow.id),
      (found) => found.length === 1,
    );
    expect(created!.payload).toEqual({ flowId: flow.id, tenant: user.tenantId, user: user.id });
    expect(created!.headers.serviceName).toBe('flow-repository');
  });

  it('keeps owners the client names, adding the caller and tenant once', async () => {
    const other = { id: '11111111-1111-4111-8111-111111111111', type: 'user' };
    const flow = await createFlow(cp, user.token, { owners: [other, { id: user.id, type: 'user' }] });
    expect(flow.owners).toEqual([other, { id: user.id, type: 'user' }, { id: user.tenantId, type: 'tenant' }]);
  });

  it('accepts a long_running single-node flow without edges', async () => {
    const flow = await createFlow(cp, user.token, {
      type: 'long_running',
      graph: { nodes: [{ id: 'only', componentId: 'c', function: 'f' }] },
    });
    expect(flow.type).toBe('long_running');
    expect(flow.graph.edges).toEqual([]);
  });
});

describe('validation: one clear message per broken rule, nothing stored', () => {
  const node = (id: string) => ({ id, componentId: 'component', function: 'run' });
  const cases: [string, Record<string, unknown>, (string | RegExp)[]][] = [
    ['no nodes', { graph: { nodes: [], edges: [] } }, ['graph.nodes: a flow needs at least one node']],
    [
      'an edge from a node that does not exist',
      { graph: { nodes: [node('a'), node('b')], edges: [{ source: 'ghost', target: 'b' }] } },
      ['graph.edges[0].source: "ghost" is not a node of this flow'],
    ],
    [
      'an edge to a node that does not exist',
      {
        graph: {
          nodes: [node('a'), node('b')],
          edges: [
            { source: 'a', target: 'b' },
            { source: 'b', target: 'ghost' },
          ],
        },
      },
      ['graph.edges[1].target: "ghost" is not a node of this flow'],
    ],
    [
      'several nodes without edges',
      { graph: { nodes: [node('a'), node('b')] } },
      ['graph.edges: a flow with several nodes needs edges between them'],
    ],
    [
      'two first steps',
      {
        graph: {
          nodes: [node('a'), node('b'), node('c')],
          edges: [
            { source: 'a', target: 'c' },
            { source: 'b', target: 'c' },
          ],
        },
      },
      ['graph: a flow has exactly one first step (a node no edge targets), found "a", "b"'],
    ],
    [
      'no first step',
      {
        graph: {
          nodes: [node('a'), node('b')],
          edges: [
            { source: 'a', target: 'b' },
            { source: 'b', target: 'a' },
          ],
        },
      },
      ['graph: every node is the target of an edge, so the flow has no first step'],
    ],
    [
      'a node id used twice',
      { graph: { nodes: [node('a'), node('a')], edges: [{ source: 'a', target: 'a' }] } },
      ['graph.nodes: node id "a" is used more than once'],
    ],
    ['an invalid cron expression', { cron: 'every monday' }, [/^cron: "every monday" is not a valid cron expression \(.+\)$/]],
    [
      'an unknown time zone',
      { cron: '0 * * * *', timezone: 'Mars/Olympus_Mons' },
      ['timezone: "Mars/Olympus_Mons" is not an IANA time zone such as Europe/Berlin'],
    ],
    ['a status', { status: 'active' }, ['status: cannot be set by clients; use POST /flows/{id}/start or /flows/{id}/stop']],
    ['an empty name', { name: '  ' }, [/^name: .*>=1 characters/]],
    ['a name of the wrong type', { name: 42 }, ['name: Invalid input: expected string, received number']],
    ['an unknown field', { colour: 'red' }, ['body: Unrecognized key: "colour"']],
    ['an unknown node field', { graph: { nodes: [{ ...node('a'), image: 'x' }] } }, ['graph.nodes.0: Unrecognized key: "image"']],
    ['an unknown type', { type: 'realtime' }, [/^type: Invalid option: expected one of "ordinary"\|"long_running"$/]],
    [
      'a node id that cannot name a queue',
      { graph: { nodes: [node('a.b')] } },
      [/^graph.nodes.0.id: must be letters, digits, _ or - \(it names the step’s queue\)$/],
    ],
    [
      'a concurrency of 0',
      { graph: { nodes: [{ ...node('a'), nodeSettings: { concurrency: 0 } }] } },
      [/^graph.nodes.0.nodeSettings.concurrency: .*>=1/],
    ],
    [
      'more retries than allowed',
      { graph: { nodes: [{ ...node('a'), nodeSettings: { retry: { maxAttempts: 50 } } }] } },
      [/^graph.nodes.0.nodeSettings.retry.maxAttempts: .*<=10/],
    ],
    [
      'an output schema without its domain',
      { graph: { nodes: [{ ...node('a'), nodeSettings: { outputSchema: { uri: 'order.json' } } }] } },
      [/^graph.nodes.0.nodeSettings.outputSchema.domainId: /],
    ],
    [
      'a retry delay of the wrong type',
      { flowSettings: { retry: { baseDelayMs: 'soon' } } },
      [/^flowSettings.retry.baseDelayMs: Invalid input: expected number/],
    ],
    [
      'several broken rules at once',
      { status: 'active', timezone: 'Nowhere/Nothing', graph: { nodes: [node('a'), node('b')], edges: [{ source: 'a', target: 'x' }] } },
      [
        'status: cannot be set by clients; use POST /flows/{id}/start or /flows/{id}/stop',
        'graph.edges[0].target: "x" is not a node of this flow',
        'timezone: "Nowhere/Nothing" is not an IANA time zone such as Europe/Berlin',
      ],
    ],
  ];

  it.each(cases)('POST rejects %s', async (_rule, overrides, expected) => {
    const before = await countFlows(cp);
    const res = await cp.request('POST', '/flows', { token: user.token, body: flowBody(overrides) });
    expect(res.status).toBe(400);
    expect(res.body.errors.every((e: { code: string }) => e.code === 'validation_error')).toBe(true);
    const got = messages(res);
    expect(got).toHaveLength(expected.length);
    for (const [i, message] of expected.entries()) {
      if (typeof message === 'string') expect(got[i]).toBe(message);
      else expect(got[i]).toMatch(message);
    }
    expect(await countFlows(cp)).toBe(before);
  });

  it('POST accepts a six-field cron expression in a time zone', async () => {
    const flow = await createFlow(cp, user.token, { cron: '0 30 9 * * 1-5', timezone: 'America/New_York' });
    expect(flow).toMatchObject({ cron: '0 30 9 * * 1-5', timezone: 'America/New_York' });
  });

  it('POST rejects malformed JSON, a body that is not an object (400) and a body that is not JSON (415)', async () => {
    const before = await countFlows(cp);
    const malformed = await cp.request('POST', '/flows', { token: user.token, body: '{"name":' });
    expect(malformed.status).toBe(400);
    expect(messages(malformed)).toEqual(['Malformed JSON in request body']);
    const array = await cp.request('POST', '/flows', { token: user.token, body: [flowBody()] });
    expect(array.status).toBe(400);
    expect(messages(array)).toEqual(['body: Invalid input: expected object, received array']);
    const text = await cp.request('POST', '/flows', { token: user.token, body: 'name=x', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(messages(text)).toEqual(['Unsupported Media Type']);
    expect(await countFlows(cp)).toBe(before);
  });
});

describe('GET /flows/{id}', () => {
  it('answers 400 for a malformed id and 404 for an unknown one', async () => {
    const malformed = await cp.request('GET', '/flows/not-a-uuid', { token: user.token });
    expect(malformed.status).toBe(400);
    expect(messages(malformed)).toEqual(['id: Invalid UUID']);
    const unknown = await cp.request('GET', '/flows/00000000-0000-4000-8000-000000000000', { token: user.token });
    expect(unknown.status).toBe(404);
    expect(messages(unknown)).toEqual(['Flow 00000000-0000-4000-8000-000000000000 not found']);
  });
});

describe('PATCH /flows/{id}', () => {
  it('merges the body into the stored flow, replaces the graph whole and emits flowrepo.flow.modified', async () => {
    const flow = await createFlow(cp, user.token, { cron: '0 * * * *' });
    const events = await collectEvents(cp, 'flowrepo.flow.modified');
    const graph = { nodes: [{ id: 'only', componentId: 'http', function: 'get' }] };
    const res = await cp.request('PATCH', `/flows/${flow.id}`, {
      token: user.token,
      body: { name: 'Renamed', graph, timezone: 'Asia/Tokyo' },
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      id: flow.id,
      name: 'Renamed',
      description: flow.description,
      cron: '0 * * * *',
      timezone: 'Asia/Tokyo',
      graph: { nodes: graph.nodes, edges: [] },
      owners: flow.owners,
      status: 'inactive',
      tenant: user.tenantId,
      createdAt: flow.createdAt,
    });
    expect(Date.parse(res.body.data.updatedAt)).toBeGreaterThan(Date.parse(flow.updatedAt));
    expect((await cp.request('GET', `/flows/${flow.id}`, { token: user.token })).body.data).toEqual(res.body.data);
    const [modified] = await waitFor(
      async () => eventsAbout(events, 'flowrepo.flow.modified', flow.id),
      (found) => found.length === 1,
    );
    expect(modified!.payload).toEqual({ flowId: flow.id, tenant: user.tenantId, user: user.id });
  });

  it('clears optional fields set to null and keeps the tenant among the owners', async () => {
    const flow = await createFlow(cp, user.token, { cron: '0 * * * *', timezone: 'UTC' });
    const res = await cp.request('PATCH', `/flows/${flow.id}`, {
      token: user.token,
      body: { description: null, cron: null, timezone: null, owners: [] },
    });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ description: null, cron: null, timezone: null, owners: [{ id: user.tenantId, type: 'tenant' }] });
  });

  const brokenPatches: [string, Record<string, unknown>, (string | RegExp)[]][] = [
    ['a graph without nodes', { graph: { nodes: [] } }, ['graph.nodes: a flow needs at least one node']],
    [
      'a graph whose edge ends nowhere',
      { graph: { nodes: [{ id: 'a', componentId: 'c', function: 'f' }], edges: [{ source: 'a', target: 'b' }] } },
      ['graph.edges[0].target: "b" is not a node of this flow'],
    ],
    [
      'a time zone the stored cron cannot use',
      { timezone: 'Not/AZone' },
      ['timezone: "Not/AZone" is not an IANA time zone such as Europe/Berlin'],
    ],
    ['an invalid cron', { cron: '61 * * * *' }, [/^cron: "61 \* \* \* \*" is not a valid cron expression/]],
    ['a status', { status: 'inactive' }, ['status: cannot be set by clients; use POST /flows/{id}/start or /flows/{id}/stop']],
    ['an unknown field', { tenant: 'another' }, ['body: Unrecognized key: "tenant"']],
    ['a wrong type', { graph: 'a graph' }, ['graph: Invalid input: expected object, received string']],
    ['a null name', { name: null }, ['name: Invalid input: expected string, received null']],
  ];

  it.each(brokenPatches)('rejects %s and changes nothing', async (_rule, body, expected) => {
    const flow = await createFlow(cp, user.token, { cron: '0 * * * *' });
    const before = await storedRow(flow.id);
    const res = await cp.request('PATCH', `/flows/${flow.id}`, { token: user.token, body });
    expect(res.status).toBe(400);
    const got = messages(res);
    expect(got).toHaveLength(expected.length);
    for (const [i, message] of expected.entries()) {
      if (typeof message === 'string') expect(got[i]).toBe(message);
      else expect(got[i]).toMatch(message);
    }
    expect(await storedRow(flow.id)).toEqual(before);
  });

  it('rejects malformed JSON, a malformed id and an unknown id, changing nothing', async () => {
    const flow = await createFlow(cp, user.token);
    const before = await storedRow(flow.id);
    const malformed = await cp.request('PATCH', `/flows/${flow.id}`, { token: user.token, body: '{"name": "x"' });
    expect(malformed.status).toBe(400);
    expect(messages(malformed)).toEqual(['Malformed JSON in request body']);
    const badId = await cp.request('PATCH', '/flows/123', { token: user.token, body: { name: 'x' } });
    expect(badId.status).toBe(400);
    expect(messages(badId)).toEqual(['id: Invalid UUID']);
    const unknown = await cp.request('PATCH', '/flows/00000000-0000-4000-8000-000000000000', { token: user.token, body: { name: 'x' } });
    expect(unknown.status).toBe(404);
    expect(await storedRow(flow.id)).toEqual(before);
  });
});

describe('DELETE /flows/{id}', () => {
  it('deletes an inactive flow (204), emits flowrepo.flow.deleted, and then it is gone', async () => {
    const flow = await createFlow(cp, user.token);
    const events = await collectEvents(cp, 'flowrepo.flow.deleted');
    const res = await cp.request('DELETE', `/flows/${flow.id}`, { token: user.token });
    expect(res.status).toBe(204);
    expect(await storedRow(flow.id)).toBeUndefined();
    expect((await cp.request('GET', `/flows/${flow.id}`, { token: user.token })).status).toBe(404);
    expect((await cp.request('DELETE', `/flows/${flow.id}`, { token: user.token })).status).toBe(404);
    const [deleted] = await waitFor(
      async () => eventsAbout(events, 'flowrepo.flow.deleted', flow.id),
      (found) => found.length === 1,
    );
    expect(deleted!.payload).toEqual({ flowId: flow.id, tenant: user.tenantId, user: user.id });
  });

  it('answers 400 for a malformed id, deleting nothing', async () => {
    const before = await countFlows(cp);
    const res = await cp.request('DELETE', '/flows/%27%20or%201=1', { token: user.token });
    expect(res.status).toBe(400);
    expect(await countFlows(cp)).toBe(before);
  });
});

describe('the OpenAPI document', () => {
  it('describes every flow route with its schemas', async () => {
    const res = await cp.request('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const paths = res.body.paths;
    expect(Object.keys(paths['/flows'])).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(paths['/flows/{id}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
    expect(paths['/flows/{id}/start'].post.responses).toHaveProperty('409');
    expect(paths['/flows/{id}/stop'].post.responses).toHaveProperty('200');
    expect(res.body.components.schemas).toHaveProperty('Flow');
    expect(res.body.components.schemas).toHaveProperty('FlowCreate');
  });
});
