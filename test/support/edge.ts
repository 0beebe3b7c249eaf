import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { SignJWT } from 'jose';
import { Miniflare } from 'miniflare';
import { WORKER_BUILD } from '../../scripts/edge-bundle.js';
import type { EdgeTrigger } from '../../protocol/edge.js';

export const EDGE_CONTROL_SECRET = 'edge-control-secret-for-tests-0123456789';

/**
 * The edge Worker as tests run it: edge/worker.ts, its FlowTrigger given RPC methods for tests:
 * `stored()` answers everything the Durable Object's storage holds, `travel(ms)` moves its
 * idempotency clock forward and `runAlarm()` runs its alarm now.
 */
const INSPECTABLE_WORKER = `
import { FlowTrigger as Inspected } from './edge/trigger.ts';
export { default, FlowRegistry } from './edge/worker.ts';
export class FlowTrigger extends Inspected {
  skew = 0;
  idempotencyNow() {
    return Date.now() + this.skew;
  }
  async stored() {
    return Object.fromEntries(await this.ctx.storage.list());
  }
  async travel(ms) {
    this.skew += ms;
  }
  async runAlarm() {
    await this.alarm();
  }
}`;

interface InspectableTrigger {
  stored(): Promise<Record<string, unknown>>;
  travel(ms: number): Promise<void>;
  runAlarm(): Promise<void>;
}

/** A Worker bundled as wrangler would bundle it (esbuild, ESM, workerd conditions): `entryPoint`, or else the inspectable edge Worker. */
export async function bundleWorker(entryPoint?: string): Promise<string> {
  const dir = join('.hookline', 'edge-test', String(process.pid));
  await mkdir(dir, { recursive: true });
  const outfile = join(dir, `${(entryPoint ?? 'inspectable-worker').replace(/\W+/g, '-')}.js`);
  await build({
    ...(entryPoint
      ? { entryPoints: [entryPoint] }
      : { stdin: { contents: INSPECTABLE_WORKER, resolveDir: process.cwd(), sourcefile: 'inspectable-worker.js' } }),
    ...WORKER_BUILD,
    outfile,
  });
  return outfile;
}

export interface TestEdge {
  mf: Miniflare;
  /** A request to the Worker, as a caller on the internet would send it. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** A control-plane call with a valid signed token. */
  control(method: string, path: string, body?: unknown): Promise<Response>;
  /** Pushes a trigger (status live unless given) for `flowId`. */
  push(trigger: Partial<EdgeTrigger> & { flowId: string }): Promise<void>;
  /** Everything the flow's Durable Object keeps in its storage, by key. */
  stored(flowId: string): Promise<Record<string, unknown>>;
  /** The flow's Durable Object, with the test methods of INSPECTABLE_WORKER. */
  trigger(flowId: string): Promise<InspectableTrigger>;
  close(): Promise<void>;
}

export const controlToken = (secret = EDGE_CONTROL_SECRET, expiresIn = '5m') =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('hookline-control-plane')
    .setAudience('hookline-edge')
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));

/** The edge Worker in workerd through Miniflare, with its Durable Objects in memory. */
export async function startTestEdge(bindings: Record<string, string> = {}): Promise<TestEdge> {
  const scriptPath = await bundleWorker();
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    compatibilityDate: '2026-04-01',
    compatibilityFlags: ['nodejs_compat'],
    // SQLite-backed, as wrangler.toml declares them.
    durableObjects: {
      FLOW_TRIGGERS: { className: 'FlowTrigger', useSQLite: true },
      FLOW_REGISTRY: { className: 'FlowRegistry', useSQLite: true },
    },
    bindings: { EDGE_CONTROL_SECRET, ...bindings },
    cf: false,
  });
  const url = await mf.ready;
  let version = 0;
  const edge: TestEdge = {
    mf,
    fetch: (path, init) => fetch(new URL(path, url), init),
    async control(method, path, body) {
      return fetch(new URL(path, url), {
        method,
        headers: { authorization: `Bearer ${await controlToken()}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
    async push(trigger) {
      const res = await edge.control('PUT', `/control/flows/${trigger.flowId}`, {
        tenant: 'tenant-1',
        status: 'live',
        version: ++version,
        ...trigger,
      });
      if (res.status !== 200) throw new Error(`push failed: ${res.status} ${await res.text()}`);
    },
    stored: async (flowId) => (await edge.trigger(flowId)).stored(),
    async trigger(flowId) {
      const triggers = await mf.getDurableObjectNamespace('FLOW_TRIGGERS');
      return triggers.get(triggers.idFromName(flowId)) as unknown as InspectableTrigger;
    },
    close: () => mf.dispose(),
  };
  return edge;
}
