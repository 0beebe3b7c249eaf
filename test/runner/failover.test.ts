import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { alive } from '../support/processes.js';
import { FIXTURES_DIR, runnerAccount, startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, registerFixtures, startFlow, stopFlow } from './support.js';

const available = await rabbitAvailable();

/** A runner node as its own process, so that it can be killed as a host dies. */
async function spawnRunner(cp: TestControlPlane, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'runner/main.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      CONTROL_PLANE_URL: cp.url,
      AMQP_URL: rabbitUrl,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

/** The pids of the step workers a runner's pid files name: those running a step, or (`warm`) those waiting for one. */
async function workerPids(dataDir: string, which: 'steps' | 'warm' = 'steps'): Promise<number[]> {
  const dir = join(dataDir, 'workers');
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith('warm-') === (which === 'warm'));
  // A file may go between the listing and the read (its worker stopped): it names no worker then.
  const pids = await Promise.all(files.map(async (f) => Number((await readFile(join(dir, f), 'utf8').catch(() => '')).trim())));
  return pids.filter((pid) => pid > 0);
}

describe.skipIf(!available)('runners that die', () => {
  const namespace = uniqueNamespace('failover');
  let cp: TestControlPlane;
  let admin: string;
  let dataDir: string;
  let spawned: ChildProcess | undefined;
  let other: TestRunner | undefined;

  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace, RUNNER_HEARTBEAT_SECONDS: '1' } });
    admin = await cp.login();
    await registerFixtures(cp, admin);
    dataDir = await mkdtemp(join(tmpdir(), 'hookline-runner-a-'));
  });
  afterAll(async () => {
    if (spawned && spawned.exitCode === null) spawned.kill('SIGKILL');
    await other?.stop();
    await cp?.close();
    await rm(dataDir, { recursive: true, force: true });
    if (available) await deleteNamespace(rabbitUrl, namespace, CONTROL_PLANE_SERVICES);
  });

  const runnerNamed = async (name: string) => {
    const list = (await cp.request('GET', '/runners', { token: admin })).body.data as {
      id: string;
      name: string;
      status: string;
      deployments: { flowId: string; state: string }[];
    }[];
    return list.find((r) => r.name === name);
  };

  it('a runner restarted on its host runs its flows again with one worker per step; a killed runner’s flows move to another, messages kept', async () => {
    const { token } = await runnerAccount(cp);
    const env = {
      RUNNER_TOKEN: token,
      RUNNER_NAME: 'host-a',
      RUNNER_DATA_DIR: dataDir,
      BUS_NAMESPACE: namespace,
      RUNNER_TRUSTED_MODULES: FIXTURES_DIR,
    };
    spawned = await spawnRunner(cp, env);
    await waitFor(
      () => runnerNamed('host-a'),
      (r) => r?.status === 'alive',
      30_000,
    );
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'start', componentId: 'webhook', function: 'receive' },
          { id: 'echo', componentId: 'fixtures', function: 'echo' },
        ],
        edges: [{ source: 'start', target: 'echo' }],
      },
    });
    const first = await workerPids(dataDir);
    expect(first).toHaveLength(2);
    const warm = await waitFor(
      () => workerPids(dataDir, 'warm'),
      (pids) => pids.length > 0,
      15_000,
    );

    // Killed and started again at once (before it counts as lost): the same runner, fresh workers, no orphans,
    // not even among the warm workers that waited for a step.
    spawned.kill('SIGKILL');
    await once(spawned, 'exit');
    await waitFor(
      async () => [...first, ...warm].filter(alive),
      (left) => left.length === 0,
      15_000,
    );
    spawned = await spawnRunner(cp, env);
    await waitFor(
      async () => (await workerPids(dataDir)).filter(alive),
      (pids) => pids.length === 2 && pids.every((p) => !first.includes(p)),
      30_000,
    );
    await waitFor(
      () => runnerNamed('host-a'),
      (r) => r?.deployments.some((d) => d.flowId === flow.id && d.state === 'ready') === true,
      30_000,
    );
    expect(outputsOf(await finished(cp, admin, await execute(cp, flow, { n: 1 })))).toContainEqual(['echo', { n: 1, attempt: 1 }]);

    // Killed for good: an execution published meanwhile waits in the queue for the runner the flow moves to.
    spawned.kill('SIGKILL');
    await once(spawned, 'exit');
    const waiting = await execute(cp, flow, { n: 2 });
    other = await startTestRunner(cp, { name: 'host-b', amqpUrl: rabbitUrl, namespace });
    await waitFor(
      () => runnerNamed('host-b'),
      (r) => r?.deployments.some((d) => d.flowId === flow.id && d.state === 'ready') === true,
      30_000,
    );
    expect((await runnerNamed('host-a'))?.status).toBe('lost');
    const execution = await finished(cp, admin, waiting);
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toContainEqual(['echo', { n: 2, attempt: 1 }]);
    expect((await cp.request('GET', `/flows/${flow.id}`, { token: admin })).body.data.status).toBe('active');

    await stopFlow(cp, admin, flow.id);
  }, 120_000);
});
