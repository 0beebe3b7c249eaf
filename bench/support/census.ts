import { readFile } from 'node:fs/promises';
import { connect } from 'amqplib';
import { CONTROL_PLANE_SERVICES } from '../../test/support/rabbitmq.js';
import { flowTopology } from '../../protocol/fleet.js';
import { FLOW } from './hookline.js';
import type { Stack } from './stack.js';

/** One look at a running stack: each process's memory, each queue's depth, the outbox's. */
export interface Census {
  at: number;
  /** By process: RSS and (Node) V8 heap used, bytes. A runner's step workers are one entry. */
  memory: Map<string, { rss: number; heapUsed?: number }>;
  /** Messages ready in each queue that exists. */
  queues: Map<string, number>;
  outbox: number;
}

async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Every process below `pid` (from /proc/<pid>/task/<tid>/children). */
async function descendants(pid: number): Promise<number[]> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean).map(Number);
  const below = await Promise.all(children.map(descendants));
  return [...children, ...below.flat()];
}

/** The queues a stack's control plane and its flow declare; retry levels that do not exist are skipped. */
function queueNames(stack: Stack): string[] {
  const flow = flowTopology(stack.namespace, stack.flowId);
  return [
    ...CONTROL_PLANE_SERVICES.flatMap((service) => [`${stack.namespace}.${service}`, `${stack.namespace}.${service}.dead-letter`]),
    ...FLOW.graph.nodes.map((node) => flow.stepQueue(node.id)),
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((level) => flow.retryQueue(level)),
  ];
}

export async function census(stack: Stack, amqpUrl: string): Promise<Census> {
  const memory = new Map<string, { rss: number; heapUsed?: number }>();
  for (const part of [stack.controlPlane, stack.edge, ...stack.runners]) {
    memory.set(part.name, await part.memory());
    const pid = part.pid();
    if (part.name.startsWith('runner') && pid) {
      const workers = await descendants(pid);
      const total = (await Promise.all(workers.map(rss))).reduce((sum, n) => sum + n, 0);
      memory.set(`${part.name} step workers (${workers.length})`, { rss: total });
    }
  }
  const queues = new Map<string, number>();
  const connection = await connect(amqpUrl);
  try {
    for (const name of queueNames(stack)) {
      // A check of a queue that does not exist closes its channel: one channel per check.
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      const found = await channel.checkQueue(name).catch(() => undefined);
      if (found) {
        queues.set(name, found.messageCount);
        await channel.close();
      }
    }
  } finally {
    await connection.close();
  }
  const outbox = Number((await stack.db.query('select count(*)::int as n from outbox')).rows[0].n);
  return { at: Date.now(), memory, queues, outbox };
}
