import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Docker from 'dockerode';

const run = promisify(execFile);

export interface PrivateDockerd {
  /** unix:///.../docker.sock, for DOCKER_HOST. */
  host: string;
  /** Stops the engine (SIGTERM: it stops its containers first) and starts it again on the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A Docker engine of the bench's own, as .ci/run starts one: no bridge, no iptables rules, no
 * forwarding (containers use host networking), its data in a temporary folder; with the images
 * the docker driver runs (`npm run images`).
 */
export async function startPrivateDockerd(): Promise<PrivateDockerd> {
  const dir = await mkdtemp(join(tmpdir(), 'hookline-bench-docker-'));
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    const log = openSync(join(dir, 'log'), 'a');
    const args = ['--bridge=none', '--iptables=false', '--ip-forward=false', '--data-root', join(dir, 'data')];
    args.push('--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'), '-H', host);
    child = spawn('dockerd', args, { stdio: ['ignore', log, log] });
    closeSync(log);
    const docker = new Docker({ socketPath: socket });
    const deadline = Date.now() + 120_000;
    while (
      !(await docker.ping().then(
        () => true,
        () => false,
      ))
    ) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`dockerd did not start:\n${readFileSync(join(dir, 'log'), 'utf8').slice(-2000)}`);
      await sleep(200);
    }
  };
  const halt = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const killer = setTimeout(() => child?.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(killer);
  };
  await start();
  await run('npm', ['run', '-s', 'images'], { env: { ...process.env, DOCKER_HOST: host }, maxBuffer: 1 << 24 });
  return {
    host,
    async restart() {
      await halt();
      await start();
    },
    async stop() {
      await halt();
      // dockerd leaves its network namespace mounted in its exec root.
      const mounts = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((line) => line.split(' ')[1] ?? '')
        .filter((path) => path.startsWith(dir))
        .sort()
        .reverse();
      for (const path of mounts) await run('umount', ['-l', path]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
