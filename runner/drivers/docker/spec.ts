import type Docker from 'dockerode';
import { STEP_DEFAULTS } from '../../../protocol/fleet.js';
import { COMPONENT_MODULE_IN_IMAGE, WORKER_ENTRY_IN_IMAGE, WORKER_USER } from '../../images.js';
import { WORKER_ENV } from '../../worker/config.js';
import { workerName, type WorkerKey, type WorkerLaunch } from '../types.js';

export const DOCKER_LABELS = {
  runner: 'hookline.runner',
  flow: 'hookline.flow',
  step: 'hookline.step',
  generation: 'hookline.generation',
  spec: 'hookline.spec',
} as const;

export type ContainerSpec = Docker.ContainerCreateOptions & { name: string };

/** What the engine offers: Docker's init as PID 1, and whether it is Podman (which cannot raise the machine's limits). */
export interface Engine {
  init: boolean;
  podman: boolean;
}

export interface SpecOptions {
  runnerName: string;
  engine: Engine;
  /** Limits for a step whose spec has none (its memoryMb or cpus is 0: STEP_DEFAULTS then), and the most processes and threads (256). */
  defaults?: { memoryMb?: number; cpus?: number; pids?: number };
  /** json-file log rotation (10m, 3). */
  logMaxSize?: string;
  logMaxFiles?: number;
  stopGraceSeconds: number;
}

/** Node and its threads take about a dozen; a fork bomb stops here. */
const PIDS_LIMIT = 256;
/** The only writable place in a worker's container. */
const TMPFS = { '/tmp': 'rw,noexec,nosuid,size=64m' };

/** A Docker container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`) for this runner's worker. */
export function containerName(runnerName: string, key: WorkerKey): string {
  return `hookline-${runnerName}-${workerName(key)}`.replace(/[^a-zA-Z0-9_.-]/g, '_');
}

/** The worker a container's labels name, or null when they name none. */
export function keyOf(labels: Record<string, string> | undefined): WorkerKey | null {
  const generation = Number(labels?.[DOCKER_LABELS.generation]);
  const flowId = labels?.[DOCKER_LABELS.flow];
  const stepId = labels?.[DOCKER_LABELS.step];
  return flowId && stepId && Number.isInteger(generation) ? { flowId, stepId, generation } : null;
}

/** The container of a worker: sandboxed, limited, labelled, its secrets left for stdin (see ../docker.ts). */
export function containerSpec(launch: WorkerLaunch, options: SpecOptions): ContainerSpec {
  const { key, config, specHash } = launch;
  const { engine, defaults } = options;
  const step = config.step;
  const memoryMb = step.memoryMb > 0 ? step.memoryMb : (defaults?.memoryMb ?? STEP_DEFAULTS.memoryMb);
  const cpus = step.cpus > 0 ? step.cpus : (defaults?.cpus ?? STEP_DEFAULTS.cpus);
  return {
    name: containerName(options.runnerName, key),
    Image: step.component.image!,
    // The worker whatever the image's own entrypoint and user.
    Entrypoint: ['node', WORKER_ENTRY_IN_IMAGE],
    Cmd: [],
    User: `${WORKER_USER.uid}:${WORKER_USER.gid}`,
    Env: [
      `${WORKER_ENV.config}=${JSON.stringify(config)}`,
      `${WORKER_ENV.componentModule}=${step.component.module ?? COMPONENT_MODULE_IN_IMAGE}`,
    ],
    // stdin carries its secrets: open, closed after the one write.
    AttachStdin: true,
    OpenStdin: true,
    StdinOnce: true,
    Labels: {
      [DOCKER_LABELS.runner]: options.runnerName,
      [DOCKER_LABELS.flow]: key.flowId,
      [DOCKER_LABELS.step]: key.stepId,
      [DOCKER_LABELS.generation]: String(key.generation),
      [DOCKER_LABELS.spec]: specHash,
    },
    StopSignal: 'SIGTERM',
    StopTimeout: options.stopGraceSeconds,
    HostConfig: {
      NetworkMode: 'host',
      Memory: memoryMb * 1024 * 1024,
      MemorySwap: memoryMb * 1024 * 1024,
      NanoCpus: Math.round(cpus * 1e9),
      PidsLimit: defaults?.pids ?? PIDS_LIMIT,
      ReadonlyRootfs: true,
      Tmpfs: TMPFS,
      LogConfig: {
        Type: 'json-file',
        Config: { 'max-size': options.logMaxSize ?? '10m', 'max-file': String(options.logMaxFiles ?? 3) },
      },
      RestartPolicy: { Name: 'no' },
      ...(engine.init ? { Init: true } : {}),
      // A step worker needs no privilege: it only talks to the network.
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      // Podman cannot raise the machine's limits: ask for ones it can give.
      ...(engine.podman
        ? {
            Ulimits: [
              { Name: 'nofile', Soft: 4096, Hard: 4096 },
              { Name: 'nproc', Soft: 4096, Hard: 4096 },
            ],
          }
        : {}),
    },
  };
}

/** What an adopted container was created with, so that it can be created again if it is removed behind the driver's back. */
export function specFromInspect(info: Docker.ContainerInspectInfo): ContainerSpec {
  return {
    name: info.Name.replace(/^\//, ''),
    Image: info.Config.Image,
    Entrypoint: info.Config.Entrypoint ?? undefined,
    Cmd: info.Config.Cmd ?? [],
    User: info.Config.User,
    Env: info.Config.Env,
    AttachStdin: info.Config.AttachStdin,
    OpenStdin: info.Config.OpenStdin,
    StdinOnce: info.Config.StdinOnce,
    Labels: info.Config.Labels,
    StopSignal: (info.Config as { StopSignal?: string }).StopSignal,
    StopTimeout: (info.Config as { StopTimeout?: number }).StopTimeout,
    HostConfig: info.HostConfig as Docker.HostConfig,
  };
}
