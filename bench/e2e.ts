/**
 * Webhook in → last step done, Hookline against n8n on the same machine in one run: see bench/README.md.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createTestDatabase, postgresAdminUrl } from '../test/support/postgres.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitUrl, uniqueNamespace } from '../test/support/rabbitmq.js';
import { freePort } from '../test/support/ports.js';
import { FLOW, startHookline, type Timeline } from './support/hookline.js';
import { startN8n } from './support/n8n.js';
import { numberedOrder, orderNumber, wrk, type WrkResult } from './support/wrk.js';

const SYSTEMS = ['n8n', 'n8n-legacy', 'embedded-wrangler', 'embedded-workerd', 'pg-wrangler', 'pg-workerd'] as const;
type SystemName = (typeof SYSTEMS)[number];

const { values: args } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    threads: { type: 'string', default: '2' },
    paced: { type: 'string', default: '20' },
    only: { type: 'string', default: SYSTEMS.join(',') },
    'n8n-dir': { type: 'string' },
  },
});
if (args.help) {
  console.log(`bench/e2e.ts: webhook in → last step done, Hookline and n8n side by side

Usage: npx tsx bench/e2e.ts [--seconds 30] [--warmup 5] [--connections 50] [--threads 2] [--paced 20]
                            [--only ${SYSTEMS.join(',')}] [--n8n-dir DIR]

Each system gets the same flow (webhook → one mapping step adding a field), a warm-up, then wrk
POSTing a 225-byte JSON body for --seconds with --connections; it prints the calls accepted per
second, the executions completed per second including the drain after the load, and then the
call → last-step latency (p50/p99) of calls paced at half that completed rate for --paced seconds.
n8n comes from bench/peers/install-n8n.sh (--n8n-dir, default $HOOKLINE_PEERS or
~/.cache/hookline-peers, then n8n-2.41.1); without it the n8n rows are left out.
pg-* use PostgreSQL (TEST_DATABASE_URL, default ${postgresAdminUrl}) and RabbitMQ (TEST_AMQP_URL).`);
  process.exit(0);
}

const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const pacedSeconds = Number(args.paced);
const load = { connections: Number(args.connections), threads: Number(args.threads) };
const chosen = args.only!.split(',').map((name) => name.trim()) as SystemName[];
for (const name of chosen) if (!SYSTEMS.includes(name)) throw new Error(`--only: ${name} is not one of ${SYSTEMS.join(', ')}`);

const n8nDir = join(args['n8n-dir'] ?? process.env.HOOKLINE_PEERS ?? join(homedir(), '.cache/hookline-peers'), 'n8n-2.41.1');

/** What bench/e2e.ts needs of a running system. */
interface System {
  url: string;
  succeeded(): Promise<number>;
  /** The k-th paced call (its body numbered by k); resolves with what identifies its execution, if the system answers that. */
  call(k: number): Promise<string | undefined>;
  /**
   * When each paced call's execution finished (epoch ms), in the order of the calls: by the ids
   * they answered, or (n8n, which answers none) by the order number each execution recorded; and
   * for Hookline the whole timeline.
   */
  finished(ids: (string | undefined)[], since: number): Promise<({ finishedAt: number; timeline?: Timeline } | undefined)[]>;
  stop(): Promise<void>;
}

interface Figures {
  accepted: WrkResult;
  doneByEnd: number;
  drainSeconds: number;
  completedPerSecond: number;
  pacedRate: number;
  paced: { sent: number; done: number; p50: number; p99: number; phases: Phase[] };
}

/** A part of call → last step (Hookline only), its p50 and p99 over the paced calls. */
interface Phase {
  name: string;
  p50: number;
  p99: number;
}

const post = (url: string, k: number) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: numberedOrder(k) });

async function start(name: SystemName): Promise<System | undefined> {
  if (name.startsWith('n8n')) {
    if (!existsSync(join(n8nDir, '.installed'))) {
      console.log(`  (no n8n in ${n8nDir}: run bench/peers/install-n8n.sh; ${name} left out)`);
      return undefined;
    }
    const n8n = await startN8n({ installDir: n8nDir, port: await freePort(), legacyExpressions: name === 'n8n-legacy' });
    return {
      url: n8n.url,
      succeeded: n8n.succeeded,
      async call(k) {
        const response = await post(n8n.url, k);
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`n8n answered ${response.status}`);
        return undefined;
      },
      // n8n answers no id: each execution is found by the order number its recorded input holds.
      async finished(ids, since) {
        const stopped = await n8n.stoppedByOrder(since);
        return ids.map((_, k) => {
          const at = stopped.get(orderNumber(k));
          return at === undefined ? undefined : { finishedAt: at };
        });
      },
      stop: n8n.stop,
    };
  }
  const [mode, edge] = name.split('-') as ['embedded' | 'pg', 'wrangler' | 'workerd'];
  const cleanups: (() => Promise<void>)[] = [];
  let env: Record<string, string> = {};
  if (mode === 'pg') {
    const database = await createTestDatabase();
    const namespace = uniqueNamespace('bench');
    cleanups.push(database.drop, () => deleteNamespace(rabbitUrl, namespace, [...CONTROL_PLANE_SERVICES, 'runners']).catch(() => {}));
    env = { DATABASE_URL: database.url, AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace };
  }
  const hookline = await startHookline({ edge, env });
  return {
    url: hookline.hookUrl,
    succeeded: hookline.succeeded,
    async call(k) {
      const response = await post(hookline.hookUrl, k);
      const body = (await response.json()) as { data?: { flowExecId?: string } };
      if (!response.ok || !body.data?.flowExecId) throw new Error(`the edge answered ${response.status} ${JSON.stringify(body)}`);
      return body.data.flowExecId;
    },
    async finished(ids) {
      const found = await hookline.timelines(ids.filter((id): id is string => id !== undefined));
      return ids.map((id) => {
        const timeline = id ? found.get(id) : undefined;
        return timeline && { finishedAt: timeline.finishedAt, timeline };
      });
    },
    async stop() {
      await hookline.stop();
      for (const cleanup of cleanups) await cleanup();
    },
  };
}

/** Resolves once `count` executions succeeded, with the time that took; gives up after `limitMs`. */
async function drained(system: System, count: number, limitMs: number): Promise<number> {
  const begun = Date.now();
  while ((await system.succeeded()) < count) {
    if (Date.now() - begun > limitMs)
      throw new Error(`only ${await system.succeeded()} of ${count} executions done after ${limitMs / 1000} s`);
    await sleep(250);
  }
  return Date.now() - begun;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

/** Calls at `rate` per second for `seconds`, open loop (a call does not wait for the one before); latency = its execution's end − its sending. */
async function paced(system: System, rate: number, seconds: number): Promise<Figures['paced']> {
  const before = await system.succeeded();
  const interval = 1000 / rate;
  const count = Math.max(1, Math.round(rate * seconds));
  const since = Date.now();
  const sent: { at: number; id: Promise<string | undefined> }[] = [];
  for (let k = 0; k < count; k++) {
    const due = since + k * interval;
    if (due > Date.now()) await sleep(due - Date.now());
    sent.push({ at: Date.now(), id: system.call(k) });
  }
  const ids = await Promise.all(sent.map((call) => call.id));
  await drained(system, before + count, 120_000);
  const ends = await system.finished(ids, since);
  const spread = (of: (end: NonNullable<(typeof ends)[number]>, sentAt: number) => number | undefined) => {
    const values = ends
      .map((end, k) => (end === undefined ? undefined : of(end, sent[k]!.at)))
      .filter((ms): ms is number => ms !== undefined)
      .sort((a, b) => a - b);
    return { count: values.length, p50: percentile(values, 50), p99: percentile(values, 99) };
  };
  const latency = spread((end, sentAt) => end.finishedAt - sentAt);
  return { sent: count, done: latency.count, p50: latency.p50, p99: latency.p99, phases: timelinePhases(spread) };
}

/**
 * Call → last step cut into its parts by the execution's record: to the edge's receipt, to the
 * control plane recording it (the Durable Object's delivery), from there to the first step
 * starting (the outbox relay, the bus, the runner), each step's own time, and each hop between steps.
 */
function timelinePhases(
  spread: (of: (end: { timeline?: Timeline }, sentAt: number) => number | undefined) => { count: number; p50: number; p99: number },
): Phase[] {
  const [first, second] = FLOW.graph.nodes.map((node) => node.id) as [string, string];
  const parts: [string, (t: Timeline, sentAt: number) => number | undefined][] = [
    ['call → edge received', (t, sentAt) => t.receivedAt - sentAt],
    ['edge received → recorded', (t) => t.recordedAt - t.receivedAt],
    [`recorded → ${first} starts`, (t) => t.steps[first] && t.steps[first].firstAt - t.recordedAt],
    [`${first} runs`, (t) => t.steps[first] && t.steps[first].lastAt - t.steps[first].firstAt],
    [`${first} ends → ${second} starts`, (t) => t.steps[first] && t.steps[second] && t.steps[second].firstAt - t.steps[first].lastAt],
    [`${second} runs`, (t) => t.steps[second] && t.steps[second].lastAt - t.steps[second].firstAt],
  ];
  return parts
    .map(([name, of]) => ({ name, ...spread((end, sentAt) => end.timeline && of(end.timeline, sentAt)) }))
    .filter((phase) => phase.count > 0);
}

async function measure(name: SystemName): Promise<Figures | undefined> {
  console.log(`\n${name}: starting`);
  const system = await start(name);
  if (!system) return undefined;
  try {
    const before = await system.succeeded();
    const warm = await wrk(system.url, { seconds: warmup, ...load });
    await drained(system, before + warm.requests, 300_000);
    const settled = await system.succeeded();
    console.log(`  warmed up with ${warm.requests} calls, all done; load for ${seconds} s`);
    const begun = Date.now();
    const accepted = await wrk(system.url, { seconds, ...load });
    const doneByEnd = (await system.succeeded()) - settled;
    const loadEnded = Date.now();
    await drained(system, settled + accepted.requests, 600_000);
    const drainSeconds = (Date.now() - loadEnded) / 1000;
    const completedPerSecond = accepted.requests / ((Date.now() - begun) / 1000);
    console.log(
      `  accepted ${accepted.requests} (${(accepted.requests / seconds).toFixed(1)}/s, ${accepted.failed} refused), ` +
        `${doneByEnd} done by the end, drained in ${drainSeconds.toFixed(1)} s: ${completedPerSecond.toFixed(1)} completed/s`,
    );
    const pacedRate = Math.max(1, completedPerSecond / 2);
    const latency = await paced(system, pacedRate, pacedSeconds);
    console.log(
      `  paced at ${pacedRate.toFixed(1)}/s: ${latency.done} of ${latency.sent}, p50 ${latency.p50.toFixed(0)} ms, p99 ${latency.p99.toFixed(0)} ms`,
    );
    for (const phase of latency.phases)
      console.log(`    ${phase.name.padEnd(32)} p50 ${phase.p50.toFixed(0).padStart(4)} ms   p99 ${phase.p99.toFixed(0).padStart(4)} ms`);
    return { accepted, doneByEnd, drainSeconds, completedPerSecond, pacedRate, paced: latency };
  } finally {
    await system.stop();
  }
}

const results = new Map<SystemName, Figures>();
for (const name of chosen) {
  const figures = await measure(name);
  if (figures) results.set(name, figures);
}

const n8nDefault = results.get('n8n')?.completedPerSecond;
console.log(
  `\nwrk -t${load.threads} -c${load.connections} -d${seconds}s after ${warmup} s of warm-up; latency paced at half the completed rate for ${pacedSeconds} s\n`,
);
console.log(
  '| system | accepted/s | done by end of load | drain | completed/s incl. drain | × n8n defaults | paced rate | call → last step p50 | p99 |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, f] of results) {
  const ratio = n8nDefault ? `${(f.completedPerSecond / n8nDefault).toFixed(1)}×` : '–';
  console.log(
    `| ${name} | ${(f.accepted.requests / seconds).toFixed(1)} | ${f.doneByEnd} of ${f.accepted.requests} | ${f.drainSeconds.toFixed(0)} s | ` +
      `${f.completedPerSecond.toFixed(1)} | ${ratio} | ${f.pacedRate.toFixed(1)}/s | ${f.paced.p50.toFixed(0)} ms | ${f.paced.p99.toFixed(0)} ms |`,
  );
}
for (const edge of ['wrangler', 'workerd'] as const) {
  const embedded = results.get(`embedded-${edge}`);
  const pg = results.get(`pg-${edge}`);
  if (embedded && pg)
    console.log(`embedded / PostgreSQL mode (${edge}): ${(embedded.completedPerSecond / pg.completedPerSecond).toFixed(2)}`);
}
