import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';
import { FIXTURES_DIR, runnerAccount, startTestRunner, type TestRunner } from '../support/runner.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { execute, finished, outputsOf, registerFixtures, startFlow, stopFlow } from './support.js';

const withStep = (componentId: string) => ({
  graph: {
    nodes: [
      { id: 'receive', componentId: 'webhook', function: 'receive' },
      { id: 'next', componentId, function: 'echo' },
    ],
    edges: [{ source: 'receive', target: 'next' }],
  },
});

/** A tenant's component runs as the runner's user only where the runner's operator trusts it (RUNNER_TRUSTED_MODULES); placement knows what each runner trusts. */
describe('tenant components on process runners', () => {
  let cp: TestControlPlane;
  let alice: TestUser;
  let runnerToken: string;
  let untrusting: TestRunner;
  let trusting: TestRunner | undefined;
  let failed: EventEnvelope[];
  const runnerOf = (runner: TestRunner) => cp.request('GET', `/runners/${runner.id}`, { token: alice.token });

  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { RUNNER_HEARTBEAT_SECONDS: '1' } });
    alice = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    await registerFixtures(cp, alice.token, 'crm');
    const both = await cp.request('POST', '/components', {
      token: alice.token,
      body: { name: 'crm-anywhere', module: './components.ts', image: 'acme/crm:1', functions: [{ name: 'echo', kind: 'action' }] },
    });
    expect(both.status).toBe(201);
    failed = await collectEvents(cp, 'flow.failed');
    runnerToken = (await runnerAccount(cp, alice.tenantId)).token;
    // The fleet: one process runner whose operator trusts nothing but the built-ins.
    untrusting = await startTestRunner(cp, { token: runnerToken, name: 'untrusting', trustedModules: '', capacity: 16 });
  });
  afterAll(async () => {
    for (const runner of [untrusting, trusting]) await runner?.stop();
    await cp?.close();
  });

  it('a runner reports what it trusts when it registers', async () => {
    expect((await runnerOf(untrusting)).body.data.trustedModules).toEqual({ packages: [], folders: false });
  });

  it('fails a flow with a tenant’s component on a process-only fleet that trusts none of it, saying it runs in a container unless trusted', async () => {
    for (const component of ['crm', 'crm-anywhere']) {
      const flow = await startFlow(cp, alice.token, withStep(component), 'inactive');
      expect(flow.statusReason, component).toBe(
        `step next: component ${component} runs in a container unless the operator of a process runner trusts its module ./components.ts (RUNNER_TRUSTED_MODULES); among the runners this flow may use, there is no docker runner and no process runner trusts it`,
      );
      await waitFor(
        async () => failed.filter((e) => (e.payload as { id: string }).id === flow.id),
        (found) => found.length === 1,
      );
    }
    expect((await runnerOf(untrusting)).body.data.workers).toBe(0);
    // The built-ins run there all the same.
    const builtins = await startFlow(cp, alice.token, {
      graph: { nodes: [{ id: 'receive', componentId: 'webhook', function: 'receive' }], edges: [] },
    });
    await stopFlow(cp, alice.token, builtins.id);
  });

  it('places a tenant’s component on the process runner that trusts its module, though another has more room, and runs it there; a full one makes it wait', async () => {
    trusting = await startTestRunner(cp, { token: runnerToken, name: 'trusting', trustedModules: FIXTURES_DIR, capacity: 2 });
    expect((await runnerOf(trusting)).body.data.trustedModules).toEqual({ packages: [], folders: true });
    const flow = await startFlow(cp, alice.token, withStep('crm'));
    expect((await runnerOf(trusting)).body.data.deployments.map((d: { flowId: string }) => d.flowId)).toEqual([flow.id]);
    // Not there (the built-ins' flow stopped above may still be listed there as removed, until its runner reports again).
    expect((await runnerOf(untrusting)).body.data.deployments.filter((d: { flowId: string }) => d.flowId === flow.id)).toEqual([]);
    const execution = await finished(cp, alice.token, await execute(cp, flow, { deal: 42 }));
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toContainEqual(['next', { deal: 42, attempt: 1 }]);

    // No room on the one runner that may run it: a wait, not a failure.
    const created = await cp.request('POST', '/flows', { token: alice.token, body: { name: 'second', ...withStep('crm') } });
    const second = created.body.data.id as string;
    await cp.request('POST', `/flows/${second}/start`, { token: alice.token });
    const waiting = await waitFor(
      () => cp.request('GET', `/flows/${second}`, { token: alice.token }),
      (r) => r.body.data.statusReason !== null,
      15_000,
    );
    expect(waiting.body.data).toMatchObject({
      status: 'starting',
      statusReason: expect.stringMatching(/^waiting for a runner .* room for 2 step workers$/),
    });
    await stopFlow(cp, alice.token, second);
    await stopFlow(cp, alice.token, flow.id);
  });
});
