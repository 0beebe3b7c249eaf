import type { FlowExecuted } from '../protocol/events.js';
import { callControlPlane } from './control-plane.js';
import type { Env } from './env.js';

/** Executions sent per request; the control plane accepts up to 100. */
export const BATCH = 100;
const FIRST_RETRY_MS = 1_000;
const LAST_RETRY_MS = 5 * 60_000;

/** After `failures` failed deliveries in a row: 1 s, 2 s, 4 s ... at most 5 minutes. */
export const retryDelay = (failures: number) => Math.min(LAST_RETRY_MS, FIRST_RETRY_MS * 2 ** (failures - 1));

export interface DeliveryAnswer {
  /** Every flowExecId the control plane has now (new or seen before): done at the edge. */
  settled: string[];
}

/** Sends a batch to the control plane; throws when it is unreachable or answers anything but 200. */
export async function deliver(env: Env, executions: FlowExecuted[]): Promise<DeliveryAnswer> {
  const response = await callControlPlane(env, '/api/v1/edge/executions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ executions }),
  });
  if (response.status !== 200) throw new Error(`control plane answered ${response.status}: ${(await response.text()).slice(0, 500)}`);
  const { data } = (await response.json()) as { data: { accepted: string[]; duplicates: string[]; rejected: { flowExecId: string }[] } };
  return { settled: [...data.accepted, ...data.duplicates, ...data.rejected.map((r) => r.flowExecId)] };
}
