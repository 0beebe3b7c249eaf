import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { runnerAccount, startTestRunner, type TestRunner } from '../support/runner.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { execute, finished, outputsOf, registerFixtures, startFlow, stopFlow, twoSteps } from './support.js';

/** Placement, scopes and what a flow's steps may use, on the embedded defaults (in-process bus, process driver). */
describe('placing flows on runners', () => {
  let cp: TestControlPlane;
  let alice: TestUser;
  let bob: TestUser;
  let aliceRunner: TestRunner;
  const others: TestRunner[] = [];

  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { RUNNER_HEARTBEAT_SECONDS: '1' } });
    alice = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    bob = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    await registerFixtures(cp, alice.token);
    aliceRunner = await startTestRunner(cp, { token: (await runnerAccount(cp, alice.tenantId)).token, capacity: 4 });
  });
  afterAll(async () => {
    for (const runner of [aliceRunner, ...others]) await runner?.stop();
    await cp?.close();
  });

  it('fails a flow at once, naming what is missing: a component, a function, a module', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ componentId: 'no-such-component', function: 'run' }, /step next: there is no component "no-such-component" this tenant may use/],
      [{ componentId: 'jsonata', function: 'transform' }, /step next: component jsonata has no function "transform" \(it offers map\)/],
    ];
    for (const [node, reason] of cases) {
      const flow = await startFlow(cp, alice.token, twoSteps(node), 'inactive');
      expect(flow.statusReason).toMatch(reason);
    }
    const lost = await cp.request('POST', '/components', {
      token: alice.token,
      body: { name: 'lost', module: './nowhere/component.mjs', functions: [{ name: 'run', kind: 'action' }] },
    });
    expect(lost.status).toBe(201);
    const flow = await startFlow(cp, alice.token, twoSteps({ componentId: 'lost', function: 'run' }), 'inactive');
    expect(flow.statusReason).toBe(
      'component lost: module ./nowhere/component.mjs cannot be found in the folders RUNNER_TRUSTED_MODULES lists',
    );
    expect((await cp.request('GET', `/runners/${aliceRunner.id}`, { token: alice.token })).body.data.workers).toBe(0);
  });

  it('fails a flow whose step crashes at every start, with what the worker said', async () => {
    const broken = await cp.request('POST', '/components', {
      token: alice.token,
      body: { name: 'broken', module: './broken-component.ts', functions: [{ name: 'run', kind: 'action' }] },
    });
    expect(broken.status).toBe(201);
    const flow = await startFlow(cp, alice.token, twoSteps({ componentId: 'broken', function: 'run' }), 'inactive');
    expect(flow.statusReason).toMatch(
      /^step next crashed 3 times before it was ready; it exited with code 1: the step worker cannot start: this component cannot be loaded/,
    );
  });

  it('runs a tenant’s flows on its own runners only; another tenant’s flow waits for a runner, saying so, until one of its own comes', async () => {
    const mine = await startFlow(cp, alice.token, twoSteps({ componentId: 'jsonata', function: 'map', fields: { expression: '$' } }));
    const created = await cp.request('POST', '/flows', {
      token: bob.token,
      body: { name: 'bob’s', ...twoSteps({ componentId: 'jsonata', function: 'map', fields: { expression: '$' } }) },
    });
    const theirs = created.body.data.id as string;
    await cp.request('POST', `/flows/${theirs}/start`, { token: bob.token });
    const waiting = await waitFor(
      () => cp.request('GET', `/flows/${theirs}`, { token: bob.token }),
      (r) => r.body.data.statusReason !== null,
    );
    expect(waiting.body.data).toMatchObject({
      status: 'starting',
      statusReason: expect.stringMatching(
        /^waiting for a runner of this tenant \(or a platform-wide one\) with the process or docker driver and room for 2 step workers$/,
      ),
    });
    expect(
      (await cp.request('GET', `/runners/${aliceRunner.id}`, { token: alice.token })).body.data.deployments.map(
        (d: { flowId: string }) => d.flowId,
      ),
    ).toEqual([mine.id]);
    expect((await cp.request('GET', `/runners/${aliceRunner.id}`, { token: bob.token })).status).toBe(404);

    others.push(await startTestRunner(cp, { token: (await runnerAccount(cp, bob.tenantId)).token }));
    await waitFor(
      () => cp.request('GET', `/flows/${theirs}`, { token: bob.token }),
      (r) => r.body.data.status === 'active',
      30_000,
    );
    expect((await cp.request('GET', `/flows/${theirs}`, { token: bob.token })).body.data.statusReason).toBeNull();
    await stopFlow(cp, bob.token, theirs);
    await stopFlow(cp, alice.token, mine.id);
  });

  it('places a flow only where it has room, and fails one larger than any runner it may use', async () => {
    const fanOut = (ids: string[]) => ({
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          ...ids.map((id) => ({ id, componentId: 'jsonata', function: 'map', fields: { expression: '$' } })),
        ],
        edges: ids.map((id) => ({ source: 'receive', target: id })),
      },
    });
    const five = await startFlow(cp, alice.token, fanOut(['a', 'b', 'c', 'd']), 'inactive');
    expect(five.statusReason).toBe(
      'the flow has 5 steps, more than any runner it may use can take: the largest has room for 4 step workers in all',
    );

    const three = await startFlow(cp, alice.token, fanOut(['a', 'b']));
    const created = await cp.request('POST', '/flows', { token: alice.token, body: { name: 'two', ...fanOut(['a']) } });
    const two = created.body.data.id as string;
    await cp.request('POST', `/flows/${two}/start`, { token: alice.token });
    const waiting = await waitFor(
      () => cp.request('GET', `/flows/${two}`, { token: alice.token }),
      (r) => r.body.data.statusReason !== null,
    );
    expect(waiting.body.data).toMatchObject({ status: 'starting', statusReason: expect.stringMatching(/room for 2 step workers$/) });
    await stopFlow(cp, alice.token, three.id);
    await waitFor(
      () => cp.request('GET', `/flows/${two}`, { token: alice.token }),
      (r) => r.body.data.status === 'active',
      30_000,
    );
    await stopFlow(cp, alice.token, two);
  });

  it('gives a step its credential through its step token, and checks outputs against the step’s output schema', async () => {
    const secret = await cp.request('POST', '/api/v1/secrets', {
      token: alice.token,
      body: { name: 'crm', type: 'API_KEY', value: { key: 'k'.repeat(24), headerName: 'x-api-key' } },
    });
    const domain = await cp.request('POST', '/api/v1/domains', { token: alice.token, body: { name: 'orders' } });
    const schema = await cp.request('POST', `/api/v1/domains/${domain.body.data.id}/schemas`, {
      token: alice.token,
      body: { uri: 'order.json', value: { type: 'object', required: ['total'], properties: { total: { type: 'number' } } } },
    });
    expect(schema.status).toBe(201);
    const flow = await startFlow(cp, alice.token, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'secret', componentId: 'fixtures', function: 'credential', credentials_id: secret.body.data.id },
          {
            id: 'checked',
            componentId: 'jsonata',
            function: 'map',
            fields: { expression: '{ "total": total }' },
            nodeSettings: { outputSchema: { domainId: domain.body.data.id, uri: 'order.json' } },
          },
        ],
        edges: [
          { source: 'receive', target: 'secret' },
          { source: 'receive', target: 'checked' },
        ],
      },
    });
    const good = await finished(cp, alice.token, await execute(cp, flow, { total: 12 }));
    expect(good.status).toBe('succeeded');
    expect(outputsOf(good)).toEqual(
      expect.arrayContaining([
        ['secret', { fields: ['headerName', 'key'], keyLength: 24 }],
        ['checked', { total: 12 }],
      ]),
    );
    const bad = await finished(cp, alice.token, await execute(cp, flow, { total: 'twelve' }));
    expect(bad.status).toBe('failed');
    expect(bad.errors).toEqual([
      expect.objectContaining({
        stepId: 'checked',
        error: expect.objectContaining({
          message: expect.stringMatching(/^the output does not match the output schema .*order\.json: \/total must be number$/),
        }),
      }),
    ]);

    const logs = await waitFor(
      () => cp.request('GET', `/flows/${flow.id}/steps/checked/logs?page[size]=10`, { token: alice.token }),
      (r) => r.body.data.some((l: { line: string }) => l.line.includes('step worker ready')),
    );
    expect(logs.body.data.length).toBeLessThanOrEqual(10);
    expect((await cp.request('GET', `/flows/${flow.id}/steps/checked/logs`, { token: bob.token })).status).toBe(404);
    await stopFlow(cp, alice.token, flow.id);
  });
});
