import type { EdgeTrigger } from '../../protocol/edge.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { on } from '../bus/handler.js';
import type { Services } from '../services.js';
import { SERVICE_NAME, triggerOf } from './service.js';
import { edgeControlToken } from './tokens.js';

/** A push's version: when the event was created, so a late or repeated push never undoes a newer one. */
const versionOf = (event: EventEnvelope) => Date.parse(event.headers.createdAt);

/**
 * Pushes the lifecycle to the edge: flow.starting records the trigger, flow.started makes it live,
 * flow.stopping removes it. A failed push throws, so the bus retries it with backoff (and
 * dead-letters it in the end); pushes are idempotent by version.
 */
export async function subscribeEdgeBridge(services: Services): Promise<void> {
  const { EDGE_URL, EDGE_CONTROL_SECRET } = services.config;
  if (!EDGE_URL || !EDGE_CONTROL_SECRET) return;
  const call = async (method: 'PUT' | 'DELETE', path: string, body?: EdgeTrigger) => {
    const response = await fetch(new URL(path, EDGE_URL), {
      method,
      headers: { authorization: `Bearer ${await edgeControlToken(EDGE_CONTROL_SECRET)}`, 'content-type': 'application/json' },
      body: body && JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (response.status !== 200) throw new Error(`edge answered ${method} ${path} with ${response.status}: ${(await response.text()).slice(0, 300)}`);
  };
  const push = async (flow: Parameters<typeof triggerOf>[1], status: EdgeTrigger['status'], event: EventEnvelope) =>
    call('PUT', `/control/flows/${flow.id}`, await triggerOf(services, flow, status, versionOf(event)));

  await services.bus.subscribe(SERVICE_NAME, {
    'flow.starting': on('flow.starting', (flow, event) => push(flow, 'starting', event)),
    'flow.started': on('flow.started', async (ref, event) => {
      const flow = await services.db.query.flows.findFirst({ where: (f, { and, eq }) => and(eq(f.id, ref.id), eq(f.tenantId, ref.tenant)) });
      if (!flow) return;
      // Reported after a stop (the fleet's flow.started can be newer than flow.stopping): the stop stands.
      if (flow.status !== 'starting' && flow.status !== 'active') {
        services.logger.info({ flowId: flow.id, status: flow.status }, 'flow.started for a flow that is not starting: its trigger is not pushed to the edge');
        return;
      }
      await push({ id: flow.id, tenant: flow.tenantId, flowSettings: flow.flowSettings, cron: flow.cron, timezone: flow.timezone }, 'live', event);
    }),
    'flow.stopping': on('flow.stopping', (flow, event) => call('DELETE', `/control/flows/${flow.id}?version=${versionOf(event)}`)),
  });
}
