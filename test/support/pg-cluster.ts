import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

const run = promisify(execFile);

export interface PostgresCluster {
  url: string;
  /** `pg_ctl restart -m fast`: every connection is terminated, then the server is back. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The newest PostgreSQL server binaries installed (Debian's /usr/lib/postgresql/<version>/bin). */
async function serverBin(): Promise<string> {
  const versions = (await readdir('/usr/lib/postgresql')).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error('no PostgreSQL server is installed (/usr/lib/postgresql)');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

/**
 * A PostgreSQL server of a test's own, on a free port, to restart and stop at will: initdb (as the
 * postgres user, which initdb needs when the tests run as root), trust auth, its socket and data in
 * a temporary folder that `stop` removes.
 */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = await serverBin();
  const dir = await mkdtemp(join(tmpdir(), 'hookline-pg-'));
  await chmod(dir, 0o777);
  const port = await freePort();
  const asPostgres = async (command: string) => {
    if (process.getuid?.() === 0) await run('su', ['postgres', '-c', command]);
    else await run('sh', ['-c', command]);
  };
  const ctl = (action: string) =>
    asPostgres(`${bin}/pg_ctl -D ${dir}/data -o "-p ${port} -k ${dir} -c listen_addresses=127.0.0.1" -l ${dir}/log -w ${action}`);
  await asPostgres(`${bin}/initdb -D ${dir}/data -U postgres --auth=trust >/dev/null`);
  await ctl('start');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: () => ctl('-m fast restart'),
    async stop() {
      await ctl('-m fast stop').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
