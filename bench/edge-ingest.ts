/**
 * Question: what does a durable webhook ingest cost? POST /hook/{flowId} through local workerd
 * (Miniflare): the real Worker (routing to the flow's Durable Object, auth check, parsing, the
 * atomic outbox write, the alarm) against a bare hono Worker that answers 202 and does nothing,
 * measured in the same run.
 *
 *   npx tsx bench/edge-ingest.ts [--duration 5] [--rounds 3] [--connections 32] [--flows 16]
 *
 * The outbox is delivered during the run to a stand-in control plane that acknowledges every batch.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Miniflare } from 'miniflare';
import { bundleWorker, startTestEdge } from '../test/support/edge.js';
import { acknowledgingControlPlane } from './support/stand-in-control-plane.js';
import { durableStorage } from './support/storage.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    flows: { type: 'string', default: '16' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log('Usage: npx tsx bench/edge-ingest.ts [--duration SECONDS] [--rounds N] [--connections N] [--flows N]');
  process.exit(0);
}
const [duration, rounds, connections, flowCount] = [args.duration, args.rounds, args.connections, args.flows].map(Number) as [
  number,
  number,
  number,
  number,
];

interface Figures {
  rps: number;
  p50: number;
  p99: number;
}
const BODY = JSON.stringify({ order: 42, items: [1, 2, 3] });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * `connections` callers posting for `seconds`, spread over `paths` (several flows, as real traffic
 * is). Node's fetch rather than autocannon: local workerd closes every connection after one
 * response, which autocannon counts as an error per request.
 */
async function load(base: string, paths: string[], seconds: number): Promise<Figures> {
  const latencies: number[] = [];
  const end = Date.now() + seconds * 1000;
  let next = 0;
  const caller = async () => {
    while (Date.now() < end) {
      const started = performance.now();
      const res = await fetch(new URL(paths[next++ % paths.length]!, base), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
      });
      await res.arrayBuffer();
      if (res.status !== 202) throw new Error(`${base}: answered ${res.status}`);
      latencies.push(performance.now() - started);
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: connections }, caller));
  const elapsed = (performance.now() - began) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length * 0.5)]!,
    p99: latencies[Math.floor(latencies.length * 0.99)]!,
  };
}

async function main() {
  process.stdout.write('starting the Worker and the bare Worker in workerd... ');
  const controlPlane = await acknowledgingControlPlane();
  const edge = await startTestEdge({ CONTROL_PLANE_URL: controlPlane.url });
  const flows = Array.from({ length: flowCount }, () => randomUUID());
  for (const flowId of flows) await edge.push({ flowId });
  const bare = new Miniflare({
    modules: true,
    scriptPath: await bundleWorker('bench/support/bare-worker.ts'),
    compatibilityDate: '2026-04-01',
    cf: false,
  });
  const targets = { bare: (await bare.ready).toString(), hookline: (await edge.mf.ready).toString() };
  const paths = flows.map((id) => `/hook/${id}`);
  console.log('ready');
  console.log(await durableStorage());
  console.log(
    `local workerd (Miniflare), ${connections} callers over ${flowCount} flows, ${rounds} rounds of ${duration} s (medians of the rounds); delivery to an acknowledging stand-in control plane included\n`,
  );
  try {
    await load(targets.bare, paths, 1);
    await load(targets.hookline, paths, 1);
    const figures = { bare: [] as Figures[], hookline: [] as Figures[] };
    for (let round = 1; round <= rounds; round++) {
      process.stdout.write(`\rround ${round}/${rounds}`);
      figures.bare.push(await load(targets.bare, paths, duration));
      figures.hookline.push(await load(targets.hookline, paths, duration));
    }
    const summary = (list: Figures[]) => ({
      rps: median(list.map((f) => f.rps)),
      p50: median(list.map((f) => f.p50)),
      p99: median(list.map((f) => f.p99)),
    });
    const [b, h] = [summary(figures.bare), summary(figures.hookline)];
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const row = (name: string, f: Figures) =>
      `  ${name.padEnd(34)} ${f.rps.toFixed(0).padStart(6)} req/s   p50 ${f.p50.toFixed(1)} ms   p99 ${f.p99.toFixed(1)} ms`;
    console.log(`\rPOST /hook/{flowId}        `);
    console.log(row('bare hono Worker, 202 (baseline)', b));
    console.log(row('hookline (Durable Object outbox)', h));
    console.log(`  throughput ratio hookline/bare: ${(h.rps / b.rps).toFixed(2)}`);
    console.log(`  (every accepted call was also delivered to the control plane: ${controlPlane.delivered()} so far)`);
  } finally {
    controlPlane.close();
    await edge.close();
    await bare.dispose();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
