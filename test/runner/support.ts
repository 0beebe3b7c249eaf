import { randomUUID } from 'node:crypto';
import { ingestExecutions } from '../../control-plane/edge/service.js';
import type { TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';

/** The misbehaving components of test/fixtures/components.ts, as a component of the caller's tenant; test runners trust that folder (FIXTURES_DIR). */
export async function registerFixtures(cp: TestControlPlane, token: string, name = 'fixtures'): Promise<string> {
  const functions = ['echo', 'flaky', 'explode', 'garbage', 'stray', 'crashOnce', 'slow', 'credential'].map((fn) => ({
    name: fn,
    kind: 'action',
  }));
  const res = await cp.request('POST', '/components', { token, body: { name, module: './components.ts', functions } });
  if (res.status !== 201) throw new Error(`cannot register the fixtures: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data.id;
}

/** A flow's graph of webhook.receive and `second` (id `next`). */
export const twoSteps = (second: Record<string, unknown>) => ({
  graph: {
    nodes: [
      { id: 'receive', componentId: 'webhook', function: 'receive' },
      { id: 'next', ...second },
    ],
    edges: [{ source: 'receive', target: 'next' }],
  },
});

export interface TestFlow {
  id: string;
  tenant: string;
}

/** Creates a flow and starts it; resolves once it is `until` (active by default). */
export async function startFlow(
  cp: TestControlPlane,
  token: string,
  body: Record<string, unknown>,
  until: 'active' | 'inactive' = 'active',
): Promise<TestFlow & { statusReason: string | null }> {
  const created = await cp.request('POST', '/flows', { token, body: { name: `flow-${randomUUID().slice(0, 8)}`, ...body } });
  if (created.status !== 201) throw new Error(`cannot create the flow: ${created.status} ${JSON.stringify(created.body)}`);
  const { id, tenant } = created.body.data;
  const started = await cp.request('POST', `/flows/${id}/start`, { token });
  if (started.status !== 200) throw new Error(`cannot start the flow: ${started.status} ${JSON.stringify(started.body)}`);
  const flow = await waitFor(
    () => cp.request('GET', `/flows/${id}`, { token }),
    (r) => r.body.data.status === until,
    60_000,
  );
  return { id, tenant, statusReason: flow.body.data.statusReason };
}

export async function stopFlow(cp: TestControlPlane, token: string, id: string): Promise<void> {
  await cp.request('POST', `/flows/${id}/stop`, { token });
  await waitFor(
    () => cp.request('GET', `/flows/${id}`, { token }),
    (r) => r.body.data.status === 'inactive',
    60_000,
  );
}

/** Delivers an execution of the flow as the edge does for a webhook call (recorded, flow.executed published); returns the flowExecId. */
export async function execute(cp: TestControlPlane, flow: TestFlow, data: unknown): Promise<string> {
  const flowExecId = randomUUID();
  await ingestExecutions(cp.services, [
    {
      flowId: flow.id,
      flowExecId,
      tenant: flow.tenant,
      trigger: 'manual',
      message: { id: randomUUID(), data, attachments: {}, headers: {}, metadata: {}, passthrough: {} },
      receivedAt: new Date().toISOString(),
    },
  ]);
  return flowExecId;
}

/** The execution record once it is no longer running. */
export async function finished(cp: TestControlPlane, token: string, flowExecId: string, timeoutMs = 30_000) {
  const res = await waitFor(
    () => cp.request('GET', `/executions/${flowExecId}`, { token }),
    (r) => r.status === 200 && r.body.data.status !== 'running',
    timeoutMs,
  );
  return res.body.data;
}

/** Each recorded output as [stepId, data]. */
export const outputsOf = (execution: { outputs: { stepId: string; message: { data: unknown } }[] }) =>
  execution.outputs.map((o) => [o.stepId, o.message.data]);
