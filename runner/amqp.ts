import { once } from 'node:events';
import type { ConfirmChannel, Options } from 'amqplib';

/** Quorum queues: replicated in a cluster, durable, and they count redeliveries (x-delivery-count). */
export const QUORUM = { 'x-queue-type': 'quorum' } as const;

/**
 * Publishes a persistent message and resolves when the broker confirmed it. When the channel's
 * write buffer is full, waits for it to drain first, so a fast producer cannot grow memory without bound.
 */
export async function confirmedPublish(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: string,
  options: Options.Publish,
): Promise<void> {
  let written = true;
  const confirmed = new Promise<void>((resolve, reject) => {
    written = channel.publish(
      exchange,
      routingKey,
      Buffer.from(body),
      { persistent: true, contentType: 'application/json', ...options },
      (error) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()),
    );
  });
  if (!written) await once(channel, 'drain');
  return confirmed;
}
