import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { execute, finished, outputsOf, startFlow, stopFlow } from './support.js';

/** A chain of steps after the webhook's: each is a jsonata.map node. */
const chain = (steps: Record<string, unknown>[], flowSettings: Record<string, unknown> = {}) => {
  const nodes = [
    { id: 'receive', componentId: 'webhook', function: 'receive' },
    ...steps.map((fields, i) => ({ id: `s${i + 1}`, componentId: 'jsonata', function: 'map', fields })),
  ];
  return { flowSettings, graph: { nodes, edges: nodes.slice(1).map((node, i) => ({ source: nodes[i]!.id, target: node.id })) } };
};
const split20 = { expression: '[1..20]', split: true };

/** What one execution may grow into: a cap on its messages, and messages that do not grow step by step. */
describe('growth within one execution', () => {
  let cp: TestControlPlane;
  let user: TestUser;
  let runner: TestRunner;

  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { EXECUTION_MAX_MESSAGES: '100' } });
    user = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    runner = await startTestRunner(cp);
  });
  afterAll(async () => {
    await runner?.stop();
    await cp?.close();
  });

  it('fails an execution that would make more messages than its cap, naming the step, however the graph fans out', async () => {
    // 1 + 20 + 20 × 20: past 100 at the second split. A flow cannot raise the operator's cap.
    const flow = await startFlow(cp, user.token, chain([split20, split20, { expression: '$' }], { maxMessages: 1_000_000 }));
    const execution = await finished(cp, user.token, await execute(cp, flow, {}));
    expect(execution.status).toBe('failed');
    expect(execution.reason).toMatch(
      /^step s2 failed: the execution passed its limit of 100 messages between steps: this input would make 20 more, and at most 3 may follow from it/,
    );
    expect(execution.steps.s3).toBeUndefined();
    await stopFlow(cp, user.token, flow.id);

    // Within the cap: 1 + 20 + 20 × 2 = 61 messages.
    const small = await startFlow(cp, user.token, chain([split20, { expression: '[1, 2]', split: true }]));
    const ok = await finished(cp, user.token, await execute(cp, small, {}));
    expect(ok.status).toBe('succeeded');
    expect(ok.steps.s2.out).toBe(40);
    await stopFlow(cp, user.token, small.id);
  });

  it('carries a large payload through many steps: messages do not grow with each step unless passthrough is asked for', async () => {
    const big = { blob: 'x'.repeat(3 * 1024 * 1024) };
    const flow = await startFlow(
      cp,
      user.token,
      chain([{ expression: '$' }, { expression: '$' }, { expression: '$' }, { expression: '{ "length": $length(blob) }' }]),
    );
    const execution = await finished(cp, user.token, await execute(cp, flow, big), 60_000);
    expect(execution.status, execution.reason).toBe('succeeded');
    expect(outputsOf(execution)).toContainEqual(['s4', { length: big.blob.length }]);
    await stopFlow(cp, user.token, flow.id);

    const along = await startFlow(
      cp,
      user.token,
      chain(
        [
          { expression: '{ "doubled": n * 2 }' },
          { expression: '{ "first": $passthrough.receive.data.n, "second": $passthrough.s1.data.doubled }' },
        ],
        { passthrough: true },
      ),
    );
    const read = await finished(cp, user.token, await execute(cp, along, { n: 21 }));
    expect(outputsOf(read)).toContainEqual(['s2', { first: 21, second: 42 }]);
    await stopFlow(cp, user.token, along.id);
  });
});
