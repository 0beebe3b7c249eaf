import type { ChildProcess } from 'node:child_process';
import type { WorkerConfig, WorkerSecrets } from '../worker/config.js';

/** One step worker of one deployment generation; a runner runs at most one per key. */
export interface WorkerKey {
  flowId: string;
  stepId: string;
  generation: number;
}

export const workerName = (key: WorkerKey) => `${key.flowId}.${key.stepId}.${key.generation}`;

export interface WorkerLaunch {
  key: WorkerKey;
  config: WorkerConfig;
  /** Written to the worker's stdin at every start: never in its environment, HOOKLINE_WORKER or a label. */
  secrets: WorkerSecrets;
  /** Changes whenever the worker's configuration does: a recovered worker is adopted only when it matches. */
  specHash: string;
  /** Process driver, ipc broker: called with each child it spawns, for the in-process broker to talk to. */
  attach?: (child: ChildProcess) => void;
}

export interface WorkerLogLine {
  stream: 'stdout' | 'stderr';
  line: string;
  at: Date;
}

/** How a worker's run ended: its exit code or signal, and the end of what it wrote. */
export interface WorkerExit {
  code: number | null;
  signal: string | null;
  output: string;
}

/** What a driver tells about a worker it supervises. */
export interface WorkerObserver {
  /** It consumes its queue: the first time, and again after every restart. */
  ready(): void;
  /** It stopped by itself (a crash); the driver starts it again after a backoff. `output` is the end of what it wrote. */
  crashed(exit: WorkerExit): void;
  log(line: WorkerLogLine): void;
}

/** A worker an earlier run of this runner left, to supervise again. */
export interface Adoption {
  observer: WorkerObserver;
  /** Its secrets for when it must be started again (they went to its stdin, so the driver does not have them). */
  secrets(): Promise<WorkerSecrets>;
}

export interface RunningWorker {
  readonly key: WorkerKey;
  /** SIGTERM first (the worker finishes the inputs it holds), a kill after the grace period; never restarted after. */
  stop(): Promise<void>;
}

/**
 * Runs step workers: `process` as child processes of the runner, `docker` as containers. A driver
 * supervises what it starts (supervise.ts): a worker that exits without being stopped is started
 * again, after a backoff that doubles from 1 s to 30 s.
 */
export interface StepDriver {
  readonly kind: 'process' | 'docker';
  /** Optional: `steps` workers are about to be started; a driver may begin loading them before their step is known. */
  prepare?(steps: number): void;
  /** Why this step cannot run here (its module or image is missing), or null when it can. */
  check(config: WorkerConfig): Promise<string | null>;
  /** Starts a worker; rejects only when it cannot be started at all (readiness comes through the observer). */
  start(launch: WorkerLaunch, observer: WorkerObserver): Promise<RunningWorker>;
  /**
   * Finds the workers an earlier run of this runner left (containers by label, processes by pid
   * file). `keep` returns an adoption for each one to adopt; the others are removed.
   */
  recover(keep: (key: WorkerKey, specHash: string) => Adoption | null): Promise<RunningWorker[]>;
  close(): Promise<void>;
}
