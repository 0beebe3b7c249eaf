import { SignJWT } from 'jose';
import type { FlowExecuted } from '../protocol/events.js';
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

/**
 * Sends a batch to the control plane, authenticated with a short-lived token on EDGE_CONTROL_SECRET.
 * Throws when the control plane is unreachable or answers anything but 200.
 */
export async function deliver(env: Env, executions: FlowExecuted[]): Promise<DeliveryAnswer> {
  if (!env.CONTROL_PLANE_URL) throw new Error('CONTROL_PLANE_URL is not set');
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('hookline-edge')
    .setAudience('hookline-control-plane')
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(new TextEncoder().encode(env.EDGE_CONTROL_SECRET));
  const response = await fetch(`${env.CONTROL_PLANE_URL.replace(/\/+$/, '')}/api/v1/edge/executions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ executions }),
  });
  if (response.status !== 200) throw new Error(`control plane answered ${response.status}: ${(await response.text()).slice(0, 500)}`);
  const { data } = (await response.json()) as { data: { accepted: string[]; duplicates: string[]; rejected: { flowExecId: string }[] } };
  return { settled: [...data.accepted, ...data.duplicates, ...data.rejected.map((r) => r.flowExecId)] };
}
