import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as forward, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN } from './control-plane.js';
import { EDGE_CONTROL_SECRET } from './edge.js';
import { waitFor } from './events.js';
import { freePort } from './ports.js';
import { edgePart, nodePart, type Part } from './processes.js';

export type { Part } from './processes.js';

export interface StackOptions {
  databaseUrl: string;
  amqpUrl: string;
  namespace: string;
  runners?: number;
  /** The runners' driver (process by default); docker runs the steps on the engine at `dockerHost`. */
  driver?: 'process' | 'docker';
  dockerHost?: string;
  /** Settings of the control plane on top of the stack's own. */
  env?: Record<string, string>;
}

/** The edge's way to the control plane, as a load balancer would be: it forwards, or answers 500 while `failing`. */
export interface Proxy {
  url: string;
  failing: boolean;
  /** Requests it answered 500 to. */
  failed: number;
  close(): Promise<void>;
}

export interface Stack {
  controlPlane: Part & { url: string };
  edge: Part & { url: string };
  runners: Part[];
  proxy: Proxy;
  /** The name of the alive runner that runs the flow (its deployment ready there), or null. */
  runnerOf(flowId: string): Promise<string | null>;
  /** A user of a tenant of its own, with TENANT_INTEGRATOR. */
  token: string;
  /** The flows started (startWebhookFlow): `close()` stops them, so their queues go with them. */
  flows: string[];
  request(method: string, path: string, options?: { token?: string; body?: unknown }): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

const LOG_LEVEL = process.env.TEST_LOG_LEVEL ?? 'info';

const answers = (url: string) =>
  fetch(url).then(
    (r) => r.ok,
    () => false,
  );

export function startProxy(port: number, target: string): Promise<Proxy> {
  const to = new URL(target);
  const server: Server = createServer((req, res) => {
    if (proxy.failing) {
      proxy.failed++;
      req.resume();
      res
        .writeHead(500, { 'content-type': 'application/json' })
        .end('{"errors":[{"message":"proxy: failing on purpose","code":"internal"}]}');
      return;
    }
    const upstream = forward({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
  });
  const proxy: Proxy = {
    url: `http://127.0.0.1:${port}`,
    failing: false,
    failed: 0,
    close: () => new Promise<void>((done) => server.close(() => done()).closeAllConnections()),
  };
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(proxy)));
}

/**
 * Hookline as it is deployed, each deployable its own process: the control plane (on `databaseUrl`
 * and `amqpUrl`), `runners` runner nodes (process driver, platform-wide) and the edge Worker on
 * workerd, which reaches the control plane through a proxy that can be made to fail. Every part
 * can be killed and started again on the same port and data. Logs and data in a temporary folder.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'hookline-stack-'));
  const [cpPort, edgePort, proxyPort] = [await freePort(), await freePort(), await freePort()];
  const cpUrl = `http://127.0.0.1:${cpPort}`;
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const proxy = await startProxy(proxyPort, cpUrl);

  const cp = nodePart({
    name: 'control-plane',
    entry: 'control-plane/main.ts',
    env: {
      LOG_LEVEL,
      PORT: String(cpPort),
      HOST: '127.0.0.1',
      DATABASE_URL: options.databaseUrl,
      AMQP_URL: options.amqpUrl,
      BUS_NAMESPACE: options.namespace,
      ADMIN_USERNAME: ADMIN.username,
      ADMIN_PASSWORD: ADMIN.password,
      EDGE_URL: edgeUrl,
      EDGE_CONTROL_SECRET,
      ...options.env,
    },
    logFile: join(dir, 'control-plane.log'),
    ready: () => answers(`${cpUrl}/healthcheck`),
  });
  const controlPlane = { ...cp, url: cpUrl };

  const edge = edgePart({
    port: edgePort,
    vars: { EDGE_CONTROL_SECRET, CONTROL_PLANE_URL: proxy.url },
    dataDir: join(dir, 'edge'),
    logFile: join(dir, 'edge.log'),
  });

  const request: Stack['request'] = async (method, path, { token, body } = {}) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${cpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const ok = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await request(method, path, { token, body });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.data;
  };
  const login = async (username: string, password: string) =>
    (await request('POST', '/login', { body: { username, password } })).body.data.token as string;

  let admin = '';
  const stack: Stack = {
    controlPlane,
    edge,
    runners: [],
    proxy,
    token: '',
    flows: [],
    request,
    async runnerOf(flowId) {
      const listed = await request('GET', '/runners?page[size]=100', { token: admin });
      const runners = (listed.body?.data ?? []) as { name: string; status: string; deployments: { flowId: string; state: string }[] }[];
      return (
        runners.find((r) => r.status === 'alive' && r.deployments.some((d) => d.flowId === flowId && d.state === 'ready'))?.name ?? null
      );
    },
    async close() {
      await stopFlows(stack).catch(() => {});
      for (const part of [edge, ...stack.runners, controlPlane]) await part.stop().catch(() => {});
      await proxy.close();
      // KEEP=1 keeps the logs and data, to read after a failure.
      if (process.env.KEEP) console.log(`stack kept in ${dir}`);
      else await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all([controlPlane.start(), edge.start()]);
    admin = await login(ADMIN.username, ADMIN.password);
    const tenant = await ok('POST', '/api/v1/tenants', admin, { name: `faults-${Date.now()}` });
    const user = { username: `integrator-${Date.now()}@example.com`, password: 'a-long-enough-password-for-faults' };
    await ok('POST', '/api/v1/users', admin, { ...user, tenant: tenant.id, roles: ['TENANT_INTEGRATOR'] });
    stack.token = await login(user.username, user.password);
    for (let i = 0; i < (options.runners ?? 1); i++) {
      const name = `runner-${i + 1}`;
      const account = await ok('POST', '/api/v1/users', admin, {
        username: `${name}-${Date.now()}`,
        kind: 'service',
        tenant: null,
        permissions: ['runners.write', 'runners.read'],
      });
      const { token } = await ok('POST', '/api/v1/tokens', admin, { accountId: account.id });
      const runner = nodePart({
        name,
        entry: 'runner/main.ts',
        env: {
          LOG_LEVEL,
          CONTROL_PLANE_URL: cpUrl,
          RUNNER_TOKEN: token,
          RUNNER_NAME: name,
          RUNNER_DRIVER: options.driver ?? 'process',
          ...(options.dockerHost ? { DOCKER_HOST: options.dockerHost } : {}),
          RUNNER_CAPACITY: '8',
          RUNNER_DATA_DIR: join(dir, name),
          AMQP_URL: options.amqpUrl,
          BUS_NAMESPACE: options.namespace,
        },
        logFile: join(dir, `${name}.log`),
        ready: async () => {
          const listed = await request('GET', '/runners?page[size]=100', { token: admin });
          return (listed.body?.data ?? []).some((r: { name: string; status: string }) => r.name === name && r.status === 'alive');
        },
      });
      stack.runners.push(runner);
    }
    await Promise.all(stack.runners.map((runner) => runner.start()));
  } catch (error) {
    await stack.close();
    throw error;
  }
  return stack;
}

/** Stops the stack's flows and waits until they are inactive (their runners deleted their queues). */
async function stopFlows(stack: Stack): Promise<void> {
  for (const flowId of stack.flows) await stack.request('POST', `/flows/${flowId}/stop`, { token: stack.token });
  for (const flowId of stack.flows)
    await waitFor(
      () => stack.request('GET', `/flows/${flowId}`, { token: stack.token }),
      (res) => res.body?.data?.status === 'inactive',
      30_000,
    );
}
