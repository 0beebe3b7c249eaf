import type { EdgeTrigger } from '../../protocol/edge.js';
import { signPeerToken } from '../../protocol/peer-token.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { on } from '../bus/handler.js';
import { emit } from '../bus/outbox.js';
import { ApiError } from '../http/errors.js';
import { transact, type Services } from '../services.js';
import { SERVICE_NAME, triggerOf } from './service.js';

/** The edge refused a push as it is (400): sending it again cannot help. */
class TriggerRefused extends Error {}

/** The messages of the edge's error envelope, or the text as it came. */
function errorMessages(text: string): string {
  try {
    const messages = ((JSON.parse(text) as { errors?: { message?: unknown }[] }).errors ?? [])
      .map((e) => e.message)
      .filter((m) => typeof m === 'string');
    return messages.length > 0 ? messages.join('; ') : text;
  } catch {
    return text;
  }
}

/** A push's version: when the event was created, so a late or repeated push never undoes a newer one. */
const versionOf = (event: EventEnvelope) => Date.parse(event.headers.createdAt);

/**
 * Pushes the lifecycle to the edge: flow.starting records the trigger, flow.started makes it live,
 * flow.stopping removes it. A push that fails for now (the edge is unreachable) throws, so the bus
 * retries it with backoff (and dead-letters it in the end); pushes are idempotent by version.
 */
export async function subscribeEdgeBridge(services: Services): Promise<void> {
  const { EDGE_URL, EDGE_CONTROL_SECRET } = services.config;
  if (!EDGE_URL || !EDGE_CONTROL_SECRET) return;
  const call = async (method: 'PUT' | 'DELETE', path: string, body?: EdgeTrigger) => {
    const response = await fetch(new URL(path, EDGE_URL), {
      method,
      headers: { authorization: `Bearer ${await signPeerToken(EDGE_CONTROL_SECRET, 'control-plane')}`, 'content-type': 'application/json' },
      body: body && JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = response.status === 200 ? '' : (await response.text()).slice(0, 500);
    if (response.status === 400) throw new TriggerRefused(`the edge refused the flow's trigger: ${errorMessages(text)}`);
    if (response.status !== 200) throw new Error(`edge answered ${method} ${path} with ${response.status}: ${text}`);
  };
  /**
   * A trigger that cannot be made (its webhook secret is gone) or that the edge refuses (a key
   * changed since the flow was saved) can never be pushed: the flow fails with the reason rather
   * than staying closed in silence, and nothing is retried.
   */
  const push = async (flow: Parameters<typeof triggerOf>[1], status: EdgeTrigger['status'], event: EventEnvelope) => {
    try {
      await call('PUT', `/control/flows/${flow.id}`, await triggerOf(services, flow, status, versionOf(event)));
    } catch (error) {
      const reason =
        error instanceof TriggerRefused
          ? error.message
          : error instanceof ApiError && error.status < 500
            ? `the flow's webhook cannot be set up: ${error.message}`
            : null;
      if (!reason) throw error;
      services.logger.warn({ flowId: flow.id, reason }, "the edge cannot take the flow's trigger: the flow fails");
      await transact(services, (tx) => emit(tx, SERVICE_NAME, 'flow.failed', { id: flow.id, tenant: flow.tenant, reason }));
    }
  };

  await services.bus.subscribe(SERVICE_NAME, {
    'flow.starting': on('flow.starting', (flow, event) => push(flow, 'starting', event)),
    'flow.started': on('flow.started', async (ref, event) => {
      const flow = await services.db.query.flows.findFirst({
        where: (f, { and, eq }) => and(eq(f.id, ref.id), eq(f.tenantId, ref.tenant)),
      });
      if (!flow) return;
      // Reported after a stop (the fleet's flow.started can be newer than flow.stopping): the stop stands.
      if (flow.status !== 'starting' && flow.status !== 'active') {
        services.logger.info(
          { flowId: flow.id, status: flow.status },
          'flow.started for a flow that is not starting: its trigger is not pushed to the edge',
        );
        return;
      }
      await push(
        { id: flow.id, tenant: flow.tenantId, flowSettings: flow.flowSettings, cron: flow.cron, timezone: flow.timezone },
        'live',
        event,
      );
    }),
    'flow.stopping': on('flow.stopping', (flow, event) => call('DELETE', `/control/flows/${flow.id}?version=${versionOf(event)}`)),
  });
}
