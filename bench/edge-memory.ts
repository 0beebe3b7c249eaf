/**
 * Question: does the edge's memory grow with the calls it has taken? The edge on workerd as
 * `npm run edge` serves it (scripts/local-edge.ts), delivering to a stand-in control plane that
 * acknowledges every batch, under as many calls as it takes; workerd's RSS against the calls
 * taken so far, with and without idempotency keys (each kept 24 hours), and a bare hono Worker on
 * workerd under the same load as the baseline.
 *
 *   npx tsx bench/edge-memory.ts [--calls 100000] [--connections 16] [--flows 4]
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { signPeerToken } from '../protocol/peer-token.js';
import { bundleEdgeWorker } from '../scripts/edge-bundle.js';
import { startLocalEdge, workerdBinary } from '../scripts/local-edge.js';
import { freePort } from '../test/support/ports.js';
import { acknowledgingControlPlane } from './support/stand-in-control-plane.js';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '100000' },
    connections: { type: 'string', default: '16' },
    flows: { type: 'string', default: '4' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(`bench/edge-memory.ts: does the edge's memory grow with the calls it has taken?

Usage: npx tsx bench/edge-memory.ts [--calls 100000] [--connections 16] [--flows 4]

Three rounds, each on a fresh workerd: the Hookline edge (npm run edge's configuration) without
idempotency keys, the same with a new Idempotency-Key on every call (kept 24 hours), and a bare
hono Worker that answers 202 (the baseline). Each takes --calls webhook calls from --connections
callers spread over --flows flows; workerd's RSS is printed at every tenth of the calls.`);
  process.exit(0);
}
const [calls, connections, flowCount] = [args.calls, args.connections, args.flows].map(Number) as [number, number, number];
const SECRET = 'bench-edge-memory-secret-0123456789abcdef';
const BODY = JSON.stringify({ order: 42, customer: { name: 'Ada', email: 'ada@example.com' }, items: [1, 2, 3] });
const MB = 1024 * 1024;

const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

interface Round {
  name: string;
  /** RSS after each tenth of the calls, MB; the first is before any call. */
  samples: number[];
  delivered?: number;
}

/** A workerd process serving a Worker, as far as the load sees it. */
interface Served {
  url: string;
  child: { pid?: number };
}

async function drive(edge: Served, paths: string[], withKeys: boolean, name: string): Promise<Round> {
  const pid = edge.child.pid!;
  const samples = [rss(pid) / MB];
  const tenth = Math.ceil(calls / 10);
  let sent = 0;
  let done = 0;
  let nextSample = tenth;
  const caller = async () => {
    while (sent < calls) {
      const k = sent++;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (withKeys) headers['idempotency-key'] = randomUUID();
      const res = await fetch(`${edge.url}${paths[k % paths.length]}`, { method: 'POST', headers, body: BODY });
      await res.arrayBuffer();
      if (res.status !== 202) throw new Error(`${name}: call ${k} answered ${res.status}`);
      if (++done >= nextSample) {
        nextSample += tenth;
        samples.push(rss(pid) / MB);
        process.stdout.write(`\r${name}: ${done} of ${calls} calls, RSS ${samples.at(-1)!.toFixed(0)} MB   `);
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, caller));
  process.stdout.write('\n');
  return { name, samples };
}

async function hooklineRound(withKeys: boolean): Promise<Round> {
  const controlPlane = await acknowledgingControlPlane();
  const dataDir = mkdtempSync(join(tmpdir(), 'hookline-edge-memory-'));
  const edge = await startLocalEdge('workerd', {
    port: await freePort(),
    vars: { EDGE_CONTROL_SECRET: SECRET, CONTROL_PLANE_URL: controlPlane.url },
    dataDir,
    logFile: join(dataDir, 'workerd.log'),
  });
  try {
    const flows = Array.from({ length: flowCount }, () => randomUUID());
    const token = await signPeerToken(SECRET, 'control-plane');
    for (const flowId of flows) {
      const res = await fetch(`${edge.url}/control/flows/${flowId}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ flowId, tenant: 'bench', status: 'live', version: 1, webhooks: {} }),
      });
      if (res.status !== 200) throw new Error(`push failed: ${res.status} ${await res.text()}`);
    }
    const round = await drive(
      edge,
      flows.map((id) => `/hook/${id}`),
      withKeys,
      withKeys ? 'Hookline, a key per call' : 'Hookline, no keys',
    );
    return { ...round, delivered: controlPlane.delivered() };
  } finally {
    await edge.stop();
    controlPlane.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The baseline: bench/support/bare-worker.ts on workerd, configured as scripts/local-edge.ts configures the edge, minus its storage. */
async function bareRound(): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'hookline-edge-memory-bare-'));
  await bundleEdgeWorker(join(dir, 'worker.js'), 'bench/support/bare-worker.ts');
  const port = await freePort();
  writeFileSync(
    join(dir, 'bare.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "bare", worker = (modules = [(name = "worker.js", esModule = embed "worker.js")], compatibilityDate = "2026-04-01"))],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "bare")],
);
`,
  );
  const child = spawn(workerdBinary(), ['serve', join(dir, 'bare.capnp')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  try {
    while (
      !(await fetch(`${url}/hook/x`, { method: 'POST' }).then(
        (r) => r.ok,
        () => false,
      ))
    )
      await sleep(200);
    return await drive({ url, child }, ['/hook/bare'], false, 'bare hono Worker');
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

const rounds = [await bareRound(), await hooklineRound(false), await hooklineRound(true)];
console.log(`\nworkerd RSS (MB) at each tenth of ${calls} calls; ${connections} callers over ${flowCount} flows`);
for (const round of rounds) {
  const { samples } = round;
  const growthPerTenThousand = ((samples.at(-1)! - samples[5]!) / (calls / 2)) * 10_000;
  console.log(
    `  ${round.name.padEnd(26)} ${samples.map((s) => s.toFixed(0).padStart(4)).join('')}   second half: ${growthPerTenThousand.toFixed(2)} MB per 10k calls`,
  );
}
