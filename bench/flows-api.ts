/**
 * Question: what do authentication, validation, tenant scoping, the outbox and logging cost on the
 * flows API? Authenticated GET /flows/{id} and POST /flows on node-postgres, against a bare
 * hono-on-Node handler doing the same single-row query with no auth, measured in the same run.
 *
 *   npx tsx bench/flows-api.ts [--duration 5] [--rounds 3] [--connections 16]
 *
 * Needs a PostgreSQL server (TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
 * Each server runs in its own process; autocannon drives them from this one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort } from '../test/support/ports.js';
import { createTestDatabase } from '../test/support/postgres.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log('Usage: npx tsx bench/flows-api.ts [--duration SECONDS] [--rounds N] [--connections N]');
  process.exit(0);
}
const duration = Number(args.duration);
const rounds = Number(args.rounds);
const connections = Number(args.connections);

const flowBody = (n: number) => ({
  name: `bench flow ${n}`,
  graph: {
    nodes: [
      { id: 'step_1', componentId: 'http', function: 'request' },
      { id: 'step_2', componentId: 'jsonata', function: 'map', fields: { expression: '$' } },
    ],
    edges: [{ source: 'step_1', target: 'step_2' }],
  },
});

async function startServer(script: string, env: Record<string, string>): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`${url}/healthcheck`);
      return { url, process: child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${script} did not start`);
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
}

async function load(options: autocannon.Options): Promise<Figures> {
  const result = await autocannon({ connections, duration, ...options });
  const failed = result.non2xx + result.errors + result.timeouts;
  if (failed > 0) throw new Error(`${options.url}: ${failed} failed requests`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main() {
  const database = await createTestDatabase();
  const children: ChildProcess[] = [];
  try {
    process.stdout.write('starting the control plane and the bare server... ');
    const password = 'bench-admin-password';
    const hookline = await startServer('control-plane/main.ts', {
      DATABASE_URL: database.url,
      ADMIN_PASSWORD: password,
      LOG_LEVEL: 'warn',
    });
    children.push(hookline.process);
    const login = await fetch(`${hookline.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin@hookline.local', password }),
    });
    const token = ((await login.json()) as { data: { token: string } }).data.token;
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created = await fetch(`${hookline.url}/flows`, { method: 'POST', headers: auth, body: JSON.stringify(flowBody(0)) });
    const flow = ((await created.json()) as { data: { id: string; tenant: string } }).data;
    const bare = await startServer('bench/support/bare-server.ts', { DATABASE_URL: database.url, BENCH_TENANT_ID: flow.tenant });
    children.push(bare.process);
    console.log('ready');
    console.log(`node-postgres, ${connections} connections, ${rounds} rounds of ${duration} s each (figures are medians of the rounds)\n`);

    const cases = {
      'GET /flows/{id}': {
        bare: { url: `${bare.url}/flows/${flow.id}` },
        hookline: { url: `${hookline.url}/flows/${flow.id}`, headers: auth },
      },
      'POST /flows': {
        bare: {
          url: `${bare.url}/flows`,
          method: 'POST' as const,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(flowBody(1)),
        },
        hookline: { url: `${hookline.url}/flows`, method: 'POST' as const, headers: auth, body: JSON.stringify(flowBody(1)) },
      },
    };
    for (const [name, targets] of Object.entries(cases)) {
      await load({ ...targets.bare, duration: 1 });
      await load({ ...targets.hookline, duration: 1 });
      const figures = { bare: [] as Figures[], hookline: [] as Figures[] };
      for (let round = 1; round <= rounds; round++) {
        process.stdout.write(`\r${name}: round ${round}/${rounds}`);
        figures.bare.push(await load(targets.bare));
        figures.hookline.push(await load(targets.hookline));
      }
      const summary = (list: Figures[]) => ({
        rps: median(list.map((f) => f.rps)),
        p50: median(list.map((f) => f.p50)),
        p99: median(list.map((f) => f.p99)),
      });
      const b = summary(figures.bare);
      const h = summary(figures.hookline);
      console.log(`\r${name}${' '.repeat(20)}`);
      console.log(
        `  bare hono + pg (baseline)   ${b.rps.toFixed(0).padStart(7)} req/s   p50 ${b.p50.toFixed(1)} ms   p99 ${b.p99.toFixed(1)} ms`,
      );
      console.log(
        `  hookline (auth, full stack) ${h.rps.toFixed(0).padStart(7)} req/s   p50 ${h.p50.toFixed(1)} ms   p99 ${h.p99.toFixed(1)} ms`,
      );
      console.log(`  throughput ratio hookline/bare: ${(h.rps / b.rps).toFixed(2)}\n`);
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await database.drop();
  }
}

await main();
