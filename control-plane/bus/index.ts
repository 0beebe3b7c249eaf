import { declareEntry } from '../../protocol/fleet.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { MemoryBus } from './memory.js';
import { RabbitBus } from './rabbitmq.js';
import type { EventBus } from './types.js';

/** RabbitMQ when AMQP_URL is set, else the in-process bus; events wait out a database that does not answer `ping`. */
export async function createBus(config: Config, logger: Logger, ping: () => Promise<void>): Promise<EventBus> {
  const retry = { maxAttempts: config.BUS_MAX_ATTEMPTS, baseDelayMs: 200 };
  if (!config.AMQP_URL) return new MemoryBus(logger, retry);
  const namespace = config.BUS_NAMESPACE;
  return RabbitBus.connect(config.AMQP_URL, logger, {
    namespace,
    retry,
    dependency: ping,
    // The relay sends executions to the flows' entry (runners/entry.ts).
    declare: (channel) => declareEntry(channel, namespace),
  });
}
