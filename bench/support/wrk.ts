import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A 225-byte JSON order, the body every system gets. */
export const ORDER = JSON.stringify({
  order: 'ord_2026_000042',
  customer: { id: 'cus_19f2', email: 'ann@example.com', country: 'DE' },
  lines: [
    { sku: 'bolt-m6', qty: 40, price: 0.12 },
    { sku: 'nut-m6', qty: 40, price: 0.05 },
  ],
  total: 6.8,
  note: 'deliver before noon',
});

/**
 * The order of the k-th paced call: the same bytes with the order number made of k, so that a
 * system that answers no execution id (n8n) can be matched call by call from its recorded data.
 */
export const numberedOrder = (k: number) => ORDER.replace('ord_2026_000042', orderNumber(k));
export const orderNumber = (k: number) => `ord_9999_${String(k).padStart(6, '0')}`;

export interface WrkResult {
  requests: number;
  /** Answers that were not 2xx (wrk's "Non-2xx or 3xx responses"), and socket errors. */
  failed: number;
  seconds: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

/** wrk's duration units: 1.23ms, 45.6us, 1.2s. */
function ms(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : match[2] === 'm' ? value * 60_000 : value;
}

/** POSTs ORDER to `url` for `seconds` with wrk (`-t threads -c connections --latency`); an answer may take 10 s (wrk's default, 2 s, counts a slow system's answers as errors). */
export async function wrk(url: string, options: { seconds: number; connections: number; threads: number }): Promise<WrkResult> {
  const script = join(tmpdir(), `hookline-wrk-${process.pid}.lua`);
  await writeFile(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(ORDER)}\nwrk.headers["content-type"] = "application/json"\n`);
  const { stdout } = await run(
    'wrk',
    [`-t${options.threads}`, `-c${options.connections}`, `-d${options.seconds}s`, '--timeout', '10s', '--latency', '-s', script, url],
    { maxBuffer: 1 << 20 },
  ).catch((error: NodeJS.ErrnoException & { stdout?: string }) => {
    if (error.code === 'ENOENT') throw new Error('wrk is not installed: apt-get install -y wrk');
    throw error;
  });
  const requests = Number(/(\d+) requests in ([\d.]+)(\w+)/.exec(stdout)?.[1] ?? Number.NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  const percentile = (p: string) => ms(new RegExp(`\\s${p}%\\s+(\\S+)`).exec(stdout)?.[1] ?? '');
  return {
    requests: requests - non2xx,
    failed: non2xx + errors,
    seconds: options.seconds,
    latencyP50Ms: percentile('50'),
    latencyP99Ms: percentile('99'),
  };
}
