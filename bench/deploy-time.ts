/**
 * Question: how long does a flow take to start? From POST /flows/{id}/start to `active` for a
 * five-step flow, under each driver, against the floor of the same run: starting five bare node
 * processes (process driver) or five containers of the base image (docker driver) that print one
 * line, in parallel, which is what the driver cannot go below.
 *
 *   npx tsx bench/deploy-time.ts [--rounds 5] [--drivers process,docker] [--warm 4]
 *
 * The process driver runs twice: forking each worker when needed, and with --warm workers waiting
 * loaded (RUNNER_WARM_WORKERS, its default by default). Each round begins once the pool is full again.
 *
 * Needs RabbitMQ (TEST_AMQP_URL) and, for docker, an engine (DOCKER_HOST) with the images
 * (npm run images; built here when missing).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { NODE_BASE_IMAGE } from '../runner/images.js';
import { RUNNER_SETTINGS } from '../runner/main.js';
import { buildImages } from '../scripts/build-images.js';
import { startTestControlPlane } from '../test/support/control-plane.js';
import { waitFor } from '../test/support/events.js';
import { startTestRunner } from '../test/support/runner.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    drivers: { type: 'string', default: 'process,docker' },
    warm: { type: 'string', default: String(RUNNER_SETTINGS.RUNNER_WARM_WORKERS.schema.parse(undefined)) },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log('Usage: npx tsx bench/deploy-time.ts [--rounds N] [--drivers process,docker] [--warm N]');
  process.exit(0);
}
const rounds = Number(args.rounds);
const drivers = args.drivers!.split(',') as ('process' | 'docker')[];
const warm = Number(args.warm);
const variants = drivers.flatMap((driver) =>
  driver === 'process' && warm > 0
    ? [
        { driver, warm: 0 },
        { driver, warm },
      ]
    : [{ driver, warm: 0 }],
);
const url = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const namespace = `bench_${Date.now().toString(36)}`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const STEPS = 5;

/** Five bare node processes started at once, until each printed its line. */
async function bareProcesses(): Promise<number> {
  const began = performance.now();
  await Promise.all(
    Array.from({ length: STEPS }, async () => {
      const child = spawn(process.execPath, ['-e', 'console.log("ready")'], { stdio: ['ignore', 'pipe', 'ignore'] });
      await once(child.stdout, 'data');
      await once(child, 'exit');
    }),
  );
  return performance.now() - began;
}

/** Five containers of the base image created and started at once, until each printed its line. */
async function bareContainers(docker: Docker): Promise<number> {
  const began = performance.now();
  await Promise.all(
    Array.from({ length: STEPS }, async () => {
      const container = await docker.createContainer({
        Image: NODE_BASE_IMAGE,
        Cmd: ['node', '-e', 'console.log("ready")'],
        HostConfig: { NetworkMode: 'host' },
      });
      await container.start();
      await container.wait();
      await container.remove({ force: true });
    }),
  );
  return performance.now() - began;
}

async function main(): Promise<void> {
  if (drivers.includes('docker')) await buildImages(['base', 'worker'], { log: (line) => console.log(line) });
  const cp = await startTestControlPlane({ env: { AMQP_URL: url, BUS_NAMESPACE: namespace, RUNNER_HEARTBEAT_SECONDS: '2' } });
  const token = await cp.login();
  const rows: string[] = [];
  try {
    for (const { driver, warm } of variants) {
      const label = driver === 'process' ? `process, ${warm} warm` : driver;
      const runner = await startTestRunner(cp, { driver, amqpUrl: url, namespace, warmWorkers: warm });
      // The pool's waiting workers each have a pid file: a round begins once all are there again.
      const poolFull = () =>
        waitFor(
          async () => (await readdir(join(runner.dataDir, 'workers')).catch(() => [])).filter((f) => f.startsWith('warm-')).length,
          (n) => n >= warm,
          120_000,
        );
      try {
        const nodes = [
          { id: 's1', componentId: 'webhook', function: 'receive' },
          ...Array.from({ length: STEPS - 2 }, (_, i) => ({
            id: `s${i + 2}`,
            componentId: 'jsonata',
            function: 'map',
            fields: { expression: '$' },
          })),
          { id: `s${STEPS}`, componentId: 'debug', function: 'record' },
        ];
        const edges = nodes.slice(1).map((node, i) => ({ source: nodes[i]!.id, target: node.id }));
        const created = await cp.request('POST', '/flows', { token, body: { name: `deploy-${driver}`, graph: { nodes, edges } } });
        const flowId = created.body.data.id as string;
        const status = async () => (await cp.request('GET', `/flows/${flowId}`, { token })).body.data.status as string;
        const times: number[] = [];
        const floors: number[] = [];
        for (let round = 0; round <= rounds; round++) {
          await poolFull();
          const began = performance.now();
          await cp.request('POST', `/flows/${flowId}/start`, { token });
          await waitFor(status, (s) => s === 'active', 120_000);
          const took = performance.now() - began;
          await cp.request('POST', `/flows/${flowId}/stop`, { token });
          await waitFor(status, (s) => s === 'inactive', 120_000);
          await poolFull();
          const floor = driver === 'docker' ? await bareContainers(new Docker()) : await bareProcesses();
          // The first round warms caches (the worker bundle, the images' layers): not counted.
          if (round === 0) continue;
          times.push(took);
          floors.push(floor);
        }
        console.log(
          `${label}: start → active ${times.map((t) => Math.round(t)).join(', ')} ms; floor ${floors.map((t) => Math.round(t)).join(', ')} ms`,
        );
        rows.push(
          `| ${label} | ${Math.round(median(times))} ms | ${Math.round(Math.min(...times))}–${Math.round(Math.max(...times))} ms | ${Math.round(median(floors))} ms | ${(median(times) / median(floors)).toFixed(1)}× |`,
        );
      } finally {
        await runner.stop();
      }
    }
  } finally {
    await cp.close();
  }
  console.log(
    `\nfive-step flow, ${rounds} rounds (after one to warm up)\n\n| driver | start → active, median | range | floor: ${STEPS} bare ${'workers'} at once, median | Hookline / floor |\n|---|---|---|---|---|`,
  );
  for (const row of rows) console.log(row);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
