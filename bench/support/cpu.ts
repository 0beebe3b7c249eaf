import { readdir, readFile } from 'node:fs/promises';

/** Linux's clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every architecture Node runs on here). */
const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat after the command name (which is in parentheses and may hold spaces); none once it is gone. */
async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ') : [];
}

/** CPU time `pid` has used so far (user + system: the 12th and 13th of those fields), ms; 0 once it is gone. */
export async function cpuMs(pid: number): Promise<number> {
  const fields = await statFields(pid);
  return ((Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 1000) / TICKS_PER_SECOND;
}

/** The pids of the processes whose command line includes `part` (children of `parent` only, when given). */
export async function processesMatching(part: string, parent?: number): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid) => {
      if (pid === process.pid || !(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes(part)) return false;
      return parent === undefined || Number((await statFields(pid))[1]) === parent;
    }),
  );
  return pids.filter((_, i) => found[i]);
}

/** Measures the CPU time a group of processes uses between `start()` and `stop()`, ms. */
export class CpuMeter {
  private began = new Map<number, number>();

  constructor(private readonly pids: () => Promise<number[]>) {}

  async start(): Promise<void> {
    const pids = await this.pids();
    this.began = new Map(await Promise.all(pids.map(async (pid) => [pid, await cpuMs(pid)] as const)));
  }

  async stop(): Promise<number> {
    const used = await Promise.all([...this.began].map(async ([pid, at]) => (await cpuMs(pid)) - at));
    return used.reduce((sum, ms) => sum + ms, 0);
  }
}
