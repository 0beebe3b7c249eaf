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
 *   started again, the same container, after the restart backoff both drivers share (supervise.ts).
 *   A container removed behind its back is created again.
 * - Its output is read from Docker's log (demultiplexed, timestamped), so nothing is lost while
 *   the driver follows it again after a restart or an adoption; `ready` comes from READY_MARK.
 * - `close()` lets go without stopping anything; the next run of this runner `recover`s its
 *   containers by label: it adopts those it should run (same key and spec hash) and removes the rest.
 *
 * Its parts, in docker/: `spec.ts` (a worker's container, its name and labels), `worker.ts` (one
 * worker's runs: Docker's wait and log), `logs.ts` (the log stream as lines), `time.ts` (Docker's
 * times), `exit.ts` (how a run ended), `adopt.ts` (what a runner's earlier run left).
 */
import Docker from 'dockerode';
import type { Logger } from 'pino';
import { encodeStdin, type WorkerConfig, type WorkerSecrets } from '../worker/config.js';
import { adoptedRunStart, adoptionOrder } from './docker/adopt.js';
import { messageOf, statusOf } from './docker/exit.js';
import { containerSpec, DOCKER_LABELS, keyOf, specFromInspect, type ContainerSpec, type Engine } from './docker/spec.js';
import { DockerWorker, type ContainerHost } from './docker/worker.js';
import {
  workerName,
  type Adoption,
  type RunningWorker,
  type StepDriver,
  type WorkerKey,
  type WorkerLaunch,
  type WorkerObserver,
} from './types.js';

export { containerName, DOCKER_LABELS } from './docker/spec.js';

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
}

export class DockerDriver implements StepDriver, ContainerHost {
  readonly kind = 'docker' as const;
  readonly docker: Docker;
  private readonly runnerName: string;
  private readonly logger: Logger;
  private readonly grace: number;
  private engine?: Promise<Engine>;
  private readonly workers = new Map<string, DockerWorker>();
  private closed = false;

  constructor(private readonly options: DockerDriverOptions) {
    this.docker = options.docker ?? new Docker();
    this.runnerName = options.runnerName;
    this.logger = options.logger.child({ driver: 'docker' });
    this.grace = options.stopGraceSeconds ?? 10;
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
    for (const summary of adoptionOrder(found, this.runnerName)) {
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
      worker.supervise(adoptedRunStart(info.State, new Date()));
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

  // --- the ContainerHost its workers use ---

  get log() {
    return this.logger;
  }
  forget(worker: DockerWorker): void {
    for (const [id, known] of this.workers) if (known === worker) this.workers.delete(id);
  }
  track(id: string, worker: DockerWorker): void {
    this.forget(worker);
    if (!this.closed) this.workers.set(id, worker);
  }

  /** Creates the container; one of the same name left behind (a runner runs one worker per key) is removed first. */
  async create(spec: ContainerSpec): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(spec);
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      this.logger.warn({ container: spec.name }, 'removing a container of the same name left behind');
      await this.docker
        .getContainer(spec.name)
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
    stdin.end(encodeStdin(secrets));
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

  private engineFeatures(): Promise<Engine> {
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

  private async containerSpec(launch: WorkerLaunch): Promise<ContainerSpec> {
    const { defaults, logMaxSize, logMaxFiles } = this.options;
    const engine = await this.engineFeatures();
    return containerSpec(launch, { runnerName: this.runnerName, engine, defaults, logMaxSize, logMaxFiles, stopGraceSeconds: this.grace });
  }
}
