import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../test/support/ports.js';

export const ADMIN = { username: 'admin@hookline.local', password: 'bench-admin-password-7f3a9c' };

/** The flow of bench/e2e.ts: webhook.receive → jsonata.map adding one field. */
export const FLOW = {
  name: 'e2e bench',
  graph: {
    nodes: [
      { id: 'receive', componentId: 'webhook', function: 'receive' },
      { id: 'map', componentId: 'jsonata', function: 'map', fields: { expression: '$merge([$, {"processed": true}])' } },
    ],
    edges: [{ source: 'receive', target: 'map' }],
  },
};

/** When an execution was received at the edge, ran each step and finished (epoch ms). */
export interface Timeline {
  receivedAt: number;
  /** When the control plane recorded the execution: the edge's delivery arrived. */
  recordedAt: number;
  steps: Record<string, { firstAt: number; lastAt: number }>;
  finishedAt: number;
}

export interface Hookline {
  /** The flow's webhook URL. */
  hookUrl: string;
  /** Executions of the flow that succeeded so far. */
  succeeded(): Promise<number>;
  /** The timeline of each of these executions, by flowExecId; missing or unfinished ones are left out. */
  timelines(flowExecIds: string[]): Promise<Map<string, Timeline>>;
  stop(): Promise<void>;
}

/**
 * Hookline as `npm start` runs it (scripts/start.ts, a process of its own), on its embedded
 * defaults or with `env` (DATABASE_URL, AMQP_URL...), the edge under `edge`; with the bench flow
 * created and active.
 */
export async function startHookline(options: { edge: 'wrangler' | 'workerd'; env?: Record<string, string> }): Promise<Hookline> {
  const dir = await mkdtemp(join(tmpdir(), 'hookline-e2e-'));
  const [port, edgePort] = [await freePort(), await freePort()];
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts', `--edge=${options.edge}`], {
    env: {
      ...process.env,
      PORT: String(port),
      EDGE_PORT: String(edgePort),
      HOOKLINE_DATA_DIR: dir,
      PGLITE_DIR: join(dir, 'pglite'),
      SECRETS_MASTER_KEY_FILE: join(dir, 'secrets-master.key'),
      ADMIN_PASSWORD: ADMIN.password,
      LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (data) => (output += data));
  child.stderr!.on('data', (data) => (output += data));
  const api = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (!output.includes('Log in:')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${output.slice(-2000)}`);
    await sleep(200);
  }
  const call = controlPlaneApi(api);
  const token = (await call('POST', '/login', ADMIN)).data.token as string;
  const flowId = (await call('POST', '/flows', FLOW, token)).data.id as string;
  await call('POST', `/flows/${flowId}/start`, undefined, token);
  while ((await call('GET', `/flows/${flowId}`, undefined, token)).data.status !== 'active') {
    if (Date.now() > deadline) throw new Error('the bench flow did not become active');
    await sleep(200);
  }
  const hookUrl = `http://127.0.0.1:${edgePort}/hook/${flowId}`;
  // The edge goes live on flow.started, a moment after the flow is active.
  while ((await fetch(hookUrl, { method: 'HEAD' })).status !== 200) await sleep(100);
  return {
    hookUrl,
    succeeded: async () =>
      (await call('GET', `/executions?filter[flowId]=${flowId}&filter[status]=succeeded&page[size]=1`, undefined, token)).meta.total,
    async timelines(flowExecIds) {
      const found = new Map<string, Timeline>();
      for (const id of flowExecIds) {
        const { data } = await call('GET', `/executions/${id}`, undefined, token).catch(() => ({ data: null }));
        if (!data?.finishedAt) continue;
        const steps = Object.fromEntries(
          Object.entries(data.steps as Record<string, { firstAt: string; lastAt: string }>).map(([step, s]) => [
            step,
            { firstAt: Date.parse(s.firstAt), lastAt: Date.parse(s.lastAt) },
          ]),
        );
        found.set(id, {
          receivedAt: Date.parse(data.startedAt),
          recordedAt: Date.parse(data.recordedAt),
          steps,
          finishedAt: Date.parse(data.finishedAt),
        });
      }
      return found;
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGINT');
        await exited;
      }
      if (process.env.KEEP) console.log('kept', dir);
      else await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Calls the control plane's REST API at `base`, as JSON; an answer of 400 or more throws with its body. */
export const controlPlaneApi =
  (base: string) =>
  async (method: string, path: string, body?: unknown, token?: string): Promise<{ data: any; meta?: any }> => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await response.json()) as { data: any; meta?: any };
    if (response.status >= 400) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
