/**
 * `npm run bench:soak`: Hookline as separate processes under steady load for a long while; each
 * process's memory and each queue's depth at the start and the end. See bench/README.md.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { census, type Census } from './support/census.js';
import { drained, executionsOf, outcome } from './support/outcome.js';
import { startInfrastructure, startStack } from './support/stack.js';
import type { Calls } from './support/callers.js';
import { ORDER } from './support/wrk.js';

const { values: args } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    minutes: { type: 'string', default: '20' },
    rate: { type: 'string', default: '20' },
  },
});
if (args.help) {
  console.log(`bench/soak.ts: steady load for a long while; does anything grow?

Usage: npm run bench:soak -- [--minutes 20] [--rate 20]

Starts Hookline as bench/faults.ts does (separate processes: the control plane on a private
PostgreSQL cluster and RabbitMQ node, two process runners, the edge on workerd) and sends --rate
webhooks a second (open loop) to a webhook → jsonata flow for --minutes. It looks at every process's
RSS and V8 heap, every queue's depth and the outbox's every 10 s, and prints the medians of the
second minute, of the minute in the middle of the run and of the last minute: a process grew if
its median rose by more than 20% and 10 MB from the middle to the end (a leak grows all along; a
heap or a cache warming up levels off); a queue or the outbox if it holds more than a second's
calls at the end. Then it checks that every accepted call became one finished execution.`);
  process.exit(0);
}
const minutes = Number(args.minutes);
const rate = Number(args.rate);
if (!(minutes >= 3)) throw new Error('--minutes: at least 3 (a minute of warm-up, then a first and a last minute)');

/** Open-loop calls at `rate` a second until `signal` aborts. */
async function paced(url: string, signal: AbortSignal): Promise<Calls> {
  const calls: Calls = { accepted: new Map(), refused: 0 };
  const pending: Promise<void>[] = [];
  const begun = Date.now();
  for (let k = 0; !signal.aborted; k++) {
    const due = begun + (k * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    const sentAt = Date.now();
    pending.push(
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ORDER, signal: AbortSignal.timeout(10_000) })
        .then(async (response) => {
          const id = ((await response.json()) as { data?: { flowExecId?: string } }).data?.flowExecId;
          if (response.ok && id) calls.accepted.set(id, sentAt);
          else calls.refused++;
        })
        .catch(() => {
          calls.refused++;
        }),
    );
  }
  await Promise.all(pending);
  return calls;
}

const MB = 1024 * 1024;
const median = (values: number[]) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : Number.NaN;
};

const infra = await startInfrastructure({ docker: false });
try {
  const stack = await startStack(infra, { driver: 'process' });
  try {
    console.log(`${rate} calls/s for ${minutes} min; a look every 10 s`);
    const stopLoad = new AbortController();
    const load = paced(stack.hookUrl, stopLoad.signal);
    const looks: Census[] = [];
    const begun = Date.now();
    while (Date.now() - begun < minutes * 60_000) {
      await sleep(10_000);
      const look = await census(stack, infra.broker.url);
      looks.push(look);
      const minute = Math.floor((look.at - begun) / 60_000);
      if (looks.length % 6 === 0) {
        const cp = look.memory.get('control-plane');
        const queued = [...look.queues.values()].reduce((sum, n) => sum + n, 0);
        console.log(
          `  min ${minute}: control plane rss ${(cp!.rss / MB).toFixed(0)} MB heap ${((cp!.heapUsed ?? 0) / MB).toFixed(0)} MB, queued ${queued}, outbox ${look.outbox}`,
        );
      }
    }
    stopLoad.abort();
    const calls = await load;
    const within = (from: number, to: number) => looks.filter((look) => look.at - begun >= from && look.at - begun < to);
    const first = within(60_000, 120_000);
    const half = (looks.at(-1)!.at - begun) / 2;
    const middle = within(half - 30_000, half + 30_000);
    const last = looks.filter((look) => look.at > looks.at(-1)!.at - 60_000);

    // A leak grows all along; a cache or a heap warming up grows, then levels off: growth is judged
    // from the middle of the run to its end, after the warm-up, and the warm-up shown beside it.
    const grew: string[] = [];
    console.log('\n| process | RSS 2nd minute | RSS middle | RSS last minute | heap 2nd minute | heap middle | heap last minute |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const name of looks.at(-1)!.memory.keys()) {
      // Step workers are counted together, and their number is in their name: match on the runner.
      const key = (look: Census) => [...look.memory.keys()].find((k) => k.split(' (')[0] === name.split(' (')[0]);
      const of = (looks_: Census[], field: 'rss' | 'heapUsed') =>
        median(looks_.map((look) => look.memory.get(key(look) ?? '')?.[field] ?? Number.NaN));
      const rss = [of(first, 'rss'), of(middle, 'rss'), of(last, 'rss')] as const;
      const heap = [of(first, 'heapUsed'), of(middle, 'heapUsed'), of(last, 'heapUsed')] as const;
      const growing = (start: number, end: number) => end > start * 1.2 && end - start > 10 * MB;
      if (growing(rss[1], rss[2]) || growing(heap[1], heap[2])) grew.push(name);
      const mb = (n: number) => (Number.isFinite(n) ? `${(n / MB).toFixed(1)} MB` : '–');
      console.log(`| ${name} | ${[...rss, ...heap].map(mb).join(' | ')} |`);
    }
    console.log('\n| queue | ready at start | ready at end |');
    console.log('|---|---:|---:|');
    for (const [name, depth] of looks.at(-1)!.queues) {
      const start = median(first.map((look) => look.queues.get(name) ?? 0));
      const end = median(last.map((look) => look.queues.get(name) ?? 0));
      if (end > rate) grew.push(`${name} (${depth} ready)`);
      console.log(`| ${name.replace(`${stack.namespace}.`, '').replace(stack.flowId, '<flow>')} | ${start} | ${end} |`);
    }
    const outboxStart = median(first.map((look) => look.outbox));
    const outboxEnd = median(last.map((look) => look.outbox));
    if (outboxEnd > rate) grew.push('the outbox');
    console.log(`| outbox (rows) | ${outboxStart} | ${outboxEnd} |`);

    const drain = await drained(stack.db, calls, 300_000);
    const result = outcome(calls, await executionsOf(stack.db, stack.flowId));
    console.log(
      `\naccepted ${result.accepted} (refused ${result.refused}), missing ${result.missing}, duplicated ${result.duplicated}, failed ${result.failed}; ` +
        `drained ${(drain.ms / 1000).toFixed(1)} s after the load`,
    );
    for (const exit of stack.unexpectedExits) console.log(`unexpected exit: ${exit}`);
    console.log(grew.length ? `Grew: ${grew.join(', ')}` : 'Nothing grew.');
  } finally {
    await stack.stop();
  }
} finally {
  await infra.stop();
}
