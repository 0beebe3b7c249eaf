import { edgeTriggerSchema, type EdgeTrigger } from '../protocol/edge.js';
import { callControlPlane } from './control-plane.js';
import type { Env } from './env.js';
import { registry } from './registry.js';

const stub = (env: Env, flowId: string) => env.FLOW_TRIGGERS.get(env.FLOW_TRIGGERS.idFromName(flowId));

/**
 * The Cron Trigger's work: asks the control plane which flows should have a trigger at the edge,
 * then re-pushes each one (a no-op where the version is current) and removes the triggers it no
 * longer lists, so a lost or failed push heals within a minute. Removal is versioned by when the
 * list was made, so a flow started since keeps its newer trigger.
 */
export async function reconcile(env: Env): Promise<{ pushed: number; removed: number }> {
  const response = await callControlPlane(env, '/api/v1/edge/triggers');
  if (response.status !== 200) throw new Error(`control plane answered ${response.status}`);
  const { data } = (await response.json()) as { data: { asOf: number; triggers: unknown[] } };
  const wanted: EdgeTrigger[] = data.triggers.map((trigger) => edgeTriggerSchema.parse(trigger));
  const wantedIds = new Set(wanted.map((t) => t.flowId));

  let pushed = 0;
  for (const trigger of wanted) if (await stub(env, trigger.flowId).configure(trigger)) pushed++;
  let removed = 0;
  for (const flowId of await registry(env).list()) {
    if (!wantedIds.has(flowId) && (await stub(env, flowId).remove(data.asOf))) removed++;
  }
  return { pushed, removed };
}
