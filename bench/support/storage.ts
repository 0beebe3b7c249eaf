import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';

const TMPFS_MAGIC = 0x01021994;

/**
 * Where local workerd keeps the Durable Objects' storage in a bench (Miniflare: under the temporary
 * folder), said with the run's figures: each call's write is a SQLite commit, so on a disk the
 * rate of fsync bounds the edge (TMPDIR=/dev/shm runs the same on memory, to see the code's cost alone).
 */
export async function durableStorage(): Promise<string> {
  const folder = tmpdir();
  const { type } = await statfs(folder);
  return type === TMPFS_MAGIC
    ? `Durable Object storage in ${folder}, on tmpfs: its commits' fsync costs nothing`
    : `Durable Object storage in ${folder}, on disk: every commit waits for fsync (TMPDIR=/dev/shm to take the disk out)`;
}
