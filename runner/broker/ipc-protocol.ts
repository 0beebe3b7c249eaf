/**
 * What a process worker and the runner's in-process broker (memory.ts) say to each other over the
 * fork channel: the few broker operations a step worker uses (worker/ipc-transport.ts).
 */
export type WorkerToBroker =
  | { t: 'consume'; prefetch: number }
  | { t: 'cancel' }
  | { t: 'ack'; tag: number }
  | { t: 'nack'; tag: number; requeue: boolean }
  | {
      t: 'publish';
      id: number;
      to: 'step' | 'retry' | 'event';
      routingKey: string;
      body: string;
      messageId: string;
      headers: Record<string, unknown>;
    };

export type BrokerToWorker =
  | { t: 'deliver'; tag: number; body: string; messageId?: string; headers: Record<string, unknown>; deliveryCount: number }
  | { t: 'confirm'; id: number; error?: string };
