/**
 * Hookline as separate deployables, for the fault bench and the soak: the control plane on a private
 * PostgreSQL cluster and a private RabbitMQ node, behind a proxy that can answer 500; two runner
 * nodes; the edge on workerd (what `npm run edge` serves). Each part is a process of its own that
 * the bench can kill and start again.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { signPeerToken } from '../../protocol/peer-token.js';
import { startPostgresCluster, type PostgresCluster } from '../../test/support/pg-cluster.js';
import { freePort } from '../../test/support/ports.js';
import { edgePart, nodePart, type Part as ProcessPart } from '../../test/support/processes.js';
import { startPrivateBroker, type PrivateBroker } from '../../test/support/rabbitmq.js';
import { type Proxy as FailingProxy, startProxy } from '../../test/support/stack.js';
import { startPrivateDockerd, type PrivateDockerd } from './dockerd.js';
import { ADMIN, controlPlaneApi, FLOW } from './hookline.js';

/** What the parts share across rounds: PostgreSQL, RabbitMQ and (for the docker driver) a Docker engine, all private. */
export interface Infrastructure {
  postgres: PostgresCluster;
  broker: PrivateBroker;
  dockerd?: PrivateDockerd;
  stop(): Promise<void>;
}

export async function startInfrastructure(options: { docker: boolean }): Promise<Infrastructure> {
  const [postgres, broker] = await Promise.all([startPostgresCluster(), startPrivateBroker()]);
  const dockerd = options.docker ? await startPrivateDockerd() : undefined;
  return {
    postgres,
    broker,
    dockerd,
    async stop() {
      await dockerd?.stop();
      await broker.dispose();
      await postgres.stop();
    },
  };
}

/** One deployable, as a process the bench starts, kills and starts again, and whose memory it reads. */
export interface Part extends ProcessPart {
  /** Its process's memory: RSS, and for Node processes the V8 heap (bytes). */
  memory(): Promise<{ rss: number; heapUsed?: number }>;
}

/** VmRSS of a process, from /proc (bytes). */
async function rssOf(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) * 1024;
}

async function until(what: string, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${deadlineMs / 1000} s`);
    await sleep(100);
  }
}

/**
 * A Node deployable with the memory probe preloaded (bench/support/memory-probe.ts), its output in
 * `<dir>/<name>.log`; `unexpected` hears of exits nobody asked for.
 */
function probedNodePart(
  name: string,
  entry: string,
  env: Record<string, string>,
  dir: string,
  ready: () => Promise<boolean>,
  unexpected: (what: string) => void,
): Part {
  const probe = join(dir, `${name}.memory.json`);
  const part = nodePart({
    name,
    entry,
    env: { ...env, HOOKLINE_MEMORY_PROBE: probe },
    logFile: join(dir, `${name}.log`),
    ready,
    imports: ['./bench/support/memory-probe.ts'],
    unexpectedExit: unexpected,
  });
  return {
    ...part,
    async memory() {
      const probed = await readFile(probe, 'utf8').then(
        (text) => JSON.parse(text) as { heapUsed: number },
        () => undefined,
      );
      return { rss: await rssOf(part.pid()), heapUsed: probed?.heapUsed };
    },
  };
}

export interface Stack {
  flowId: string;
  hookUrl: string;
  namespace: string;
  controlPlane: Part;
  runners: Part[];
  edge: Part;
  /** In front of the control plane for the edge and the runners. */
  proxy: FailingProxy;
  /** The control plane's own database. */
  db: pg.Pool;
  /** A call to the control plane's API (directly, not through the proxy) as the admin. */
  api(method: string, path: string, body?: unknown): Promise<any>;
  /** The runners the flow is deployed on, as they reported at their last heartbeat. */
  runnersOfFlow(): Promise<Part[]>;
  /** Exits nobody asked for, each with the end of its log. */
  unexpectedExits: string[];
  stop(): Promise<void>;
}

/** Starts the parts on `infra` (a database and bus namespace of their own) with the bench flow active. */
export async function startStack(infra: Infrastructure, options: { driver: 'process' | 'docker' }): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'hookline-bench-stack-'));
  const name = `bench_${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: infra.postgres.url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const databaseUrl = infra.postgres.url.replace(/\/postgres$/, `/${name}`);
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  db.on('error', () => {}); // a PostgreSQL restart ends idle clients; the next query reconnects
  const unexpectedExits: string[] = [];
  const unexpected = (what: string) => unexpectedExits.push(what);

  const [port, edgePort] = [await freePort(), await freePort()];
  const controlPlaneUrl = `http://127.0.0.1:${port}`;
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const secret = randomBytes(32).toString('base64url');
  const proxy = await startProxy(await freePort(), controlPlaneUrl);
  const healthy = (url: string) => async () => (await fetch(`${url}/healthcheck`)).status === 200;

  const controlPlane = probedNodePart(
    'control-plane',
    'control-plane/main.ts',
    {
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      AMQP_URL: infra.broker.url,
      BUS_NAMESPACE: name,
      ADMIN_PASSWORD: ADMIN.password,
      SECRETS_MASTER_KEY_FILE: join(dir, 'secrets-master.key'),
      EDGE_URL: edgeUrl,
      EDGE_CONTROL_SECRET: secret,
      LOG_LEVEL: 'warn',
    },
    dir,
    healthy(controlPlaneUrl),
    unexpected,
  );
  await controlPlane.start();

  let token = '';
  const call = controlPlaneApi(controlPlaneUrl);
  const api = (method: string, path: string, body?: unknown) => call(method, path, body, token || undefined);
  token = (await api('POST', '/login', ADMIN)).data.token;

  const edge = edgePart({
    port: edgePort,
    vars: { EDGE_CONTROL_SECRET: secret, CONTROL_PLANE_URL: proxy.url },
    dataDir: dir,
    logFile: join(dir, 'workerd.log'),
  });
  const edgeWithMemory: Part = { ...edge, memory: async () => ({ rss: await rssOf(edge.pid()) }) };
  await edge.start();
  // What the Cron Trigger does on Cloudflare and `npm run edge` does every minute.
  const reconcile = async () => {
    await fetch(`${edgeUrl}/control/reconcile`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await signPeerToken(secret, 'control-plane')}` },
    })
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
  };
  const reconciling = setInterval(reconcile, 60_000);

  // A platform-wide runner account, as README's "Runner hosts" makes one.
  const permissions = ['runners.write', 'runners.read'];
  const account = (await api('POST', '/api/v1/users', { username: 'bench-runner', kind: 'service', tenant: null, permissions })).data
    .id as string;
  const runnerToken = (await api('POST', '/api/v1/tokens', { accountId: account })).data.token as string;
  const runners = [1, 2].map((n) =>
    probedNodePart(
      `runner-${n}`,
      'runner/main.ts',
      {
        CONTROL_PLANE_URL: proxy.url,
        RUNNER_TOKEN: runnerToken,
        RUNNER_NAME: `bench-${n}`,
        RUNNER_DRIVER: options.driver,
        RUNNER_DATA_DIR: join(dir, `runner-${n}`),
        AMQP_URL: infra.broker.url,
        BUS_NAMESPACE: name,
        LOG_LEVEL: 'warn',
        ...(infra.dockerd ? { DOCKER_HOST: infra.dockerd.host } : {}),
      },
      dir,
      async () => {
        const { data } = await api('GET', '/runners?page[size]=100');
        return (data as { name: string; status: string }[]).some((r) => r.name === `bench-${n}` && r.status === 'alive');
      },
      unexpected,
    ),
  );
  await Promise.all(runners.map((runner) => runner.start()));

  const flowId = (await api('POST', '/flows', FLOW)).data.id as string;
  await api('POST', `/flows/${flowId}/start`);
  await until('the bench flow active', 180_000, async () => (await api('GET', `/flows/${flowId}`)).data.status === 'active');
  const hookUrl = `${edgeUrl}/hook/${flowId}`;
  await until('the edge serving the flow', 60_000, async () => (await fetch(hookUrl, { method: 'HEAD' })).status === 200);

  return {
    flowId,
    hookUrl,
    namespace: name,
    controlPlane,
    runners,
    edge: edgeWithMemory,
    proxy,
    db,
    api,
    unexpectedExits,
    async runnersOfFlow() {
      const { data } = await api('GET', '/runners?page[size]=100');
      const hosting = (data as { name: string; deployments: { flowId: string }[] }[])
        .filter((r) => r.deployments.some((d) => d.flowId === flowId))
        .map((r) => r.name);
      return runners.filter((_, k) => hosting.includes(`bench-${k + 1}`));
    },
    async stop() {
      clearInterval(reconciling);
      for (const part of [...runners, edge, controlPlane]) await part.stop().catch(() => undefined);
      await proxy.close();
      await db.end();
      const client = new pg.Client({ connectionString: infra.postgres.url });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
