import { MAX_HOOK_BODY_BYTES } from '../protocol/edge.js';
import type { FlowRegistry } from './registry.js';
import type { FlowTrigger } from './trigger.js';

/** The Worker's bindings (wrangler.toml); secrets are set with `wrangler secret put`, never in the file. */
export interface Env {
  FLOW_TRIGGERS: DurableObjectNamespace<FlowTrigger>;
  FLOW_REGISTRY: DurableObjectNamespace<FlowRegistry>;
  /** Shared with the control plane (EDGE_CONTROL_SECRET there): signs the control plane's calls. */
  EDGE_CONTROL_SECRET: string;
  /** Where executions are delivered (the control plane's base URL). */
  CONTROL_PLANE_URL?: string;
  /** The largest webhook body accepted, in bytes (default and most: MAX_HOOK_BODY_BYTES, 1 MiB). */
  HOOK_BODY_LIMIT_BYTES?: string;
}

/** HOOK_BODY_LIMIT_BYTES, never above what an execution can carry to the control plane. */
export const bodyLimit = (env: Env) => {
  const configured = Number(env.HOOK_BODY_LIMIT_BYTES ?? MAX_HOOK_BODY_BYTES);
  return Number.isFinite(configured) && configured > 0 ? Math.min(configured, MAX_HOOK_BODY_BYTES) : MAX_HOOK_BODY_BYTES;
};
