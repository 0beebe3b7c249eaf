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
  /** The largest webhook body accepted, in bytes (default 1 MiB). */
  HOOK_BODY_LIMIT_BYTES?: string;
}

export const bodyLimit = (env: Env) => Number(env.HOOK_BODY_LIMIT_BYTES ?? 1024 * 1024);
