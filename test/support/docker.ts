import Docker from 'dockerode';
import { EXECUTION_MESSAGE_DEFAULTS, STEP_DEFAULTS } from '../../protocol/fleet.js';
import { DOCKER_LABELS } from '../../runner/drivers/docker.js';
import type { WorkerKey, WorkerLaunch, WorkerLogLine, WorkerObserver } from '../../runner/drivers/types.js';
import { NODE_BASE_IMAGE, WORKER_ENTRY_IN_IMAGE, WORKER_USER } from '../../runner/images.js';
import { READY_MARK, WORKER_ENV, type WorkerConfig } from '../../runner/worker/config.js';
import { buildImageFromFiles, buildNodeBaseImage } from '../../scripts/build-images.js';
import { serviceAvailable } from './services.js';

/** The engine DOCKER_HOST names (CI starts one of its own), else the default socket. */
export const testDocker = () => new Docker();

/** Whether a Docker engine answers: outside CI its tests skip with a warning when none does; in CI they fail. */
export const dockerAvailable = () =>
  serviceAvailable(`Docker (${process.env.DOCKER_HOST ?? 'the default socket'})`, () => testDocker().ping());

/**
 * A stand-in for the step worker, at WORKER_ENTRY_IN_IMAGE, so that the driver's tests need no
 * broker and no real worker. It reads its secrets from stdin as the real one does, then the step's
 * fields from HOOKLINE_WORKER:
 * - `readyAfterMs` (50): prints a READY_MARK line after this long;
 * - `crashOnRuns` ([]): on these runs (1 the first; the count, in the image's volume /state,
 *   survives restarts of the same container) it exits with `exitCode` (3) `crashAfterMs` (100)
 *   after being ready;
 * - `ignoreSigterm`: SIGTERM only prints a line (the driver must kill it after its grace period);
 * - `tickMs`: prints a line this often.
 * SIGUSR1 makes it exit with `exitCode` at once (a crash on demand: `container.kill({ signal: 'SIGUSR1' })`).
 * Every line of a run names the run; its first line also the component module and the secrets it was given.
 */
const FAKE_WORKER = `
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
let stdin = '';
for await (const chunk of process.stdin) stdin += chunk;
const config = JSON.parse(process.env.${WORKER_ENV.config} ?? '{}');
const fields = config.step?.fields ?? {};
const counter = '/state/fake-worker-runs';
const run = (existsSync(counter) ? Number(readFileSync(counter, 'utf8')) : 0) + 1;
writeFileSync(counter, String(run));
const log = (msg, extra = {}) => console.log(JSON.stringify({ msg, run, ...extra }));
const exitCode = Number(fields.exitCode ?? 3);
log('starting', { module: process.env.${WORKER_ENV.componentModule}, step: config.step?.id, secrets: JSON.parse(stdin) });
console.error('stderr of run ' + run);
const crash = (why) => {
  log('crashing: ' + why, { code: exitCode });
  console.error('boom: the last words of run ' + run);
  process.exit(exitCode);
};
process.on('SIGUSR1', () => crash('SIGUSR1'));
process.on('SIGTERM', () => {
  if (fields.ignoreSigterm) return log('ignoring SIGTERM');
  log('stopping on SIGTERM');
  process.exit(0);
});
setTimeout(() => {
  console.log('{"msg":"ready","run":' + run + ',' + ${JSON.stringify(READY_MARK)} + '}');
  if ((fields.crashOnRuns ?? []).includes(run)) setTimeout(() => crash('crashOnRuns'), fields.crashAfterMs ?? 100);
}, fields.readyAfterMs ?? 50);
setInterval(() => { if (fields.tickMs) log('tick'); }, fields.tickMs ?? 3600000);
`;

export const FAKE_WORKER_IMAGE = 'hookline-test/fake-worker:1';

/** Builds FAKE_WORKER_IMAGE FROM NODE_BASE_IMAGE (both skipped when already there and up to date). */
export async function buildFakeWorkerImage(docker = testDocker()): Promise<string> {
  await buildNodeBaseImage({ docker });
  await buildImageFromFiles(
    {
      image: FAKE_WORKER_IMAGE,
      from: NODE_BASE_IMAGE,
      // The run counter's volume, writable by the worker's user (the root filesystem is read-only).
      instructions: [
        `COPY worker.mjs ${WORKER_ENTRY_IN_IMAGE}`,
        `COPY --chown=${WORKER_USER.uid}:${WORKER_USER.gid} state /state`,
        'VOLUME /state',
      ],
      files: { 'worker.mjs': FAKE_WORKER, 'state/.keep': '' },
    },
    { docker },
  );
  return FAKE_WORKER_IMAGE;
}

/** A unique runner name, so that test runs never touch each other's containers. */
export const uniqueRunnerName = (prefix = 'test') => `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;

/** A worker launch of the fake worker (or `image`) with the step's `fields`. */
export function fakeLaunch(
  key: WorkerKey,
  options: {
    image?: string | null;
    module?: string | null;
    fields?: Record<string, unknown>;
    specHash?: string;
    memoryMb?: number;
    cpus?: number;
  } = {},
): WorkerLaunch {
  const config: WorkerConfig = {
    flowId: key.flowId,
    tenant: 'tenant-1',
    generation: key.generation,
    step: {
      id: key.stepId,
      name: null,
      function: 'run',
      component: {
        id: 'component-1',
        name: 'fake',
        image: options.image === undefined ? FAKE_WORKER_IMAGE : options.image,
        module: options.module ?? null,
      },
      fields: options.fields ?? {},
      credentialsId: null,
      targets: [],
      first: true,
      maxAttempts: 5,
      timeoutSeconds: STEP_DEFAULTS.timeoutSeconds,
      concurrency: 1,
      prefetch: 1 + STEP_DEFAULTS.extraPrefetch,
      memoryMb: options.memoryMb ?? STEP_DEFAULTS.memoryMb,
      cpus: options.cpus ?? STEP_DEFAULTS.cpus,
      outputSchema: null,
    },
    retry: { baseDelayMs: 1000, maxDelayMs: 60_000, levels: 3 },
    maxMessages: EXECUTION_MESSAGE_DEFAULTS.maxMessages,
    passthrough: false,
    controlPlaneUrl: 'http://127.0.0.1:9',
    outboundAllowedNetworks: [],
    broker: { kind: 'amqp', namespace: 'test' },
  };
  return {
    key,
    config,
    secrets: { stepToken: 'hls_test-step-token', amqpUrl: 'amqp://guest:guest@127.0.0.1:5672' },
    specHash: options.specHash ?? 'spec-1',
  };
}

/** A WorkerObserver that records what it is told. */
export interface RecordingObserver extends WorkerObserver {
  readies: number;
  crashes: { code: number | null; signal: string | null; output: string }[];
  lines: WorkerLogLine[];
}

export function recordingObserver(): RecordingObserver {
  const observer: RecordingObserver = {
    readies: 0,
    crashes: [],
    lines: [],
    ready: () => void observer.readies++,
    crashed: (info) => void observer.crashes.push(info),
    log: (line) => void observer.lines.push(line),
  };
  return observer;
}

/** The containers (any state) of a runner, by the label the driver gives them. */
export const runnerContainers = (docker: Docker, runnerName: string) =>
  docker.listContainers({ all: true, filters: { label: [`${DOCKER_LABELS.runner}=${runnerName}`] } });

/** Removes every container of these runners, whatever its state. */
export async function removeRunnerContainers(docker: Docker, runnerNames: string[]): Promise<void> {
  for (const name of runnerNames) {
    for (const container of await runnerContainers(docker, name))
      await docker
        .getContainer(container.Id)
        .remove({ force: true })
        .catch(() => {});
  }
}
