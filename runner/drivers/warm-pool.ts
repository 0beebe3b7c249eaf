import type { ChildProcess } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WARM_MARK } from '../worker/config.js';

/**
 * The process driver's warm workers: step workers forked before their step is known, that have
 * loaded and wait on stdin for a step and its secrets. Taking one saves a deployment the time node
 * takes to load the step worker (bench/deploy-time.ts). Each serves one step once and is never
 * handed back, so nothing passes from one flow or tenant to another through it.
 *
 * Refilled one worker at a time, and only when `refill` is called (the driver calls it once the
 * workers it took are ready): the pool never competes for the CPU with the start that emptied it.
 * A waiting worker has a pid file `warm-<pid>.pid` (so a runner that was killed removes it at its
 * next start); there are as many as there are workers waiting.
 *
 * `reserve` forks, all at once, the workers a start needs beyond those waiting, as soon as the
 * start begins: they load while the runner declares queues and mints tokens, and are taken as they
 * are, loaded or not (a worker reads its step whenever it is ready for it).
 */
export class WarmPool {
  private readonly waiting: ChildProcess[] = [];
  /** Forked by `reserve` for a start under way, loading or loaded; killed at close, or taken by the next start. */
  private readonly reserved: ChildProcess[] = [];
  /** The fill under way, if one is: close waits for it, so that no worker it forks outlives the pool. */
  private filling: Promise<void> | undefined;
  /** The worker that fill is waiting for, killed by close rather than waited for. */
  private loading: ChildProcess | undefined;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly fork: () => ChildProcess,
    private readonly pidDir: string,
    private readonly logger: Logger,
  ) {}

  /** A warm worker, else a reserved one, or none (the caller forks one itself). */
  take(): ChildProcess | undefined {
    const child = this.waiting.shift();
    if (child) void rm(this.pidFile(child), { force: true });
    return child ?? this.reserved.shift();
  }

  /** Forks at once what `count` steps about to start need beyond the workers waiting or reserved. */
  reserve(count: number): void {
    for (let have = this.waiting.length + this.reserved.length; have < count && !this.closed; have++) {
      const child = this.fork();
      this.reserved.push(child);
      child.once('exit', () => {
        const at = this.reserved.indexOf(child);
        if (at >= 0) this.reserved.splice(at, 1);
      });
    }
  }

  /** Forks warm workers, one after the other, until `size` of them wait. */
  refill(): void {
    if (this.filling || this.closed) return;
    this.filling = this.fill().finally(() => {
      this.filling = undefined;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.loading?.kill('SIGKILL');
    await this.filling;
    await Promise.all(this.reserved.splice(0).map(killed));
    await Promise.all(
      this.waiting.splice(0).map(async (child) => {
        await killed(child);
        await rm(this.pidFile(child), { force: true });
      }),
    );
  }

  private async fill(): Promise<void> {
    while (!this.closed && this.waiting.length < this.size) {
      const child = this.fork();
      this.loading = child;
      const warm = await warmedUp(child);
      this.loading = undefined;
      if (this.closed) return void (await killed(child));
      if (!warm) {
        this.logger.warn({ pid: child.pid }, 'a warm step worker exited before it was ready; the pool stops filling until the next start');
        return;
      }
      // The pid file first, so that one taken at once never leaves it behind; close waits for this loop.
      await writeFile(this.pidFile(child), `${child.pid}\n`).catch(() => {});
      if (this.closed) {
        await killed(child);
        await rm(this.pidFile(child), { force: true });
        return;
      }
      this.waiting.push(child);
      // One that dies while it waits (killed by hand, out of memory) leaves the pool, and another takes its place.
      child.once('exit', () => {
        const at = this.waiting.indexOf(child);
        if (at < 0) return;
        this.waiting.splice(at, 1);
        void rm(this.pidFile(child), { force: true });
        this.refill();
      });
    }
  }

  private pidFile(child: ChildProcess): string {
    return join(this.pidDir, `warm-${child.pid}.pid`);
  }
}

/** Whether the child said it waits for its step (WARM_MARK on stdout) before it exited. */
function warmedUp(child: ChildProcess): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (!seen.includes(WARM_MARK)) return;
      done(true);
    };
    const onExit = () => done(false);
    const done = (warm: boolean) => {
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      // Paused, so that what it writes after this waits for the driver that takes it.
      child.stdout!.pause();
      resolve(warm);
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
