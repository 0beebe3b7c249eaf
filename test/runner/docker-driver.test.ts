import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerName, DockerDriver, type DockerDriverOptions } from '../../runner/drivers/docker.js';
import type { Adoption, WorkerKey } from '../../runner/drivers/types.js';
import { COMPONENT_MODULE_IN_IMAGE, WORKER_ENTRY_IN_IMAGE, WORKER_USER } from '../../runner/images.js';
import { WORKER_ENV } from '../../runner/worker/config.js';
import {
  buildFakeWorkerImage,
  dockerAvailable,
  fakeLaunch,
  recordingObserver,
  removeRunnerContainers,
  runnerContainers,
  testDocker,
  uniqueRunnerName,
} from '../support/docker.js';
import { waitFor } from '../support/events.js';

const available = await dockerAvailable();

describe.skipIf(!available)('DockerDriver, on a real Docker engine', () => {
  const docker = testDocker();
  const logger = pino({ level: 'silent' });
  const runnerNames: string[] = [];
  const drivers: DockerDriver[] = [];

  /** A driver of a runner of its own (or of `runnerName`, to play a runner's next run). */
  const driverFor = (runnerName = uniqueRunnerName('dd'), options: Partial<DockerDriverOptions> = {}) => {
    if (!runnerNames.includes(runnerName)) runnerNames.push(runnerName);
    const driver = new DockerDriver({ docker, runnerName, logger, stopGraceSeconds: 2, ...options });
    drivers.push(driver);
    return { runnerName, driver };
  };
  const key = (stepId = 'step-1', generation = 1): WorkerKey => ({ flowId: randomUUID(), stepId, generation });
  const inspectWorker = (runnerName: string, k: WorkerKey) => docker.getContainer(containerName(runnerName, k)).inspect();
  const exists = (runnerName: string, k: WorkerKey) =>
    inspectWorker(runnerName, k).then(
      () => true,
      () => false,
    );

  beforeAll(() => buildFakeWorkerImage(docker), 120_000);
  afterAll(async () => {
    await Promise.all(drivers.map((driver) => driver.close()));
    await removeRunnerContainers(docker, runnerNames);
  });

  it('starts a worker container: labels, host networking, limits, sandbox, command, env without the secrets (they go to stdin); ready, and its output reaches observer.log', async () => {
    const { runnerName, driver } = driverFor();
    const k = key('greet', 3);
    const launch = fakeLaunch(k, { memoryMb: 96, cpus: 0.25, specHash: 'hash-abc' });
    const observer = recordingObserver();
    const worker = await driver.start(launch, observer);
    expect(worker.key).toEqual(k);
    await waitFor(
      async () => observer.readies,
      (n) => n === 1,
    );

    const info = await inspectWorker(runnerName, k);
    expect(info.Config.Labels).toMatchObject({
      'hookline.runner': runnerName,
      'hookline.flow': k.flowId,
      'hookline.step': 'greet',
      'hookline.generation': '3',
      'hookline.spec': 'hash-abc',
    });
    expect(info.Config.Image).toBe(launch.config.step.component.image);
    expect([info.Path, ...info.Args]).toEqual(['node', WORKER_ENTRY_IN_IMAGE]);
    expect(info.HostConfig).toMatchObject({
      NetworkMode: 'host',
      Memory: 96 * 1024 * 1024,
      NanoCpus: 250_000_000,
      PidsLimit: 256,
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': expect.stringContaining('size=') },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    });
    expect(info.Config.User).toBe(`${WORKER_USER.uid}:${WORKER_USER.gid}`);
    const env = Object.fromEntries(
      info.Config.Env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    );
    expect(JSON.parse(env[WORKER_ENV.config]!)).toEqual(launch.config);
    expect(env[WORKER_ENV.componentModule]).toBe(COMPONENT_MODULE_IN_IMAGE);
    // The secrets are nowhere in what the engine shows: not in the environment, the configuration or a label.
    expect(JSON.stringify(info)).not.toContain('hls_test-step-token');
    expect(JSON.stringify(info)).not.toContain('guest:guest');

    const starting = observer.lines.find((line) => line.line.includes('"msg":"starting"'));
    expect(starting).toMatchObject({ stream: 'stdout' });
    // ...and the worker read them from its stdin.
    expect(JSON.parse(starting!.line)).toMatchObject({ run: 1, module: COMPONENT_MODULE_IN_IMAGE, step: 'greet', secrets: launch.secrets });
    expect(starting!.at).toBeInstanceOf(Date);
    expect(Math.abs(starting!.at.getTime() - Date.now())).toBeLessThan(60_000);
    expect(observer.lines).toContainEqual(expect.objectContaining({ stream: 'stderr', line: 'stderr of run 1' }));

    await worker.stop();
    expect(await exists(runnerName, k)).toBe(false);
    expect(observer.crashes).toEqual([]);
  });

  it('passes the component’s module when it has one', async () => {
    const { driver } = driverFor();
    const observer = recordingObserver();
    const worker = await driver.start(fakeLaunch(key(), { module: 'hookline:http' }), observer);
    await waitFor(
      async () => observer.readies,
      (n) => n === 1,
    );
    expect(JSON.parse(observer.lines.find((line) => line.line.includes('"msg":"starting"'))!.line).module).toBe('hookline:http');
    await worker.stop();
  });

  it('reports a crash with its exit code and output, starts the same container again after the backoff, ready again; again on the next crash', async () => {
    const { runnerName, driver } = driverFor();
    const k = key();
    const observer = recordingObserver();
    await driver.start(fakeLaunch(k, { fields: { crashOnRuns: [1], exitCode: 7 } }), observer);
    const id = (await inspectWorker(runnerName, k)).Id;

    await waitFor(
      async () => observer.crashes.length,
      (n) => n === 1,
      10_000,
    );
    const crashedAt = Date.now();
    expect(observer.crashes[0]).toMatchObject({ code: 7, signal: null });
    expect(observer.crashes[0]!.output).toContain('boom: the last words of run 1');
    expect(observer.crashes[0]!.output).toContain('"msg":"crashing: crashOnRuns"');
    expect(observer.crashes[0]!.output).not.toContain('run 2');

    await waitFor(
      async () => observer.readies,
      (n) => n === 2,
      10_000,
    );
    expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(700); // the first backoff is 1 s
    expect((await inspectWorker(runnerName, k)).Id).toBe(id); // the same container, started again
    const second = observer.lines.find((line) => line.line.includes('"msg":"starting","run":2'));
    expect(JSON.parse(second!.line).secrets).toEqual(fakeLaunch(k).secrets); // its secrets on stdin again
    // Run 1's lines are not read again for run 2.
    expect(observer.lines.filter((line) => line.line === 'stderr of run 1')).toHaveLength(1);

    // A crash on demand: the next backoff is 2 s.
    await docker.getContainer(id).kill({ signal: 'SIGUSR1' });
    await waitFor(
      async () => observer.crashes.length,
      (n) => n === 2,
      10_000,
    );
    const secondAt = Date.now();
    expect(observer.crashes[1]).toMatchObject({ code: 7 });
    expect(observer.crashes[1]!.output).toContain('boom: the last words of run 2');
    expect(observer.crashes[1]!.output).not.toContain('run 1');
    await waitFor(
      async () => observer.readies,
      (n) => n === 3,
      10_000,
    );
    expect(Date.now() - secondAt).toBeGreaterThanOrEqual(1700);
  }, 40_000);

  it('stops gracefully, kills after the grace period, removes the container and never starts it again', async () => {
    const { runnerName, driver } = driverFor(undefined, { stopGraceSeconds: 1 });
    const k = key();
    const observer = recordingObserver();
    const worker = await driver.start(fakeLaunch(k, { fields: { ignoreSigterm: true } }), observer);
    await waitFor(
      async () => observer.readies,
      (n) => n === 1,
    );

    const began = Date.now();
    await worker.stop();
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);
    expect(observer.lines.some((line) => line.line.includes('ignoring SIGTERM'))).toBe(true);
    expect(await exists(runnerName, k)).toBe(false);
    await worker.stop(); // twice is fine
    // stop() resolves once the supervise loop has ended, so nothing can start the container again after this.
    expect(await runnerContainers(docker, runnerName)).toEqual([]);
    expect(observer.crashes).toEqual([]);
    expect(observer.readies).toBe(1);
  });

  it('creates a container removed behind its back again', async () => {
    const { runnerName, driver } = driverFor();
    const k = key();
    const observer = recordingObserver();
    const worker = await driver.start(fakeLaunch(k), observer);
    await waitFor(
      async () => observer.readies,
      (n) => n === 1,
    );
    const first = (await inspectWorker(runnerName, k)).Id;
    await docker.getContainer(first).remove({ force: true });

    await waitFor(
      async () => observer.crashes.length,
      (n) => n === 1,
      10_000,
    );
    await waitFor(
      async () => observer.readies,
      (n) => n === 2,
      10_000,
    );
    const second = await inspectWorker(runnerName, k);
    expect(second.Id).not.toBe(first);
    expect(second.Config.Labels['hookline.flow']).toBe(k.flowId);
    await worker.stop();
    expect(await runnerContainers(docker, runnerName)).toEqual([]);
  }, 30_000);

  it('check(): why a step cannot run here, or null; start() rejects with that reason', async () => {
    const { runnerName, driver } = driverFor();
    expect(await driver.check(fakeLaunch(key()).config)).toBeNull();
    const missing = fakeLaunch(key(), { image: 'hookline-test/not-built:404' });
    expect(await driver.check(missing.config)).toBe(
      "image hookline-test/not-built:404 is not on this runner's Docker engine: build it with npm run images or docker load it",
    );
    expect(await driver.check(fakeLaunch(key(), { image: null }).config)).toMatch(/component fake has no image/);
    const ipc = fakeLaunch(key());
    expect(await driver.check({ ...ipc.config, broker: { kind: 'ipc' } })).toMatch(/needs RabbitMQ/);
    await expect(driver.start(missing, recordingObserver())).rejects.toThrow(/is not on this runner's Docker engine/);
    expect(await runnerContainers(docker, runnerName)).toEqual([]);
  });

  it('recover(): adopts the containers it should run (ready, followed, supervised), removes the rest, never two of one key; close() leaves them running', async () => {
    const runnerName = uniqueRunnerName('dd');
    const first = driverFor(runnerName).driver;
    const other = driverFor(); // another runner on the same engine: never touched
    const kept = key('kept');
    const stale = key('stale');
    const gone = key('gone');
    const down = key('down');
    const early = { kept: recordingObserver(), stale: recordingObserver(), gone: recordingObserver(), down: recordingObserver() };
    await first.start(fakeLaunch(kept, { specHash: 's-kept' }), early.kept);
    await first.start(fakeLaunch(stale, { specHash: 's-old' }), early.stale);
    await first.start(fakeLaunch(gone, { specHash: 's-gone' }), early.gone);
    await first.start(fakeLaunch(down, { specHash: 's-down' }), early.down);
    const otherKey = key('other');
    const otherObserver = recordingObserver();
    await other.driver.start(fakeLaunch(otherKey), otherObserver);
    await waitFor(
      async () => Object.values(early).every((o) => o.readies === 1) && otherObserver.readies === 1,
      (done) => done,
    );

    await first.close();
    const keptInfo = await inspectWorker(runnerName, kept);
    expect(keptInfo.State.Running).toBe(true);
    // While no runner watches: `down` crashes, and a duplicate of `kept` appears (created later).
    await docker.getContainer(containerName(runnerName, down)).kill({ signal: 'SIGUSR1' });
    await waitFor(
      async () => (await inspectWorker(runnerName, down)).State.Running,
      (running) => !running,
    );
    const duplicate = await docker.createContainer({
      ...keptInfo.Config,
      name: `${containerName(runnerName, kept)}-copy`,
      HostConfig: keptInfo.HostConfig,
    });
    await duplicate.start();
    expect(early.down.crashes).toEqual([]); // nobody was watching

    const next = driverFor(runnerName).driver;
    const offered: string[] = [];
    const observers: Record<string, ReturnType<typeof recordingObserver>> = {};
    const want: Record<string, string> = { [kept.flowId]: 's-kept', [stale.flowId]: 's-new', [down.flowId]: 's-down' };
    const minted = { stepToken: 'hls_minted-for-the-adoption', amqpUrl: 'amqp://guest:guest@127.0.0.1:5672' };
    const keep = (k: WorkerKey, specHash: string): Adoption | null => {
      offered.push(k.stepId);
      if (want[k.flowId] !== specHash) return null;
      return { observer: (observers[k.stepId] = recordingObserver()), secrets: async () => minted };
    };
    const adopted = await next.recover(keep);
    expect(adopted.map((worker) => worker.key).sort((a, b) => a.stepId.localeCompare(b.stepId))).toEqual([down, kept]);
    expect(offered.sort()).toEqual(['down', 'gone', 'kept', 'stale']); // the duplicate is not offered: it is removed

    const left = await runnerContainers(docker, runnerName);
    expect(left.map((c) => c.Names[0]!.slice(1)).sort()).toEqual([containerName(runnerName, down), containerName(runnerName, kept)].sort());
    expect(left.find((c) => c.Labels['hookline.step'] === 'kept')!.Id).toBe(keptInfo.Id); // the older one is kept
    expect(await runnerContainers(docker, other.runnerName)).toHaveLength(1);

    // The running one is ready (it said so before the adoption), its old lines are not logged twice.
    await waitFor(
      async () => observers.kept!.readies,
      (n) => n === 1,
    );
    expect(observers.kept!.lines).toEqual([]);
    // The one that went down while nobody watched: a crash with its output, then started again.
    await waitFor(
      async () => observers.down!.crashes.length,
      (n) => n === 1,
      10_000,
    );
    expect(observers.down!.crashes[0]).toMatchObject({ code: 3 });
    expect(observers.down!.crashes[0]!.output).toContain('boom: the last words of run 1');
    await waitFor(
      async () => observers.down!.readies,
      (n) => n === 1,
      10_000,
    );

    // Adopted workers are supervised: a crash is reported to the new observer and restarted.
    await docker.getContainer(keptInfo.Id).kill({ signal: 'SIGUSR1' });
    await waitFor(
      async () => observers.kept!.crashes.length,
      (n) => n === 1,
      10_000,
    );
    expect(observers.kept!.crashes[0]!.output).toContain('boom: the last words of run 1');
    await waitFor(
      async () => observers.kept!.readies,
      (n) => n === 2,
      10_000,
    );
    // Started again with the secrets the adoption gives (the earlier run's went to its stdin).
    const restarted = observers.kept!.lines.find((line) => line.line.includes('"msg":"starting","run":2'));
    expect(JSON.parse(restarted!.line).secrets).toEqual(minted);
    expect(early.kept.crashes).toEqual([]); // the closed driver no longer watches

    // Recovering again finds nothing new and removes nothing it runs.
    expect(await next.recover(keep)).toEqual([]);
    expect(await runnerContainers(docker, runnerName)).toHaveLength(2);

    await Promise.all(adopted.map((worker) => worker.stop()));
    expect(await runnerContainers(docker, runnerName)).toEqual([]);
  }, 60_000);
});
