import { DurableObject } from 'cloudflare:workers';
import { MAX_EXECUTION_BYTES, type EdgeTrigger } from '../protocol/edge.js';
import type { FlowExecuted } from '../protocol/events.js';
import { deliver, DeliveryRefused, fits, jsonBytes, outgoing, retryDelay, type Outgoing } from './delivery.js';
import type { Env } from './env.js';
import { errorResponse, notLive } from './errors.js';
import { checkContentType, parseBody, refuseUnstorable, Rejection } from './hook-request.js';
import { registry } from './registry.js';
import { nextSlot, planSlots } from './schedule.js';
import { authenticateHook } from './webhook-auth.js';

/** A repeated key within this window gets the first answer again and makes no second execution. */
const IDEMPOTENCY_MS = 24 * 60 * 60 * 1000;
const IDEMPOTENCY_HEADERS = ['webhook-id', 'idempotency-key', 'x-request-id'];
/**
 * How long an execution may wait for others to share its delivery batch. Short: under load, calls
 * that arrive while a delivery is in flight share the next batch anyway (20 ms added that much to a
 * lone call's latency).
 */
const DELIVERY_DELAY_MS = 5;
/** Never passed on to the flow's steps: they carry the caller's credentials. */
const PRIVATE_HEADERS = new Set(['authorization', 'cookie', 'webhook-signature']);

/** Outbox entries read at a time while a batch is put together. */
const OUTBOX_PAGE = 16;

/** An execution the control plane refused as impossible, kept with its reason. */
interface SetAside {
  execution: FlowExecuted;
  reason: string;
  at: string;
}

interface Remembered {
  at: number;
  body: { data: { requestId: string; flowExecId: string } };
}

/**
 * Each remembered key `idem:<key>` has an entry `idem-at:<time>:<key>` too: listed in time order,
 * they give the oldest key and those past their window without reading every key.
 */
const expiryEntry = (at: number, key: string) => `idem-at:${String(at).padStart(15, '0')}:${key}`;
const EXPIRY_PREFIX = 'idem-at:';
/** Keys forgotten per storage call. */
const FORGET_PAGE = 64;

/** A trigger as the control API shows it: its webhook's keys are kept, never shown. */
function withoutKeys(trigger: EdgeTrigger | null): EdgeTrigger | null {
  const auth = trigger?.webhooks.auth;
  if (!trigger || !auth) return trigger;
  const hidden =
    auth.type === 'hmac'
      ? { ...auth, secret: HIDDEN }
      : auth.type === 'bearer'
        ? { ...auth, token: HIDDEN }
        : { ...auth, secrets: auth.secrets.map(() => HIDDEN) };
  return { ...trigger, webhooks: { ...trigger.webhooks, auth: hidden } };
}
const HIDDEN = '[hidden]';

/**
 * One per flow (by flow id): the flow's trigger as the control plane pushed it, its schedule's next
 * slot, the idempotency keys of the last 24 hours, and an outbox of executions not yet confirmed by
 * the control plane. One alarm serves all three: due slots, delivery, and forgetting old keys.
 */
export class FlowTrigger extends DurableObject<Env> {
  private get storage() {
    return this.ctx.storage;
  }

  /**
   * Applies a pushed trigger unless something newer is already here: a newer trigger, or a removal
   * newer than it (kept as a tombstone). Answers whether it changed anything.
   */
  async configure(trigger: EdgeTrigger): Promise<boolean> {
    const current = await this.storage.get<EdgeTrigger>('trigger');
    const removedAt = (await this.storage.get<number>('removedAt')) ?? -1;
    if ((current && current.version >= trigger.version) || removedAt >= trigger.version) return false;
    await this.storage.put('trigger', trigger);
    if (!current) await registry(this.env).add(trigger.flowId);
    const scheduled = trigger.status === 'live' && trigger.cron;
    const sameSchedule = current?.status === 'live' && current.cron === trigger.cron && current.timezone === trigger.timezone;
    if (!scheduled) await this.storage.delete('nextDue');
    else if (!sameSchedule) await this.storage.put('nextDue', nextSlot(trigger.cron!, trigger.timezone, Date.now()));
    await this.rearm();
    return true;
  }

  /**
   * Forgets the trigger, its secrets and its schedule (the flow is stopping); undelivered executions
   * stay in the outbox, idempotency keys until they expire. The tombstone is kept even when no
   * trigger is here yet, so a start pushed before the stop but arriving after it stores nothing.
   * Answers whether a trigger was removed.
   */
  async remove(version: number): Promise<boolean> {
    const current = await this.storage.get<EdgeTrigger>('trigger');
    if (current && current.version > version) return false;
    if (version > ((await this.storage.get<number>('removedAt')) ?? -1)) await this.storage.put('removedAt', version);
    if (!current) return false;
    await this.storage.delete(['trigger', 'nextDue']);
    await registry(this.env).delete(current.flowId);
    await this.rearm();
    return true;
  }

  /**
   * The trigger, the next slot, failed deliveries in a row, undelivered executions (the first 100)
   * and those set aside (the first 100, with the reason), for the control plane and operators.
   */
  async state(): Promise<{
    trigger: EdgeTrigger | null;
    nextDue: number | null;
    pending: number;
    failures: number;
    executions: FlowExecuted[];
    setAside: SetAside[];
  }> {
    const outbox = await this.storage.list<FlowExecuted>({ prefix: 'outbox:' });
    return {
      trigger: withoutKeys((await this.storage.get<EdgeTrigger>('trigger')) ?? null),
      nextDue: (await this.storage.get<number>('nextDue')) ?? null,
      pending: outbox.size,
      failures: (await this.storage.get<number>('failures')) ?? 0,
      executions: [...outbox.values()].slice(0, 100),
      setAside: [...(await this.storage.list<SetAside>({ prefix: 'aside:', limit: 100 })).values()],
    };
  }

  override async alarm(): Promise<void> {
    await this.runDueSlots();
    await this.deliverOutbox();
    await this.forgetOldKeys();
    await this.rearm();
  }

  /**
   * Runs the schedule's due slots: one execution each, its flowExecId made of the flow and the slot,
   * so a slot run again (an alarm retried after a crash) is still one flow.executed at the control plane.
   */
  private async runDueSlots(): Promise<void> {
    const trigger = await this.storage.get<EdgeTrigger>('trigger');
    const nextDue = await this.storage.get<number>('nextDue');
    const now = Date.now();
    if (trigger?.status !== 'live' || !trigger.cron || nextDue === undefined || nextDue > now) return;
    const plan = planSlots(trigger.cron, trigger.timezone, trigger.misfire, nextDue, now);
    if (plan.skipped > 0)
      console.warn(`flow ${trigger.flowId}: ${plan.skipped} missed schedule slots skipped (misfire: ${trigger.misfire})`);
    let seq = (await this.storage.get<number>('seq')) ?? 0;
    const entries: Record<string, unknown> = {};
    for (const slot of plan.fire) {
      const nextAt = nextSlot(trigger.cron, trigger.timezone, slot);
      const scheduledAt = new Date(slot).toISOString();
      entries[`outbox:${String(++seq).padStart(12, '0')}`] = {
        flowId: trigger.flowId,
        flowExecId: `sched:${trigger.flowId}:${scheduledAt}`,
        tenant: trigger.tenant,
        trigger: 'schedule',
        receivedAt: new Date(now).toISOString(),
        message: {
          id: crypto.randomUUID(),
          data: { scheduledAt, nextAt: nextAt === null ? null : new Date(nextAt).toISOString(), firedAt: new Date(now).toISOString() },
          headers: {},
          attachments: {},
          metadata: { source: { name: 'schedule', type: 'schedule', externalExecId: scheduledAt } },
          passthrough: {},
        },
      } satisfies FlowExecuted;
    }
    // The executions and the new next slot in one write: a slot is either recorded as run, or not run.
    await this.storage.put({ ...entries, seq, nextDue: plan.nextDue });
  }

  /**
   * Delivers the outbox to the control plane, oldest first, in batches cut by count and by bytes
   * (protocol/edge.ts); an execution leaves the outbox only once the control plane has it. While
   * it is unreachable, retries back off (1 s doubling to 5 min) and nothing is dropped. A batch the
   * control plane refuses as it is goes again one execution at a time, and one it refuses alone
   * (or does not answer for) is set aside with the reason, so it never holds up the ones after it.
   */
  private async deliverOutbox(): Promise<void> {
    if (((await this.storage.get<number>('retryAt')) ?? 0) > Date.now()) return;
    for (;;) {
      const batch = await this.nextBatch();
      if (batch.length === 0) return;
      try {
        await this.send(batch);
      } catch (error) {
        if (!(error instanceof DeliveryRefused)) return this.backOff(error as Error);
        for (const one of batch) {
          try {
            await this.send([one]);
          } catch (alone) {
            if (!(alone instanceof DeliveryRefused)) return this.backOff(alone as Error);
            await this.setAside(one, alone.message);
          }
        }
      }
    }
  }

  /** The oldest executions that fit one delivery, read a few at a time so that large ones never fill the memory. */
  private async nextBatch(): Promise<Outgoing[]> {
    const batch: Outgoing[] = [];
    let bytes = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.storage.list<FlowExecuted>({
        prefix: 'outbox:',
        limit: OUTBOX_PAGE,
        ...(after ? { startAfter: after } : {}),
      });
      for (const [key, execution] of page) {
        const next = outgoing(key, execution);
        if (batch.length > 0 && !fits(batch.length, bytes, next.bytes)) return batch;
        batch.push(next);
        bytes += next.bytes;
        after = key;
      }
      if (page.size < OUTBOX_PAGE) return batch;
    }
  }

  private async send(batch: Outgoing[]): Promise<void> {
    const settled = await deliver(this.env, batch);
    await this.storage.delete(batch.filter((e) => settled.has(e.flowExecId)).map((e) => e.key));
    await this.storage.delete(['failures', 'retryAt']);
    for (const unanswered of batch.filter((e) => !settled.has(e.flowExecId)))
      await this.setAside(unanswered, 'the control plane did not answer for this execution');
  }

  private async backOff(error: Error): Promise<void> {
    const failures = ((await this.storage.get<number>('failures')) ?? 0) + 1;
    const delay = Math.round(retryDelay(failures));
    await this.storage.put({ failures, retryAt: Date.now() + delay });
    const flowId = (await this.storage.get<EdgeTrigger>('trigger'))?.flowId ?? '?';
    console.warn(`flow ${flowId}: delivery failed (${failures} in a row), retrying in ${delay} ms: ${error.message}`);
  }

  /** Moves an execution the control plane cannot take out of the outbox, kept with the reason (GET /control/flows/{id} shows them). */
  private async setAside(execution: Outgoing, reason: string): Promise<void> {
    const aside: SetAside = { execution: JSON.parse(execution.json) as FlowExecuted, reason, at: new Date().toISOString() };
    await this.storage.put(execution.key.replace(/^outbox:/, 'aside:'), aside);
    await this.storage.delete(execution.key);
    console.error(`flow ${aside.execution.flowId}: execution ${execution.flowExecId} set aside, the control plane refuses it: ${reason}`);
  }

  /** Idempotency keys past their 24 hours, found through their expiry entries: the cost is the number forgotten, not the number kept. */
  private async forgetOldKeys(): Promise<void> {
    const end = expiryEntry(this.idempotencyNow() - IDEMPOTENCY_MS, '');
    for (;;) {
      const expired = await this.storage.list<string>({ prefix: EXPIRY_PREFIX, end, limit: FORGET_PAGE });
      if (expired.size === 0) return;
      // A key remembered again since (its window had passed) has a newer entry, and stays.
      const remembered = await this.storage.get<Remembered>([...new Set(expired.values())].map((key) => `idem:${key}`));
      const stale = [...remembered].filter(([, r]) => r.at < this.idempotencyNow() - IDEMPOTENCY_MS).map(([name]) => name);
      await this.storage.delete([...expired.keys(), ...stale]);
    }
  }

  /** The clock of the idempotency window (a seam the tests move forward). */
  protected idempotencyNow(): number {
    return Date.now();
  }

  /**
   * Brings the alarm forward to deliver within DELIVERY_DELAY_MS, so calls arriving together go in
   * one batch; while deliveries fail, the retry keeps its backoff.
   */
  private async deliverSoon(now: number): Promise<void> {
    if (((await this.storage.get<number>('retryAt')) ?? 0) > now) return;
    const alarm = await this.storage.getAlarm();
    if (alarm === null || alarm > now + DELIVERY_DELAY_MS) await this.storage.setAlarm(now + DELIVERY_DELAY_MS);
  }

  /** Sets the one alarm to the earliest thing due: a slot, a delivery (now, or its retry time), or a key expiring. */
  private async rearm(): Promise<void> {
    const due: number[] = [];
    const nextDue = await this.storage.get<number>('nextDue');
    if (nextDue !== undefined && nextDue !== null) due.push(nextDue);
    if ((await this.storage.list({ prefix: 'outbox:', limit: 1 })).size > 0)
      due.push((await this.storage.get<number>('retryAt')) ?? Date.now());
    const [oldest] = (await this.storage.list<string>({ prefix: EXPIRY_PREFIX, limit: 1 })).keys();
    if (oldest) due.push(Number(oldest.slice(EXPIRY_PREFIX.length).split(':', 1)[0]) + IDEMPOTENCY_MS);
    if (due.length === 0) await this.storage.deleteAlarm();
    else await this.storage.setAlarm(Math.min(...due));
  }

  /** `HEAD|GET|POST /hook/{flowId}[/{suffix}]`: verify, limit, de-duplicate, persist, answer. */
  override async fetch(request: Request): Promise<Response> {
    const trigger = await this.storage.get<EdgeTrigger>('trigger');
    // A cron flow has no webhook (as OIH's webhooks service ignores flows with a cron).
    if (trigger?.status !== 'live' || trigger.cron) return notLive();
    try {
      return await this.receive(trigger, request);
    } catch (error) {
      if (error instanceof Rejection) return error.response;
      throw error;
    }
  }

  /** A call the Worker admitted (method, content type and size checked, the body read whole). */
  private async receive(trigger: EdgeTrigger, request: Request): Promise<Response> {
    const url = new URL(request.url);
    const type = request.method === 'POST' ? checkContentType(request) : null;
    const body = new Uint8Array(await request.arrayBuffer());
    await authenticateHook(trigger.webhooks.auth, request, body);
    if (request.method === 'HEAD') return new Response(null, { status: 200 });
    const query = Object.fromEntries(url.searchParams);
    refuseUnstorable(query, 'query');
    const data = type ? parseBody(type, body) : query;
    refuseUnstorable(data, 'body');

    const key = IDEMPOTENCY_HEADERS.map((name) => request.headers.get(name)).find((value) => value);
    const now = Date.now();
    const keyTime = this.idempotencyNow();
    if (key) {
      const seen = await this.storage.get<Remembered>(`idem:${key}`);
      if (seen && keyTime - seen.at < IDEMPOTENCY_MS)
        return Response.json(seen.body, { status: 202, headers: { 'idempotent-replayed': 'true' } });
    }

    const flowExecId = crypto.randomUUID();
    const requestId = request.headers.get('x-request-id') ?? crypto.randomUUID();
    const hidden = new Set([
      ...PRIVATE_HEADERS,
      ...(trigger.webhooks.auth?.type === 'hmac' ? [trigger.webhooks.auth.header.toLowerCase()] : []),
    ]);
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
        query,
        url: url.pathname,
        pathSuffix: url.pathname.split('/').slice(3).join('/'),
      },
    };
    const bytes = jsonBytes(execution);
    if (bytes > MAX_EXECUTION_BYTES) {
      throw new Rejection(
        errorResponse(
          413,
          `The call takes ${bytes} bytes as an execution (JSON, with its headers and query), more than the ${MAX_EXECUTION_BYTES} one may carry`,
          'payload_too_large',
        ),
      );
    }
    const answer: Remembered['body'] = { data: { requestId, flowExecId } };
    // One atomic write: the execution, its place in the outbox and its idempotency key, or none of them.
    const seq = ((await this.storage.get<number>('seq')) ?? 0) + 1;
    await this.storage.put({
      seq,
      [`outbox:${String(seq).padStart(12, '0')}`]: execution,
      ...(key ? { [`idem:${key}`]: { at: keyTime, body: answer }, [expiryEntry(keyTime, key)]: key } : {}),
    });
    await this.deliverSoon(now);
    return Response.json(answer, { status: 202 });
  }
}
