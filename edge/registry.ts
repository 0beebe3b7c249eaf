import { DurableObject } from 'cloudflare:workers';
import type { Env } from './env.js';

/**
 * The ids of the flows whose Durable Object holds a trigger. Durable Objects cannot be listed, and
 * the reconcile must find the ones the control plane no longer wants.
 */
export class FlowRegistry extends DurableObject<Env> {
  async add(flowId: string): Promise<void> {
    await this.ctx.storage.put(`flow:${flowId}`, true);
  }

  async delete(flowId: string): Promise<void> {
    await this.ctx.storage.delete(`flow:${flowId}`);
  }

  async list(): Promise<string[]> {
    return [...(await this.ctx.storage.list({ prefix: 'flow:' })).keys()].map((key) => key.slice('flow:'.length));
  }
}

export const registry = (env: Env) => env.FLOW_REGISTRY.get(env.FLOW_REGISTRY.idFromName('all'));
