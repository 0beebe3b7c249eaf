import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Below the kernel's ephemeral range, which outgoing connections take their local ports from: a
 * port found free there stays free until the server that asked for it binds it (a port from
 * `listen(0)` was once taken in between by a client's connection, and RabbitMQ failed to start).
 */
const RANGE = (() => {
  const ephemeral = (() => {
    try {
      return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    } catch {
      return Number.NaN;
    }
  })();
  return ephemeral > 12_000 ? { from: 10_000, to: ephemeral - 1 } : null;
})();
const given = new Set<number>();

const listens = async (port: number): Promise<number | null> => {
  const server = createServer().listen(port, '127.0.0.1');
  const outcome = await Promise.race([once(server, 'listening').then(() => true), once(server, 'error').then(() => false)]);
  if (!outcome) return null;
  const bound = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return bound;
};

/** A TCP port on 127.0.0.1 that is free now, for a server a test starts on a port it must know first. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; RANGE && attempt < 50; attempt++) {
    const port = RANGE.from + Math.floor(Math.random() * (RANGE.to - RANGE.from));
    if (given.has(port)) continue;
    if ((await listens(port)) !== null) {
      given.add(port);
      return port;
    }
  }
  return (await listens(0))!;
}
