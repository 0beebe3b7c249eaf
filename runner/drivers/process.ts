import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { stepWorkerBundle } from '../bundle.js';
import { resolveTrustedModule, type TrustedModuleList } from '../trusted-modules.js';
import { encodeSecrets, READY_MARK, WORKER_ENV, type WorkerConfig } from '../worker/config.js';
import { supervise } from './supervise.js';
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
 * data folder, so a runner that was killed removes what it left at its next start.
 * A worker runs as the runner's own user, so it runs only code the operator trusts: the built-ins
 * and the modules RUNNER_TRUSTED_MODULES lists (runner/trusted-modules.ts).
 */
export class ProcessDriver implements StepDriver {
  readonly kind = 'process' as const;
  private readonly workers = new Set<ProcessWorker>();
  private entry: Promise<string> | undefined;

  /** `trusted`: RUNNER_TRUSTED_MODULES, its folders as real paths; the built-ins run whatever it says. */
  constructor(private readonly options: { dataDir: string; logger: Logger; trusted: TrustedModuleList }) {}

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

  async check(config: WorkerConfig): Promise<string | null> {
    const resolved = await this.moduleOf(config);
    return 'refused' in resolved ? resolved.refused : null;
  }

  async start(launch: WorkerLaunch, observer: WorkerObserver): Promise<RunningWorker> {
    const resolved = await this.moduleOf(launch.config);
    if ('refused' in resolved) throw new Error(resolved.refused);
    await mkdir(this.pidDir, { recursive: true });
    this.entry ??= stepWorkerBundle();
    const entry = await this.entry;
    const worker = new ProcessWorker(
      entry,
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
    return [];
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.stop()));
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

class ProcessWorker implements RunningWorker {
  readonly key: WorkerKey;
  private child: ChildProcess | undefined;
  /** How the current run ends: null when it was stopped. */
  private exited: Promise<WorkerExit | null> = Promise.resolve(null);
  private readonly stopping = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  private readonly output: string[] = [];

  constructor(
    private readonly entry: string,
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
    const env: Record<string, string> = {};
    for (const name of PASSED_ENV) if (process.env[name]) env[name] = process.env[name]!;
    env[WORKER_ENV.config] = JSON.stringify(this.launch.config);
    env[WORKER_ENV.componentModule] = this.module;
    const child = fork(this.entry, [], { execArgv: [], env, stdio: ['pipe', 'pipe', 'pipe', 'ipc'] });
    this.child = child;
    // Its secrets on stdin, as the docker driver gives them: never in its environment.
    child.stdin!.on('error', () => {}); // a worker that died at once: its exit is reported
    child.stdin!.end(encodeSecrets(this.launch.secrets));
    if (child.pid) void writeFile(this.pidFile, `${child.pid}\n`).catch(() => {});
    this.launch.attach?.(child);
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream]! }).on('line', (line) => {
        this.output.push(line);
        if (this.output.length > OUTPUT_LINES) this.output.shift();
        this.observer.log({ stream, line, at: new Date() });
        if (stream === 'stdout' && line.includes(READY_MARK)) this.observer.ready();
      });
    }
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.child = undefined;
        if (this.stopping.signal.aborted) return resolve(null);
        // Let the last lines of output arrive before they are quoted as the reason.
        setTimeout(() => resolve({ code, signal, output: this.output.join('\n') }), 20);
      }),
    );
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
