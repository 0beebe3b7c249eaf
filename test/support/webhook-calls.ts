import { setTimeout as sleep } from 'node:timers/promises';
import { controlToken } from './edge.js';
import { waitFor } from './events.js';
import type { Stack } from './stack.js';

/** Creates and starts a webhook → jsonata flow and resolves once its webhook takes calls at the edge. */
export async function startWebhookFlow(stack: Stack): Promise<string> {
  const created = await stack.request('POST', '/flows', {
    token: stack.token,
    body: {
      name: 'faults',
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'map', componentId: 'jsonata', function: 'map', fields: { expression: '{ "n": n, "doubled": n * 2 }' } },
        ],
        edges: [{ source: 'receive', target: 'map' }],
      },
    },
  });
  if (created.status !== 201) throw new Error(`POST /flows: ${created.status} ${JSON.stringify(created.body)}`);
  const flowId = created.body.data.id as string;
  stack.flows.push(flowId);
  await stack.request('POST', `/flows/${flowId}/start`, { token: stack.token });
  await waitFor(
    async () => {
      const res = await fetch(`${stack.edge.url}/control/flows/${flowId}`, {
        headers: { authorization: `Bearer ${await controlToken()}` },
      });
      return ((await res.json()) as { data?: { trigger?: { status: string } | null } }).data?.trigger?.status;
    },
    (status) => status === 'live',
    60_000,
  );
  return flowId;
}

/** Webhook calls, one after another, until stopped: which were accepted (202, by flowExecId) and how many were not. */
export function callContinuously(stack: Stack, flowId: string): { accepted: string[]; refused: number; stop(): Promise<void> } {
  const calls = { accepted: [] as string[], refused: 0 };
  let running = true;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      const answer = await fetch(`${stack.edge.url}/hook/${flowId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ n }),
        signal: AbortSignal.timeout(10_000),
      }).then(
        async (res) => (res.status === 202 ? ((await res.json()) as { data: { flowExecId: string } }).data.flowExecId : null),
        () => null,
      );
      if (answer) calls.accepted.push(answer);
      else {
        calls.refused++;
        await sleep(100); // a part is down: no point in hammering it
      }
      await sleep(50);
    }
  })();
  return Object.assign(calls, {
    async stop() {
      running = false;
      await loop;
    },
  });
}

interface ExecutionSummary {
  flowExecId: string;
  status: string;
  steps: Record<string, { in: number; out: number; errors: number }>;
}

/** Every execution of the flow the control plane records. */
export async function executionsOf(stack: Stack, flowId: string): Promise<ExecutionSummary[]> {
  const all: ExecutionSummary[] = [];
  for (let page = 1; ; page++) {
    const res = await stack.request('GET', `/executions?filter[flowId]=${flowId}&page[size]=100&page[number]=${page}`, {
      token: stack.token,
    });
    if (res.status !== 200) throw new Error(`GET /executions: ${res.status}`);
    all.push(...res.body.data);
    if (res.body.data.length < 100) return all;
  }
}

/**
 * Waits until every accepted call is a succeeded execution, then answers what a fault may have
 * broken: accepted calls with no execution or one that did not succeed, executions nobody's call
 * made, and executions whose steps ran an input more than once.
 */
export async function settle(stack: Stack, flowId: string, accepted: string[], timeoutMs = 120_000) {
  const wanted = new Set(accepted);
  const executions = await waitFor(
    () => executionsOf(stack, flowId),
    (found) => found.filter((e) => wanted.has(e.flowExecId) && e.status === 'succeeded').length === wanted.size,
    timeoutMs,
  ).catch(async () => executionsOf(stack, flowId));
  const byId = new Map(executions.map((e) => [e.flowExecId, e]));
  return {
    missing: accepted.filter((id) => byId.get(id)?.status !== 'succeeded'),
    unexpected: executions.filter((e) => !wanted.has(e.flowExecId)).map((e) => e.flowExecId),
    duplicated: executions
      .filter((e) => e.steps.receive?.in !== 1 || e.steps.map?.in !== 1 || e.steps.map?.out !== 1)
      .map((e) => e.flowExecId),
    distinct: new Set(accepted).size === accepted.length,
  };
}
