import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { stepWorkerBundle } from '../bundle.js';
import { resolveTrustedModule, type TrustedModuleList } from '../trusted-modules.js';
import { encodeStdin, READY_MARK, WORKER_ENV, type WorkerConfig } from '../worker/config.js';
import { supervise } from './supervise.js';
import { WarmPool } from './warm-pool.js';
import {
  workerName,
  type RunningWorker,
  type StepDriver,
  type WorkerExit,
  type WorkerKey,
  type WorkerLaunch,
  type WorkerObserver,
} from './types.js';

/** What a worker may see of the runner's environment: nothing of the runner's own secrets. */
const PASSED_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'NODE_EXTRA_CA_CERTS', 'LOG_LEVEL'];
const STOP_GRACE_MS = 10_000;
const OUTPUT_LINES = 30;

/**
 * Step workers as child processes of the runner (the embedded default): the bundled step worker
 * (runner/bundle.ts) forked with plain node and a channel
 * (the in-process broker talks over it, and a worker whose runner dies notices), their output
 * read line by line, restarted after a crash (supervise.ts). Each has a pid file in the runner's
 * data folder, so a runner that was killed removes what it left at its next start. Workers are
 * taken from a pool of warm ones when it has some (warm-pool.ts); either way the step and its
 * secrets go to the worker's stdin.
 * A worker runs as the runner's own user, so it runs only code the operator trusts: the built-ins
 * and the modules RUNNER_TRUSTED_MODULES lists (runner/trusted-modules.ts).
 */
export class ProcessDriver implements StepDriver {
  readonly kind = 'process' as const;
  private readonly workers = new Set<ProcessWorker>();
  private entry: Promise<string> | undefined;
  private pool: WarmPool | undefined;

  /**
   * `trusted`: RUNNER_TRUSTED_MODULES, its folders as real paths; the built-ins run whatever it says.
   * `warmWorkers`: how many workers wait, loaded, for a step (RUNNER_WARM_WORKERS; none by default).
   */
  constructor(private readonly options: { dataDir: string; logger: Logger; trusted: TrustedModuleList; warmWorkers?: number }) {}

  /** The bundled step worker, built once, and the pool that forks it ahead of time. */
  private async prepared(): Promise<{ entry: string; pool: WarmPool }> {
    this.entry ??= stepWorkerBundle();
    const entry = await this.entry;
    this.pool ??= new WarmPool(
      this.options.warmWorkers ?? 0,
      () => forkWorker(entry, { [WORKER_ENV.warm]: '1' }),
      this.pidDir,
      this.options.logger,
    );
    return { entry, pool: this.pool };
  }

  private get pidDir(): string {
    return join(this.options.dataDir, 'workers');
  }

  /** The module the worker imports, checked against what the operator trusts whatever the control plane said; or why not. */
  private async moduleOf(config: WorkerConfig): Promise<{ module: string } | { refused: string }> {
    const { name, module } = config.step.component;
    if (!module) return { refused: `component ${name} has no module, so it runs only on a docker runner` };
    const resolved = await resolveTrustedModule(this.options.trusted, module);
    return 'refused' in resolved ? { refused: `component ${name}: ${resolved.refused}` } : resolved;
  }

  /** Workers for `steps` steps about to start begin loading now, while their queues and tokens are made. */
  prepare(steps: number): void {
    void this.prepared().then(({ pool }) => pool.reserve(steps));
  }

  async check(config: WorkerConfig): Promise<string | null> {
    const resolved = await this.moduleOf(config);
    return 'refused' in resolved ? resolved.refused : null;
  }

  async start(launch: WorkerLaunch, observer: WorkerObserver): Promise<RunningWorker> {
    const resolved = await this.moduleOf(launch.config);
    if ('refused' in resolved) throw new Error(resolved.refused);
    await mkdir(this.pidDir, { recursive: true });
    const { entry, pool } = await this.prepared();
    const worker = new ProcessWorker(
      () => pool.take() ?? forkWorker(entry),
      () => pool.refill(),
      resolved.module,
      launch,
      observer,
      join(this.pidDir, `${workerName(launch.key)}.pid`),
      this.options.logger,
      () => this.workers.delete(worker),
    );
    this.workers.add(worker);
    worker.supervise();
    return worker;
  }

  /** Processes are never adopted (their output and channel went with the runner that forked them): any left are killed. */
  async recover(): Promise<RunningWorker[]> {
    const files = await readdir(this.pidDir).catch(() => [] as string[]);
    for (const file of files.filter((f) => f.endsWith('.pid'))) {
      const path = join(this.pidDir, file);
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (pid > 0 && (await isWorker(pid))) {
        this.options.logger.warn({ pid, worker: file.replace(/\.pid$/, '') }, 'removing a step worker an earlier run of this runner left');
        process.kill(pid, 'SIGKILL');
      }
      await rm(path, { force: true });
    }
    if ((this.options.warmWorkers ?? 0) > 0) {
      await mkdir(this.pidDir, { recursive: true });
      (await this.prepared()).pool.refill();
    }
    return [];
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.stop()));
    await this.pool?.close();
  }
}

/** Whether `pid` is alive and one of our step workers (a pid may have been reused by now). */
async function isWorker(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('step-worker-');
}

/** Forks the bundled step worker with nothing of the runner's environment but PASSED_ENV (and `extra`). */
function forkWorker(entry: string, extra: Record<string, string> = {}): ChildProcess {
  const env: Record<string, string> = { ...extra };
  for (const name of PASSED_ENV) if (process.env[name]) env[name] = process.env[name]!;
  return fork(entry, [], { execArgv: [], env, stdio: ['pipe', 'pipe', 'pipe', 'ipc'] });
}

class ProcessWorker implements RunningWorker {
  readonly key: WorkerKey;
  private child: ChildProcess | undefined;
  /** How the current run ends: null when it was stopped. */
  private exited: Promise<WorkerExit | null> = Promise.resolve(null);
  private readonly stopping = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  private readonly output: string[] = [];

  constructor(
    /** A warm worker from the pool, or a new one. */
    private readonly newChild: () => ChildProcess,
    /** Called when the worker is ready: the pool may fork what it gave. */
    private readonly onReady: () => void,
    private readonly module: string,
    private readonly launch: WorkerLaunch,
    private readonly observer: WorkerObserver,
    private readonly pidFile: string,
    private readonly logger: Logger,
    private readonly forget: () => void,
  ) {
    this.key = launch.key;
  }

  supervise(): void {
    this.spawn();
    const runs = { ended: () => this.exited, restart: async () => this.spawn() };
    this.loop = supervise(this.key, runs, this.observer, this.logger, this.stopping.signal);
  }

  private spawn(): void {
    const child = this.newChild();
    this.child = child;
    // Its secrets on stdin, as the docker driver gives them: never in its environment. Its step too,
    // as a warm worker was forked before the step was known.
    child.stdin!.on('error', () => {}); // a worker that died at once: its exit is reported
    child.stdin!.end(encodeStdin(this.launch.secrets, { config: this.launch.config, componentModule: this.module }));
    if (child.pid) void writeFile(this.pidFile, `${child.pid}\n`).catch(() => {});
    this.launch.attach?.(child);
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream]! }).on('line', (line) => {
        this.output.push(line);
        if (this.output.length > OUTPUT_LINES) this.output.shift();
        this.observer.log({ stream, line, at: new Date() });
        if (stream === 'stdout' && line.includes(READY_MARK)) {
          this.observer.ready();
          this.onReady();
        }
      });
    }
    // A warm child may have died in the pool just before it was taken: its exit counts as this run's.
    const gone = child.exitCode !== null || child.signalCode !== null;
    this.exited = new Promise((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        this.child = undefined;
        if (this.stopping.signal.aborted) return resolve(null);
        // Let the last lines of output arrive before they are quoted as the reason.
        setTimeout(() => resolve({ code, signal, output: this.output.join('\n') }), 20);
      };
      if (gone) onExit(child.exitCode, child.signalCode);
      else child.once('exit', onExit);
    });
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    await this.loop;
    await rm(this.pidFile, { force: true });
    this.forget();
  }
}
