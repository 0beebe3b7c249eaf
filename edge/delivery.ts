import { backoff } from '../protocol/backoff.js';
import { DELIVERY_ENVELOPE_BYTES, DELIVERY_LIMITS } from '../protocol/edge.js';
import type { FlowExecuted } from '../protocol/events.js';
import { callControlPlane } from './control-plane.js';
import type { Env } from './env.js';

const encoder = new TextEncoder();

/**
 * After `failures` failed deliveries in a row: 1 s, 2 s, 4 s, then every 5 s at most, jittered, so
 * that work resumes within seconds of the control plane being back (docs/decisions.md, Recovery).
 */
export const retryDelay = (failures: number) => backoff(failures, { firstMs: 1_000, maxMs: 5_000, jitter: 0.2 });

/** The bytes of a value as JSON, as it is sent. */
export const jsonBytes = (value: unknown) => encoder.encode(JSON.stringify(value)).byteLength;

/** An execution of the outbox as it is sent: its storage key and its JSON. */
export interface Outgoing {
  key: string;
  flowExecId: string;
  json: string;
  bytes: number;
}

export const outgoing = (key: string, execution: FlowExecuted): Outgoing => {
  const json = JSON.stringify(execution);
  return { key, flowExecId: execution.flowExecId, json, bytes: encoder.encode(json).byteLength };
};

/** Whether one more execution of `bytes` fits a delivery that holds `count` executions of `total` bytes. */
export const fits = (count: number, total: number, bytes: number) =>
  count < DELIVERY_LIMITS.executions && DELIVERY_ENVELOPE_BYTES + total + count + bytes <= DELIVERY_LIMITS.bytes;

/** The control plane refused a delivery as it is (400, 413, 422): sending the same again cannot help. */
export class DeliveryRefused extends Error {}

/** Sends a batch to the control plane; answers the flowExecIds it has now (new, seen before or rejected as impossible). */
export async function deliver(env: Env, batch: Outgoing[]): Promise<Set<string>> {
  const response = await callControlPlane(env, '/api/v1/edge/executions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `{"executions":[${batch.map((e) => e.json).join(',')}]}`,
  });
  if (response.status !== 200) {
    const message = `control plane answered ${response.status}: ${(await response.text()).slice(0, 500)}`;
    throw [400, 413, 422].includes(response.status) ? new DeliveryRefused(message) : new Error(message);
  }
  const { data } = (await response.json()) as { data: { accepted: string[]; duplicates: string[]; rejected: { flowExecId: string }[] } };
  return new Set([...data.accepted, ...data.duplicates, ...data.rejected.map((r) => r.flowExecId)]);
}
