import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { READY_MARK, type WorkerSecrets } from '../../worker/config.js';
import { supervise } from '../supervise.js';
import { workerName, type RunningWorker, type WorkerExit, type WorkerKey, type WorkerObserver } from '../types.js';
import { exitOf, messageOf, signalOf, statusOf, TAIL_LINES } from './exit.js';
import { readLog, splitStamp } from './logs.js';
import type { ContainerSpec } from './spec.js';
import { later, sinceOf, stampKey } from './time.js';

/** Where a run's output starts in the container's log, and what an adopted container printed before the runner came back. */
export interface RunStart {
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

/** What a worker needs of its driver: the engine calls that name or create its container. */
export interface ContainerHost {
  readonly log: Logger;
  create(spec: ContainerSpec): Promise<Docker.Container>;
  startWithSecrets(container: Docker.Container, secrets: WorkerSecrets): Promise<void>;
  remove(container: Docker.Container, running?: boolean): Promise<void>;
  /** The worker's container is now `id` (created again). */
  track(id: string, worker: DockerWorker): void;
  forget(worker: DockerWorker): void;
}

/** Waits for `promise`, or `ms` at most. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** One worker's container: its runs followed through Docker's log and wait, supervised (../supervise.ts). */
export class DockerWorker implements RunningWorker {
  private stopping: Promise<void> | null = null;
  private detached = false;
  /** Ends what waits on the engine (log, wait) when the driver lets go. */
  private readonly detachSignal = new AbortController();
  /** Ends a backoff when the worker is stopped. */
  private readonly stopSignal = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  /** The Docker time of the last line read: where the next run's output starts. */
  private lastStamp: string | undefined;
  private start: RunStart = {};

  constructor(
    private readonly host: ContainerHost,
    private container: Docker.Container,
    readonly key: WorkerKey,
    private readonly observer: WorkerObserver,
    private readonly spec: ContainerSpec,
    private readonly secrets: () => Promise<WorkerSecrets>,
  ) {}

  private get done() {
    return this.detached || this.stopping !== null;
  }

  supervise(first: RunStart): void {
    this.start = first;
    const runs = { ended: () => this.watch(this.start), restart: () => this.startAgain() };
    this.loop = supervise(
      this.key,
      runs,
      this.observer,
      this.host.log,
      AbortSignal.any([this.stopSignal.signal, this.detachSignal.signal]),
    );
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopSignal.abort();
      this.host.log.info({ worker: workerName(this.key) }, 'stopping worker container');
      const removed = this.container;
      await this.host.remove(removed, true).finally(() => this.host.forget(this));
      await this.loop;
      // A restart that was under way may have created the container again meanwhile.
      if (this.container !== removed) await this.host.remove(this.container, true);
    })();
    return this.stopping;
  }

  /** Stops following the container, leaving it as it is. */
  async detach(): Promise<void> {
    this.detached = true;
    this.detachSignal.abort();
    await this.loop;
  }

  /** Waits `ms` unless the worker is stopped or let go; false then. */
  private async pause(ms: number): Promise<boolean> {
    if (this.done) return false;
    await sleep(ms, undefined, { signal: AbortSignal.any([this.stopSignal.signal, this.detachSignal.signal]) }).catch(() => {});
    return !this.done;
  }

  /** The same container again; created again when it is gone. */
  private async startAgain(): Promise<void> {
    try {
      let since = this.lastStamp;
      try {
        since = later(since, (await this.container.inspect()).State.FinishedAt);
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
        this.host.log.warn({ worker: workerName(this.key), container: this.spec.name }, 'its container is gone; creating it again');
        this.container = await this.host.create(this.spec);
        this.host.track(this.container.id, this);
      }
      const secrets = await this.secrets();
      if (this.done) throw new Error('stopped');
      try {
        await this.host.startWithSecrets(this.container, secrets);
      } catch (error) {
        if (statusOf(error) !== 304) throw error; // 304: it runs already
      }
      this.start = { since };
    } catch (error) {
      throw new Error(messageOf(error));
    }
  }

  /** Follows one run's output until the container exits: its exit, or null when let go or stopped. */
  private async watch(start: RunStart): Promise<WorkerExit | null> {
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
        this.host.log.warn({ worker: workerName(this.key), err: messageOf(error) }, 'lost the watch on a worker container');
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
    return exitOf({ code, oom, gone, tail, memoryBytes: this.spec.HostConfig?.Memory ?? 0 });
  }

  /** The engine did not answer: try to watch again after a second. */
  private async retryWatch(): Promise<WorkerExit | null> {
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
        this.host.log.warn({ worker: workerName(this.key), err: messageOf(error) }, 'cannot read a worker container’s output');
      return;
    }
    const after = stampKey(start.since);
    await readLog(stream, (kind, raw) => {
      const { stamp, key, line } = splitStamp(raw);
      if (key && key <= after) return; // read already, with the previous run
      if (key > stampKey(this.lastStamp)) this.lastStamp = stamp;
      const at = key ? new Date(stamp) : new Date();
      // An adopted container's lines from before the adoption were shipped by the runner's earlier run.
      const before = start.adoptedAt !== undefined && at < start.adoptedAt;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      if (!before) this.observer.log({ stream: kind, line, at });
      if (kind === 'stdout' && line.includes(READY_MARK) && (!before || start.readyBefore)) this.observer.ready();
    });
  }
}
