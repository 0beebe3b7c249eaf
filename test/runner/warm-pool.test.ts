import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { stepWorkerBundle } from '../../runner/bundle.js';
import { WarmPool } from '../../runner/drivers/warm-pool.js';
import { WARM_MARK, WORKER_ENV } from '../../runner/worker/config.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { alive } from '../support/processes.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, startFlow, stopFlow } from './support.js';

const WARM = 2;

describe('warm step workers (RUNNER_WARM_WORKERS, process driver)', () => {
  let cp: TestControlPlane;
  let runner: TestRunner | undefined;
  let admin: string;

  /** The pids in the runner's pid files: `warm-<pid>.pid` for those waiting, `<flow>.<step>.<generation>.pid` for those running a step. */
  const pidFiles = async () => {
    const files = await readdir(join(runner!.dataDir, 'workers')).catch(() => [] as string[]);
    const pidOf = (file: string) => Number(file.replace(/^warm-/, '').replace(/\.pid$/, ''));
    return { warm: files.filter((f) => f.startsWith('warm-')).map(pidOf), files };
  };
  const waiting = (count: number) =>
    waitFor(
      async () => (await pidFiles()).warm,
      (pids) => pids.length === count && pids.every(alive),
    );

  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { RUNNER_HEARTBEAT_SECONDS: '1' } });
    admin = await cp.login();
    runner = await startTestRunner(cp, { warmWorkers: WARM });
  });
  afterAll(async () => {
    await runner?.stop();
    await cp?.close();
  });

  it("runs a flow's steps on workers forked before it started, one worker per step, never handed back, and fills the pool again", async () => {
    const before = await waiting(WARM);
    // Three steps, two warm workers: one step's worker is forked when needed.
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'total', componentId: 'jsonata', function: 'map', fields: { expression: '{ "total": $sum(items.price) }' } },
          { id: 'log', componentId: 'debug', function: 'record' },
        ],
        edges: [
          { source: 'receive', target: 'total' },
          { source: 'total', target: 'log' },
        ],
      },
    });
    const execution = await finished(cp, admin, await execute(cp, flow, { items: [{ price: 2 }, { price: 3 }] }), 20_000);
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toEqual(expect.arrayContaining([['log', { total: 5 }]]));

    const { files } = await pidFiles();
    const stepPids = await Promise.all(
      files
        .filter((f) => f.startsWith(`${flow.id}.`))
        .map(async (f) => Number((await readFile(join(runner!.dataDir, 'workers', f), 'utf8')).trim())),
    );
    expect(stepPids).toHaveLength(3);
    expect(stepPids.filter((pid) => before.includes(pid)).sort()).toEqual([...before].sort());

    // Refilled with new workers once the steps were ready: none of those that run a step.
    const refilled = await waiting(WARM);
    expect(refilled.filter((pid) => stepPids.includes(pid))).toEqual([]);

    await stopFlow(cp, admin, flow.id);
    await waitFor(
      async () => stepPids.filter(alive),
      (left) => left.length === 0,
    );
    expect((await waiting(WARM)).filter((pid) => stepPids.includes(pid))).toEqual([]);
  });

  it('replaces a warm worker that dies while it waits, and leaves none behind when the runner stops', async () => {
    const [victim, other] = await waiting(WARM);
    process.kill(victim!, 'SIGKILL');
    const replaced = await waitFor(
      async () => (await pidFiles()).warm,
      (pids) => pids.length === WARM && !pids.includes(victim!) && pids.every(alive),
    );
    expect(replaced).toContain(other);

    await runner!.stop();
    runner = undefined;
    expect(replaced.filter(alive)).toEqual([]);
  });
});

describe('WarmPool.reserve', () => {
  it('forks at once what a start needs beyond the workers waiting, hands them out loaded or not, and kills those left at close', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hookline-pool-'));
    const entry = await stepWorkerBundle();
    const children: ChildProcess[] = [];
    const pool = new WarmPool(
      0,
      () => {
        const child = fork(entry, [], {
          execArgv: [],
          env: { PATH: process.env.PATH!, [WORKER_ENV.warm]: '1' },
          stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
        });
        children.push(child);
        return child;
      },
      dir,
      pino({ level: 'silent' }),
    );
    try {
      pool.reserve(2);
      expect(children).toHaveLength(2);
      pool.reserve(2);
      expect(children).toHaveLength(2);
      const [first, second] = [pool.take()!, pool.take()!];
      expect(pool.take()).toBeUndefined();
      expect([first.pid, second.pid].every((pid) => alive(pid!))).toBe(true);
      for (const child of [first, second]) child.kill('SIGKILL');

      pool.reserve(1);
      expect(children).toHaveLength(3);
      await pool.close();
      expect(alive(children[2]!.pid!)).toBe(false);
      pool.reserve(1);
      expect(children).toHaveLength(3);
    } finally {
      await pool.close();
      await rm(dir, { recursive: true, force: true });
    }
    expect(pool.take()).toBeUndefined();
  });
});

describe('a warm step worker whose runner is gone', () => {
  const children: ChildProcess[] = [];
  // One that did not exit (the test failed) is not left behind.
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  /** A warm worker as the pool forks it, once it says it waits; then its output's reader goes away, as with a runner that died. */
  async function orphanedWarmWorker() {
    const child = spawn(process.execPath, [await stepWorkerBundle()], {
      env: { PATH: process.env.PATH!, [WORKER_ENV.warm]: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.push(child);
    let seen = '';
    for await (const chunk of child.stdout!) {
      seen += String(chunk);
      if (seen.includes(WARM_MARK)) break;
    }
    child.stdout!.destroy();
    child.stderr!.destroy();
    return child;
  }

  it('exits when its stdin closes with nothing on it, though nobody reads what it writes', async () => {
    const child = await orphanedWarmWorker();
    const exited = once(child, 'exit');
    child.stdin!.end();
    expect((await exited)[0]).toBe(0);
  });

  it('exits, failed, when its stdin holds something no runner writes, though nobody reads what it writes', async () => {
    const child = await orphanedWarmWorker();
    const exited = once(child, 'exit');
    child.stdin!.end('{"not":"a runner line"}\n');
    expect((await exited)[0]).toBe(1);
  });
});
