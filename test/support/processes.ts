/**
 * Hookline's deployables as processes of their own, for the fault tests (test/support/stack.ts) and
 * the fault bench and soak (bench/support/stack.ts): each can be started, killed and started again
 * with the same settings and data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLocalEdge, type LocalEdge, type LocalEdgeOptions } from '../../scripts/local-edge.js';

/** One deployable, as an operator sees it: a process to kill and start again. */
export interface Part {
  name: string;
  /** Its process id while it runs. */
  pid(): number | undefined;
  /** Starts it (again, with the same settings and data) and resolves once it is ready. */
  start(): Promise<void>;
  /** SIGKILL: no chance to finish anything; resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGTERM, and waits until it exited. */
  stop(): Promise<void>;
  /** The end of its log, for a failure's message. */
  log(): Promise<string>;
}

export interface NodePartOptions {
  name: string;
  /** The TypeScript entry point, run through tsx. */
  entry: string;
  /** On top of this process's environment. */
  env: Record<string, string>;
  /** Its output is appended here. */
  logFile: string;
  /** Whether it is ready yet (a failed check counts as not yet). */
  ready: () => Promise<boolean>;
  /** More modules to preload with `node --import`. */
  imports?: string[];
  /** Hears of every exit nobody asked for (start, kill and stop are asked for), with the end of the log. */
  unexpectedExit?: (what: string) => void;
}

const READY_WITHIN_MS = 120_000;

const gone = (child: ChildProcess | undefined) => !child || child.exitCode !== null || child.signalCode !== null;

async function end(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || gone(child)) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

const tail = async (logFile: string) => (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n');

/** Polls `ready` until it holds; throws when `exited` says why it never will, or after READY_WITHIN_MS. */
async function untilReady(what: string, ready: () => Promise<boolean>, exited: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + READY_WITHIN_MS;
  while (!(await ready().catch(() => false))) {
    const reason = await exited();
    if (reason) throw new Error(`${what} exited: ${reason}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${READY_WITHIN_MS / 1000} s`);
    await sleep(100);
  }
}

/** A Node deployable (`node --import tsx <entry>`). */
export function nodePart(options: NodePartOptions): Part {
  let child: ChildProcess | undefined;
  let asked = false;
  const part: Part = {
    name: options.name,
    pid: () => (gone(child) ? undefined : child?.pid),
    async start() {
      const log = openSync(options.logFile, 'a');
      const imports = ['tsx', ...(options.imports ?? [])].flatMap((module) => ['--import', module]);
      const started = spawn(process.execPath, [...imports, options.entry], {
        env: { ...process.env, ...options.env },
        stdio: ['ignore', log, log],
      });
      closeSync(log);
      child = started;
      asked = false;
      started.once('exit', async (code, signal) => {
        if (!asked)
          options.unexpectedExit?.(`${options.name} exited (${signal ?? code}); the end of ${options.logFile}:\n${await part.log()}`);
      });
      await untilReady(options.name, options.ready, async () =>
        gone(started) ? `${started.signalCode ?? started.exitCode}\n${await part.log()}` : undefined,
      );
    },
    kill() {
      asked = true;
      return end(child, 'SIGKILL');
    },
    stop() {
      asked = true;
      return end(child, 'SIGTERM');
    },
    log: () => tail(options.logFile),
  };
  return part;
}

/** The edge Worker on workerd, as `npm run edge` serves it; a start after a kill keeps its Durable Objects' storage. */
export function edgePart(options: Omit<LocalEdgeOptions, 'timeoutMs' | 'onWait'>): Part & { url: string } {
  let edge: LocalEdge | undefined;
  return {
    name: 'edge',
    url: `http://127.0.0.1:${options.port}`,
    pid: () => (gone(edge?.child) ? undefined : edge?.child.pid),
    async start() {
      edge = await startLocalEdge('workerd', { ...options, timeoutMs: READY_WITHIN_MS });
    },
    kill: () => end(edge?.child, 'SIGKILL'),
    stop: () => end(edge?.child, 'SIGTERM'),
    log: () => tail(options.logFile),
  };
}

/** Whether a process with this pid is alive (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
