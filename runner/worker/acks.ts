import type { Channel, Message } from 'amqplib';

type Settled = 'no' | 'acked' | 'nacked';

/**
 * Acknowledges a consumer's deliveries together: the acks settled in one turn of the event loop
 * go out as one `basic.ack` with `multiple` up to the last delivery before which every one is
 * settled. So the broker settles a run of inputs at once instead of one frame and one quorum-log
 * entry each. A nack goes at once, alone (it concerns one delivery); a delivery settled out of
 * order waits for those before it. `flush` sends what may go before the channel closes.
 */
export class AckCoalescer {
  /** Deliveries in the order the broker handed them out (increasing tags), and whether each is settled. */
  private readonly held: { message: Message; settled: Settled }[] = [];
  private scheduled = false;

  constructor(private readonly channel: Channel) {}

  /** A new delivery, and how to settle it. */
  hold(message: Message): { ack: () => void; nack: (requeue: boolean) => void } {
    const entry = { message, settled: 'no' as Settled };
    this.held.push(entry);
    return {
      ack: () => {
        entry.settled = 'acked';
        this.schedule();
      },
      nack: (requeue) => {
        // Gone from the broker's unacknowledged once nacked: it no longer holds back the acks after it.
        entry.settled = 'nacked';
        this.channel.nack(message, false, requeue);
        this.schedule();
      },
    };
  }

  flush(): void {
    let last: Message | undefined;
    while (this.held.length > 0 && this.held[0]!.settled !== 'no') {
      const entry = this.held.shift()!;
      if (entry.settled === 'acked') last = entry.message;
    }
    if (last) this.channel.ack(last, true);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }
}
