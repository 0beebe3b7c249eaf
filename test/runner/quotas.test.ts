import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FLOW_EDGES, MAX_FLOW_STEPS } from '../../protocol/fleet.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { runnerAccount, startTestRunner, type TestRunner } from '../support/runner.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { startFlow, stopFlow } from './support.js';

/** A webhook step and `count - 1` jsonata steps after it. */
const ofSteps = (count: number) => {
  const ids = Array.from({ length: count - 1 }, (_, i) => `map${i}`);
  return {
    graph: {
      nodes: [
        { id: 'receive', componentId: 'webhook', function: 'receive' },
        ...ids.map((id) => ({ id, componentId: 'jsonata', function: 'map', fields: { expression: '$' } })),
      ],
      edges: ids.map((id) => ({ source: 'receive', target: id })),
    },
  };
};

/** Sharing platform-wide runners between tenants: quotas per tenant, and one limit on a flow's size on every side. */
describe('sharing runners fairly', () => {
  let cp: TestControlPlane;
  let alice: TestUser;
  let bob: TestUser;
  let shared: TestRunner;

  beforeAll(async () => {
    cp = await startTestControlPlane({
      env: { RUNNER_HEARTBEAT_SECONDS: '1', SHARED_RUNNER_STEPS_PER_TENANT: '4', SHARED_RUNNER_FLOWS_PER_TENANT: '2' },
    });
    alice = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    bob = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    shared = await startTestRunner(cp, { capacity: 8 });
  });
  afterAll(async () => {
    await shared?.stop();
    await cp?.close();
  });

  const reasonOf = (user: TestUser, id: string) =>
    waitFor(
      () => cp.request('GET', `/flows/${id}`, { token: user.token }),
      (r) => r.body.data.statusReason !== null,
    ).then((r) => r.body.data);

  async function startWaiting(user: TestUser, steps: number): Promise<string> {
    const created = await cp.request('POST', '/flows', { token: user.token, body: { name: `waits-${steps}`, ...ofSteps(steps) } });
    await cp.request('POST', `/flows/${created.body.data.id}/start`, { token: user.token });
    return created.body.data.id;
  }

  it('holds each tenant to its quota of step workers and flows on platform-wide runners, saying what it waits for, while others still run', async () => {
    const first = await startFlow(cp, alice.token, ofSteps(2));
    const waitsForWorkers = await startWaiting(alice, 3);
    expect(await reasonOf(alice, waitsForWorkers)).toMatchObject({
      status: 'starting',
      statusReason:
        'waiting for a runner of this tenant (or a platform-wide one) with the process or docker driver and room for 3 step workers; on platform-wide runners this tenant holds 2 of the 4 step workers (SHARED_RUNNER_STEPS_PER_TENANT) it may have there',
    });
    const second = await startFlow(cp, alice.token, ofSteps(1));
    const waitsForFlows = await startWaiting(alice, 1);
    expect((await reasonOf(alice, waitsForFlows)).statusReason).toMatch(
      /this tenant runs 2 of the 2 flows \(SHARED_RUNNER_FLOWS_PER_TENANT\) it may have there$/,
    );

    // The shared runner still has room, and another tenant gets it.
    const bobs = await startFlow(cp, bob.token, ofSteps(4));
    const runner = await cp.request('GET', `/runners/${shared.id}`, { token: await cp.login() });
    expect(runner.body.data.workers).toBe(2 + 1 + 4);

    // Room freed within the quota goes to a flow that waits for it.
    await stopFlow(cp, alice.token, waitsForWorkers);
    await stopFlow(cp, alice.token, first.id);
    await waitFor(
      () => cp.request('GET', `/flows/${waitsForFlows}`, { token: alice.token }),
      (r) => r.body.data.status === 'active',
      30_000,
    );
    for (const [user, id] of [
      [alice, second.id],
      [alice, waitsForFlows],
      [bob, bobs.id],
    ] as const)
      await stopFlow(cp, user.token, id);
  });

  it('fails a flow larger than the quota lets any one tenant hold, instead of waiting forever', async () => {
    const flow = await startFlow(cp, alice.token, ofSteps(5), 'inactive');
    expect(flow.statusReason).toBe(
      'the flow has 5 steps, more than any runner it may use can take: the largest has room for 4 step workers in all (one tenant holds at most 4 on platform-wide runners, SHARED_RUNNER_STEPS_PER_TENANT)',
    );
  });

  it('keeps a flow within the size every wire of the fleet carries: the flow model refuses more nodes than a runner can report', async () => {
    const tooMany = await cp.request('POST', '/flows', { token: alice.token, body: { name: 'huge', ...ofSteps(MAX_FLOW_STEPS + 1) } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.errors[0].message).toContain(`a flow has at most ${MAX_FLOW_STEPS} nodes`);
    const edges = Array.from({ length: MAX_FLOW_EDGES + 1 }, () => ({ source: 'receive', target: 'map0' }));
    const tooManyEdges = await cp.request('POST', '/flows', {
      token: alice.token,
      body: { name: 'dense', graph: { ...ofSteps(2).graph, edges } },
    });
    expect(tooManyEdges.status).toBe(400);
    expect(tooManyEdges.body.errors[0].message).toContain(`a flow has at most ${MAX_FLOW_EDGES} edges`);

    // The largest flow there may be: a runner reports every one of its steps in a heartbeat that is accepted.
    const account = await runnerAccount(cp);
    const registered = await cp.request('POST', '/runners', {
      token: account.token,
      body: { name: 'reporter', host: 'test', driver: 'process', capacity: MAX_FLOW_STEPS },
    });
    expect(registered.status).toBe(201);
    const steps = Array.from({ length: MAX_FLOW_STEPS }, (_, i) => ({ stepId: `step${i}`, state: 'ready' }));
    const beat = await cp.request('POST', `/runners/${registered.body.data.id}/heartbeat`, {
      token: account.token,
      body: { deployments: [{ flowId: '7d0c6c1e-0000-4000-8000-000000000001', generation: 1, state: 'ready', steps }] },
    });
    expect(beat.status).toBeLessThan(300);
  });
});
