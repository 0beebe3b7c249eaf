import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { SignJWT } from 'jose';
import { Miniflare } from 'miniflare';
import type { EdgeTrigger } from '../../protocol/edge.js';

export const EDGE_CONTROL_SECRET = 'edge-control-secret-for-tests-0123456789';

/** A Worker bundled as wrangler would bundle it (esbuild, ESM, workerd conditions). */
export async function bundleWorker(entryPoint = 'edge/worker.ts'): Promise<string> {
  const dir = join('.hookline', 'edge-test', String(process.pid));
  await mkdir(dir, { recursive: true });
  const outfile = join(dir, `${entryPoint.replace(/\W+/g, '-')}.js`);
  await build({
    entryPoints: [entryPoint],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*'],
    outfile,
    logLevel: 'silent',
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
  close(): Promise<void>;
}

export const controlToken = (secret = EDGE_CONTROL_SECRET, expiresIn = '5m') =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('hookline-control-plane').setAudience('hookline-edge').setIssuedAt().setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));

/** The edge Worker in workerd through Miniflare, with its Durable Objects in memory. */
export async function startTestEdge(bindings: Record<string, string> = {}): Promise<TestEdge> {
  const scriptPath = await bundleWorker();
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    compatibilityDate: '2026-04-01',
    compatibilityFlags: ['nodejs_compat'],
    durableObjects: { FLOW_TRIGGERS: 'FlowTrigger', FLOW_REGISTRY: 'FlowRegistry' },
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
      const res = await edge.control('PUT', `/control/flows/${trigger.flowId}`, { tenant: 'tenant-1', status: 'live', version: ++version, ...trigger });
      if (res.status !== 200) throw new Error(`push failed: ${res.status} ${await res.text()}`);
    },
    close: () => mf.dispose(),
  };
  return edge;
}
