/**
 * The docker driver: one container per step worker, on this runner's Docker engine (DOCKER_HOST).
 *
 * - A container is named `hookline-<runner>-<flow>.<step>.<generation>` and labelled
 *   `hookline.runner|flow|step|generation|spec`; it runs `node WORKER_ENTRY_IN_IMAGE` in its
 *   component's image, with host networking (RabbitMQ and the control plane on 127.0.0.1), the
 *   step's memory and CPU limits and a pids limit, json-file logs capped in size, and Docker's
 *   init as PID 1. It is sandboxed (a tenant's code runs in it): WORKER_USER, not root; a read-only
 *   root filesystem with a small tmpfs at /tmp; every capability dropped; no-new-privileges.
 * - Its secrets (step token, broker URL) go to its stdin at every start (attached before the start,
 *   written once, closed), so `docker inspect` never shows them; an adopted container that must
 *   be started again gets them from the reconciler.
 * - The driver supervises: Docker's restart policy is off, and a container that exits without
 *   being stopped is reported (`crashed`, with its exit code and the end of its output) and
 *   started again, the same container, after a backoff doubling from 1 s to 30 s (from 1 s again
 *   after a run of a minute). A container removed behind its back is created again.
 * - Its output is read from Docker's log (demultiplexed, timestamped), so nothing is lost while
 *   the driver follows it again after a restart or an adoption; `ready` comes from READY_MARK.
 * - `close()` lets go without stopping anything; the next run of this runner `recover`s its
 *   containers by label: it adopts those it should run (same key and spec hash) and removes the rest.
 */
import { constants as osConstants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import type { Logger } from 'pino';
import { STEP_DEFAULTS } from '../../protocol/fleet.js';
import { COMPONENT_MODULE_IN_IMAGE, WORKER_ENTRY_IN_IMAGE, WORKER_USER } from '../images.js';
import { encodeSecrets, READY_MARK, WORKER_ENV, type WorkerConfig, type WorkerSecrets } from '../worker/config.js';
import {
  workerName,
  type Adoption,
  type RunningWorker,
  type StepDriver,
  type WorkerKey,
  type WorkerLaunch,
  type WorkerObserver,
} from './types.js';

export const DOCKER_LABELS = {
  runner: 'hookline.runner',
  flow: 'hookline.flow',
  step: 'hookline.step',
  generation: 'hookline.generation',
  spec: 'hookline.spec',
} as const;

export interface DockerDriverOptions {
  /** The engine (default: DOCKER_HOST, else the default socket). */
  docker?: Docker;
  /** This runner's name (RUNNER_NAME): it labels and names its containers, so two runners on one engine never touch each other's. */
  runnerName: string;
  logger: Logger;
  /** Limits for a step whose spec has none (its memoryMb or cpus is 0: STEP_DEFAULTS then), and the most processes and threads a container may have (256). */
  defaults?: { memoryMb?: number; cpus?: number; pids?: number };
  /** Docker keeps each container's log, up to this size per file and this many files (json-file: 10m, 3). */
  logMaxSize?: string;
  logMaxFiles?: number;
  /** Seconds between SIGTERM and the kill when a worker is stopped (10). */
  stopGraceSeconds?: number;
  /** Restart backoff: the first delay, doubling up to the longest (1 s, 30 s); a run longer than `healthyAfterMs` (60 s) starts it again from the first. */
  backoff?: { initialMs?: number; maxMs?: number; healthyAfterMs?: number };
}

/** How many of a run's last output lines make the `output` of a crash, and its longest length. */
const TAIL_LINES = 50;
const TAIL_CHARS = 4000;
/** Node and its threads take about a dozen; a fork bomb stops here. */
const PIDS_LIMIT = 256;
/** The only writable place in a worker's container. */
const TMPFS = { '/tmp': 'rw,noexec,nosuid,size=64m' };

const statusOf = (error: unknown) => (error as { statusCode?: number } | null)?.statusCode;
const messageOf = (error: unknown) => {
  const json = (error as { json?: { message?: string } } | null)?.json;
  return (json?.message ?? (error as Error)?.message ?? String(error)).trim();
};

/** A Docker container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`) for this runner's worker. */
export function containerName(runnerName: string, key: WorkerKey): string {
  return `hookline-${runnerName}-${workerName(key)}`.replace(/[^a-zA-Z0-9_.-]/g, '_');
}

/** The worker a container's labels name, or null when they name none. */
function keyOf(labels: Record<string, string> | undefined): WorkerKey | null {
  const generation = Number(labels?.[DOCKER_LABELS.generation]);
  const flowId = labels?.[DOCKER_LABELS.flow];
  const stepId = labels?.[DOCKER_LABELS.step];
  return flowId && stepId && Number.isInteger(generation) ? { flowId, stepId, generation } : null;
}

/** Docker's RFC 3339 time (nanoseconds, UTC) as [whole seconds, nanoseconds]; null for its zero time or anything else. */
function parseStamp(time: string | undefined): [number, string] | null {
  if (!time || time.startsWith('0001-')) return null;
  const match = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!match) return null;
  const seconds = Math.floor(Date.parse(`${match[1]}${match[3]}`) / 1000);
  return Number.isFinite(seconds) ? [seconds, (match[2] ?? '').padEnd(9, '0').slice(0, 9)] : null;
}

/** A Docker time as the logs API's `since` (seconds.nanoseconds). */
function sinceOf(time: string | undefined): string | undefined {
  const stamp = parseStamp(time);
  return stamp ? `${stamp[0]}.${stamp[1]}` : undefined;
}

/** A Docker time as a string that sorts in time order (empty for none). */
function stampKey(time: string | undefined): string {
  const stamp = parseStamp(time);
  return stamp ? `${String(stamp[0]).padStart(12, '0')}.${stamp[1]}` : '';
}

/** The later of two Docker times. */
const later = (a: string | undefined, b: string | undefined) => (stampKey(a) >= stampKey(b) ? a : b);

/** The signal an exit code of 128 + n stands for (Docker's init reports a signalled worker so). */
function signalOf(code: number | null): string | null {
  if (code === null || code <= 128) return null;
  const found = Object.entries(osConstants.signals).find(([, number]) => number === code - 128);
  return found ? found[0] : null;
}

/** Waits for `promise`, or `ms` at most. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

interface Engine {
  init: boolean;
  podman: boolean;
}

/** Where a run's output starts in the container's log, and what an adopted container printed before the runner came back. */
interface RunStart {
  /**
   * Read the log after this Docker time (the last line of the previous run, or its end, whichever is
   * later: Docker stamps the lines it copies after the process exited later than its exit); the
   * whole log when undefined.
   */
  since?: string;
  /** Or only its last lines (an adopted container that is not running: the end of its last run). */
  tail?: number;
  /** Lines before this time are from before the adoption: read for readiness (when `readyBefore`), not logged again. */
  adoptedAt?: Date;
  readyBefore?: boolean;
}

export class DockerDriver implements StepDriver {
  readonly kind = 'docker' as const;
  readonly docker: Docker;
  private readonly runnerName: string;
  private readonly logger: Logger;
  private readonly grace: number;
  private readonly backoff: { initialMs: number; maxMs: number; healthyAfterMs: number };
  private engine?: Promise<Engine>;
  private readonly workers = new Map<string, DockerWorker>();
  private closed = false;

  constructor(private readonly options: DockerDriverOptions) {
    this.docker = options.docker ?? new Docker();
    this.runnerName = options.runnerName;
    this.logger = options.logger.child({ driver: 'docker' });
    this.grace = options.stopGraceSeconds ?? 10;
    this.backoff = {
      initialMs: options.backoff?.initialMs ?? 1000,
      maxMs: options.backoff?.maxMs ?? 30_000,
      healthyAfterMs: options.backoff?.healthyAfterMs ?? 60_000,
    };
  }

  async check(config: WorkerConfig): Promise<string | null> {
    const step = config.step;
    if (config.broker.kind !== 'amqp')
      return `step ${step.id}: the docker driver needs RabbitMQ (the runner's AMQP_URL); without one, steps run as processes`;
    const image = step.component.image;
    if (!image)
      return `step ${step.id}: component ${step.component.name} has no image, and the docker driver runs each step in its component's image`;
    try {
      await this.docker.getImage(image).inspect();
      return null;
    } catch (error) {
      if (statusOf(error) === 404)
        return `image ${image} is not on this runner's Docker engine: build it with npm run images or docker load it`;
      return `this runner's Docker engine does not answer (${messageOf(error)})`;
    }
  }

  async start(launch: WorkerLaunch, observer: WorkerObserver): Promise<RunningWorker> {
    if (this.closed) throw new Error('the docker driver is closed');
    const reason = await this.check(launch.config);
    if (reason) throw new Error(reason);
    const spec = await this.containerSpec(launch);
    const container = await this.create(spec);
    const worker = new DockerWorker(this, container, launch.key, observer, spec, async () => launch.secrets);
    this.workers.set(container.id, worker);
    try {
      await this.startWithSecrets(container, launch.secrets);
    } catch (error) {
      this.workers.delete(container.id);
      await container.remove({ force: true }).catch(() => {});
      throw new Error(`cannot start the container of ${workerName(launch.key)}: ${messageOf(error)}`);
    }
    this.logger.info({ worker: workerName(launch.key), container: spec.name, image: spec.Image }, 'worker container started');
    worker.supervise({});
    return worker;
  }

  async recover(keep: (key: WorkerKey, specHash: string) => Adoption | null): Promise<RunningWorker[]> {
    const found = await this.docker.listContainers({ all: true, filters: { label: [`${DOCKER_LABELS.runner}=${this.runnerName}`] } });
    const adopted: DockerWorker[] = [];
    const keys = new Set([...this.workers.values()].map((worker) => workerName(worker.key)));
    const removals: Promise<void>[] = [];
    // Of two containers of one key, the one of the driver's own name is kept, else the oldest.
    const canonical = (summary: Docker.ContainerInfo) => {
      const key = keyOf(summary.Labels);
      return key && (summary.Names ?? []).includes(`/${containerName(this.runnerName, key)}`) ? 0 : 1;
    };
    for (const summary of found.sort((a, b) => canonical(a) - canonical(b) || a.Created - b.Created)) {
      if (this.workers.has(summary.Id)) continue; // already supervised by this run
      const labels = summary.Labels ?? {};
      const key = keyOf(labels);
      const container = this.docker.getContainer(summary.Id);
      const name = summary.Names?.[0]?.replace(/^\//, '') ?? summary.Id.slice(0, 12);
      const adoption = key && !keys.has(workerName(key)) ? keep(key, labels[DOCKER_LABELS.spec] ?? '') : null;
      if (!key || !adoption) {
        this.logger.info({ container: name, worker: key && workerName(key) }, 'removing a worker container this runner no longer runs');
        removals.push(
          this.remove(container, summary.State === 'running').catch((error) =>
            this.logger.warn({ container: name, err: messageOf(error) }, 'cannot remove a worker container this runner no longer runs'),
          ),
        );
        continue;
      }
      keys.add(workerName(key));
      let info: Docker.ContainerInspectInfo;
      try {
        info = await container.inspect();
      } catch (error) {
        this.logger.warn({ container: name, err: messageOf(error) }, 'a worker container vanished while adopting it');
        continue;
      }
      const worker = new DockerWorker(this, container, key, adoption.observer, specFromInspect(info), adoption.secrets);
      this.workers.set(summary.Id, worker);
      adopted.push(worker);
      this.logger.info({ worker: workerName(key), container: name, running: info.State.Running }, 'adopted a worker container');
      worker.supervise(
        info.State.Running
          ? { since: info.State.FinishedAt, adoptedAt: new Date(), readyBefore: true }
          : { tail: TAIL_LINES, adoptedAt: new Date(), readyBefore: false },
      );
    }
    await Promise.all(removals);
    return adopted;
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(workers.map((worker) => worker.detach()));
  }

  // --- for DockerWorker ---

  get stopGraceSeconds() {
    return this.grace;
  }
  get backoffMs() {
    return this.backoff;
  }
  get log() {
    return this.logger;
  }
  forget(worker: DockerWorker) {
    for (const [id, known] of this.workers) if (known === worker) this.workers.delete(id);
  }
  track(id: string, worker: DockerWorker) {
    this.forget(worker);
    if (!this.closed) this.workers.set(id, worker);
  }

  /** Creates the container; one of the same name left behind (a runner runs one worker per key) is removed first. */
  async create(spec: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(spec);
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      this.logger.warn({ container: spec.name }, 'removing a container of the same name left behind');
      await this.docker
        .getContainer(spec.name!)
        .remove({ force: true })
        .catch(() => {});
      return this.docker.createContainer(spec);
    }
  }

  /** Starts a container with its secrets on stdin: attached before the start, so that nothing is lost, written once and closed (StdinOnce). */
  async startWithSecrets(container: Docker.Container, secrets: WorkerSecrets): Promise<void> {
    const stdin = (await container.attach({
      stream: true,
      stdin: true,
      stdout: false,
      stderr: false,
      hijack: true,
    })) as NodeJS.ReadWriteStream & { destroy(): void };
    stdin.on('error', (error: Error) =>
      this.logger.warn({ container: container.id.slice(0, 12), err: error.message }, 'cannot write a worker container’s secrets'),
    );
    try {
      await container.start();
    } catch (error) {
      stdin.destroy();
      throw error;
    }
    stdin.end(encodeSecrets(secrets));
  }

  /** Stops (SIGTERM, the grace period, a kill) and removes a container; one already gone is fine. */
  async remove(container: Docker.Container, running = true): Promise<void> {
    if (running) {
      try {
        await container.stop({ t: this.grace });
      } catch (error) {
        const status = statusOf(error);
        if (status !== 304 && status !== 404)
          this.logger.warn(
            { container: container.id.slice(0, 12), err: messageOf(error) },
            'cannot stop a worker container; removing it by force',
          );
      }
    }
    try {
      // With its anonymous volumes (an image's VOLUME), which nothing else uses.
      await container.remove({ force: true, v: true });
    } catch (error) {
      const status = statusOf(error);
      // 409: its removal is already in progress.
      if (status !== 404 && status !== 409) throw new Error(`cannot remove container ${container.id.slice(0, 12)}: ${messageOf(error)}`);
    }
  }

  private async engineFeatures(): Promise<Engine> {
    this.engine ??= (async () => {
      const version = await this.docker.version().catch(() => {
        this.engine = undefined; // ask again next time
        return {} as Docker.DockerVersion;
      });
      const components = (version.Components ?? []).map((component) => component.Name);
      // Docker lists its init (tini) among its components only when it found the binary.
      return { init: components.includes('docker-init'), podman: components.some((name) => /podman/i.test(name)) };
    })();
    return this.engine;
  }

  private async containerSpec(launch: WorkerLaunch): Promise<Docker.ContainerCreateOptions & { name: string }> {
    const { key, config, specHash } = launch;
    const step = config.step;
    const engine = await this.engineFeatures();
    const memoryMb = step.memoryMb > 0 ? step.memoryMb : (this.options.defaults?.memoryMb ?? STEP_DEFAULTS.memoryMb);
    const cpus = step.cpus > 0 ? step.cpus : (this.options.defaults?.cpus ?? STEP_DEFAULTS.cpus);
    return {
      name: containerName(this.runnerName, key),
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
        [DOCKER_LABELS.runner]: this.runnerName,
        [DOCKER_LABELS.flow]: key.flowId,
        [DOCKER_LABELS.step]: key.stepId,
        [DOCKER_LABELS.generation]: String(key.generation),
        [DOCKER_LABELS.spec]: specHash,
      },
      StopSignal: 'SIGTERM',
      StopTimeout: this.grace,
      HostConfig: {
        NetworkMode: 'host',
        Memory: memoryMb * 1024 * 1024,
        MemorySwap: memoryMb * 1024 * 1024,
        NanoCpus: Math.round(cpus * 1e9),
        PidsLimit: this.options.defaults?.pids ?? PIDS_LIMIT,
        ReadonlyRootfs: true,
        Tmpfs: TMPFS,
        LogConfig: {
          Type: 'json-file',
          Config: { 'max-size': this.options.logMaxSize ?? '10m', 'max-file': String(this.options.logMaxFiles ?? 3) },
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
}

/** What an adopted container was created with, so that it can be created again if it is removed behind the driver's back. */
function specFromInspect(info: Docker.ContainerInspectInfo): Docker.ContainerCreateOptions & { name: string } {
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

interface Exit {
  code: number | null;
  signal: string | null;
  output: string;
}

class DockerWorker implements RunningWorker {
  private stopping: Promise<void> | null = null;
  private detached = false;
  /** Ends what waits on the engine (log, wait, backoff) when the driver lets go. */
  private readonly detachSignal = new AbortController();
  /** Ends a backoff when the worker is stopped. */
  private readonly stopSignal = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  /** The Docker time of the last line read: where the next run's output starts. */
  private lastStamp: string | undefined;

  constructor(
    private readonly driver: DockerDriver,
    private container: Docker.Container,
    readonly key: WorkerKey,
    private readonly observer: WorkerObserver,
    private readonly spec: Docker.ContainerCreateOptions & { name: string },
    private readonly secrets: () => Promise<WorkerSecrets>,
  ) {}

  private get done() {
    return this.detached || this.stopping !== null;
  }

  supervise(first: RunStart): void {
    this.loop = this.run(first).catch((error) =>
      this.driver.log.error({ worker: workerName(this.key), err: messageOf(error) }, 'worker supervision failed'),
    );
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopSignal.abort();
      this.driver.log.info({ worker: workerName(this.key) }, 'stopping worker container');
      const removed = this.container;
      await this.driver.remove(removed, true).finally(() => this.driver.forget(this));
      await this.loop;
      // A restart that was under way may have created the container again meanwhile.
      if (this.container !== removed) await this.driver.remove(this.container, true);
    })();
    return this.stopping;
  }

  /** Stops following the container, leaving it as it is. */
  async detach(): Promise<void> {
    this.detached = true;
    this.detachSignal.abort();
    await this.loop;
  }

  private async run(first: RunStart): Promise<void> {
    const { initialMs, maxMs, healthyAfterMs } = this.driver.backoffMs;
    let delay = initialMs;
    let start = first;
    for (;;) {
      const began = Date.now();
      const exit = await this.watch(start);
      if (!exit || this.done) return;
      this.driver.log.warn(
        { worker: workerName(this.key), code: exit.code, signal: exit.signal, restartInMs: delay },
        'worker container exited; starting it again',
      );
      this.observer.crashed(exit);
      if (Date.now() - began > healthyAfterMs) delay = initialMs;
      for (;;) {
        if (!(await this.pause(delay))) return;
        delay = Math.min(delay * 2, maxMs);
        try {
          start = await this.startAgain();
          break;
        } catch (error) {
          if (this.done) return;
          this.driver.log.warn(
            { worker: workerName(this.key), err: messageOf(error), restartInMs: delay },
            'cannot start the worker container again',
          );
          this.observer.crashed({ code: null, signal: null, output: `cannot start its container again: ${messageOf(error)}` });
        }
      }
    }
  }

  /** Waits `ms` unless the worker is stopped or let go; false then. */
  private async pause(ms: number): Promise<boolean> {
    if (this.done) return false;
    await sleep(ms, undefined, { signal: AbortSignal.any([this.stopSignal.signal, this.detachSignal.signal]) }).catch(() => {});
    return !this.done;
  }

  /** The same container again; created again when it is gone. */
  private async startAgain(): Promise<RunStart> {
    let since = this.lastStamp;
    try {
      since = later(since, (await this.container.inspect()).State.FinishedAt);
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      this.driver.log.warn({ worker: workerName(this.key), container: this.spec.name }, 'its container is gone; creating it again');
      this.container = await this.driver.create(this.spec);
      this.driver.track(this.container.id, this);
    }
    const secrets = await this.secrets();
    if (this.done) throw new Error('stopped');
    try {
      await this.driver.startWithSecrets(this.container, secrets);
    } catch (error) {
      if (statusOf(error) !== 304) throw error; // 304: it runs already
    }
    return { since };
  }

  /** Follows one run's output until the container exits: its exit, or null when let go or stopped. */
  private async watch(start: RunStart): Promise<Exit | null> {
    const tail: string[] = [];
    const following = this.follow(start, tail);
    let code: number | null = null;
    let gone = false;
    try {
      const status = (await this.container.wait({ abortSignal: this.detachSignal.signal })) as { StatusCode?: number };
      code = typeof status.StatusCode === 'number' ? status.StatusCode : null;
    } catch (error) {
      if (this.detached) return null;
      gone = statusOf(error) === 404;
      if (!gone) {
        // The engine went away (or answered oddly): whatever the container does, look again shortly.
        this.driver.log.warn({ worker: workerName(this.key), err: messageOf(error) }, 'lost the watch on a worker container');
      }
    }
    // Docker ends the log of a container that stopped once all of it is read; give it a moment.
    await within(following, 3000);
    if (this.done) return null;
    let oom = false;
    if (!gone) {
      try {
        const info = await this.container.inspect();
        if (info.State.Running) return this.watch({ since: this.lastStamp ?? info.State.StartedAt }); // not an exit after all
        oom = info.State.OOMKilled;
        code = info.State.ExitCode ?? code;
      } catch (error) {
        if (statusOf(error) !== 404) return this.retryWatch();
        gone = true;
      }
    }
    let output = tail.join('\n');
    if (oom)
      output = `${output}\n(killed: out of memory, over its limit of ${Math.round((this.spec.HostConfig?.Memory ?? 0) / 1048576)} MB)`;
    if (gone) output = `${output}\n(its container was removed)`;
    output = output.trim();
    if (output.length > TAIL_CHARS) output = output.slice(-TAIL_CHARS);
    return { code: gone ? null : code, signal: oom ? 'SIGKILL' : signalOf(code), output };
  }

  /** The engine did not answer: try to watch again after a second. */
  private async retryWatch(): Promise<Exit | null> {
    if (!(await this.pause(1000))) return null;
    try {
      const info = await this.container.inspect();
      if (info.State.Running) return this.watch({ since: this.lastStamp ?? info.State.StartedAt });
      return { code: info.State.ExitCode ?? null, signal: signalOf(info.State.ExitCode ?? null), output: '' };
    } catch {
      return this.retryWatch();
    }
  }

  /** Reads the container's log from `start.since` (following it until the container stops): lines to the observer, readiness, and the tail. */
  private async follow(start: RunStart, tail: string[]): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.container.logs({
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        ...(sinceOf(start.since) ? { since: sinceOf(start.since) as unknown as number } : {}),
        ...(start.tail ? { tail: start.tail } : {}),
        abortSignal: this.detachSignal.signal,
      })) as unknown as NodeJS.ReadableStream;
    } catch (error) {
      if (!this.detached)
        this.driver.log.warn({ worker: workerName(this.key), err: messageOf(error) }, 'cannot read a worker container’s output');
      return;
    }
    const after = stampKey(start.since);
    const onLine = (kind: 'stdout' | 'stderr', raw: string) => {
      const space = raw.indexOf(' ');
      const stampText = space > 0 ? raw.slice(0, space) : '';
      const key = stampKey(stampText);
      if (key && key <= after) return; // read already, with the previous run
      if (key > stampKey(this.lastStamp)) this.lastStamp = stampText;
      const at = key ? new Date(stampText) : new Date();
      const line = key ? raw.slice(space + 1) : raw;
      // An adopted container's lines from before the adoption were shipped by the runner's earlier run.
      const before = start.adoptedAt !== undefined && at < start.adoptedAt;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      if (!before) this.observer.log({ stream: kind, line, at });
      if (kind === 'stdout' && line.includes(READY_MARK) && (!before || start.readyBefore)) this.observer.ready();
    };
    await new Promise<void>((resolve) => {
      const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
      const partial = { stdout: '', stderr: '' };
      let pending: Buffer = Buffer.alloc(0);
      const text = (kind: 'stdout' | 'stderr', chunk: string) => {
        partial[kind] += chunk;
        let at: number;
        while ((at = partial[kind].indexOf('\n')) >= 0) {
          onLine(kind, partial[kind].slice(0, at).replace(/\r$/, ''));
          partial[kind] = partial[kind].slice(at + 1);
        }
      };
      // Docker's multiplexed stream: frames of [stream, 0, 0, 0, size (4 bytes, big endian)] + payload.
      stream.on('data', (chunk: Buffer) => {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        while (pending.length >= 8) {
          const size = pending.readUInt32BE(4);
          if (pending.length < 8 + size) break;
          const kind = pending[0] === 2 ? 'stderr' : 'stdout';
          text(kind, decoders[kind].write(pending.subarray(8, 8 + size)));
          pending = pending.subarray(8 + size);
        }
      });
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        for (const kind of ['stdout', 'stderr'] as const) {
          const rest = partial[kind] + decoders[kind].end();
          if (rest) onLine(kind, rest);
        }
        resolve();
      };
      stream.on('end', end);
      stream.on('close', end);
      stream.on('error', end);
    });
  }
}
