import { DurableObject } from 'cloudflare:workers';
import type { EdgeTrigger } from '../protocol/edge.js';
import type { FlowExecuted } from '../protocol/events.js';
import { bodyLimit, type Env } from './env.js';
import { errorResponse, notLive } from './errors.js';
import { checkContentType, parseBody, readLimited, Rejection } from './hook-request.js';
import { authenticateHook } from './webhook-auth.js';

/** A repeated key within this window gets the first answer again and makes no second execution. */
const IDEMPOTENCY_MS = 24 * 60 * 60 * 1000;
const IDEMPOTENCY_HEADERS = ['webhook-id', 'idempotency-key', 'x-request-id'];
/** Never passed on to the flow's steps: they carry the caller's credentials. */
const PRIVATE_HEADERS = new Set(['authorization', 'cookie', 'webhook-signature']);

interface Remembered {
  at: number;
  body: { data: { requestId: string; flowExecId: string } };
}

/**
 * One per flow (by flow id): the flow's trigger as the control plane pushed it, the idempotency
 * keys of the last 24 hours, and an outbox of executions not yet confirmed by the control plane.
 */
export class FlowTrigger extends DurableObject<Env> {
  /** Applies a pushed trigger unless a newer version is already here; answers whether it applied. */
  async configure(trigger: EdgeTrigger): Promise<boolean> {
    const current = await this.ctx.storage.get<EdgeTrigger>('trigger');
    if (current && current.version > trigger.version) return false;
    await this.ctx.storage.put('trigger', trigger);
    return true;
  }

  /** Forgets the trigger (the flow is stopping); undelivered executions stay in the outbox. */
  async remove(version: number): Promise<boolean> {
    const current = await this.ctx.storage.get<EdgeTrigger>('trigger');
    if (!current || current.version > version) return false;
    await this.ctx.storage.delete('trigger');
    return true;
  }

  /** The trigger and the undelivered executions, oldest first (the first 100), for the control plane and operators. */
  async state(): Promise<{ trigger: EdgeTrigger | null; pending: number; executions: FlowExecuted[] }> {
    const outbox = await this.ctx.storage.list<FlowExecuted>({ prefix: 'outbox:' });
    return { trigger: (await this.ctx.storage.get<EdgeTrigger>('trigger')) ?? null, pending: outbox.size, executions: [...outbox.values()].slice(0, 100) };
  }

  /** `HEAD|GET|POST /hook/{flowId}[/{suffix}]`: verify, limit, de-duplicate, persist, answer. */
  override async fetch(request: Request): Promise<Response> {
    const trigger = await this.ctx.storage.get<EdgeTrigger>('trigger');
    if (!trigger || trigger.status !== 'live') return notLive();
    try {
      return await this.receive(trigger, request);
    } catch (error) {
      if (error instanceof Rejection) return error.response;
      throw error;
    }
  }

  private async receive(trigger: EdgeTrigger, request: Request): Promise<Response> {
    if (request.method === 'HEAD') return new Response(null, { status: 200 });
    if (request.method !== 'GET' && request.method !== 'POST') return errorResponse(405, 'Use GET, POST or HEAD', 'method_not_allowed', { allow: 'GET, POST, HEAD' });
    const url = new URL(request.url);
    const type = request.method === 'POST' ? checkContentType(request) : null;
    const body = type ? await readLimited(request, bodyLimit(this.env)) : new Uint8Array();
    await authenticateHook(trigger.webhooks.auth, request, body);
    const data = type ? parseBody(type, body) : Object.fromEntries(url.searchParams);

    const key = IDEMPOTENCY_HEADERS.map((name) => request.headers.get(name)).find((value) => value);
    const now = Date.now();
    if (key) {
      const seen = await this.ctx.storage.get<Remembered>(`idem:${key}`);
      if (seen && now - seen.at < IDEMPOTENCY_MS) return Response.json(seen.body, { status: 202, headers: { 'idempotent-replayed': 'true' } });
    }

    const flowExecId = crypto.randomUUID();
    const requestId = request.headers.get('x-request-id') ?? crypto.randomUUID();
    const hidden = new Set([...PRIVATE_HEADERS, ...(trigger.webhooks.auth?.type === 'hmac' ? [trigger.webhooks.auth.header.toLowerCase()] : [])]);
    const execution: FlowExecuted = {
      flowId: trigger.flowId,
      flowExecId,
      tenant: trigger.tenant,
      trigger: 'webhook',
      receivedAt: new Date(now).toISOString(),
      message: {
        id: crypto.randomUUID(),
        data,
        headers: Object.fromEntries([...request.headers].filter(([name]) => !hidden.has(name))),
        attachments: {},
        metadata: { source: { name: 'webhook', type: 'webhook', externalExecId: requestId } },
        passthrough: {},
        method: request.method,
        query: Object.fromEntries(url.searchParams),
        url: url.pathname,
        pathSuffix: url.pathname.split('/').slice(3).join('/'),
      },
    };
    const answer: Remembered['body'] = { data: { requestId, flowExecId } };
    // One atomic write: the execution, its place in the outbox and its idempotency key, or none of them.
    const seq = ((await this.ctx.storage.get<number>('seq')) ?? 0) + 1;
    await this.ctx.storage.put({ seq, [`outbox:${String(seq).padStart(12, '0')}`]: execution, ...(key ? { [`idem:${key}`]: { at: now, body: answer } } : {}) });
    return Response.json(answer, { status: 202 });
  }
}
