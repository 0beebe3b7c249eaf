import type { Config } from './config.js';
import type { EventBus } from './bus/types.js';
import type { OutboxRelay } from './bus/relay.js';
import type { Database, DatabaseHandle } from './db/index.js';
import type { SigningKey } from './iam/keys.js';
import type { TokenService } from './iam/tokens.js';
import type { Logger } from './logger.js';
import type { OutboundFetch } from './outbound.js';
import type { DesiredStateNotifier } from './runners/notifier.js';
import type { KeyRing } from './secrets/keys.js';

/** Everything a module needs, built once at start (main.ts) and passed down. */
export interface Services {
  config: Config;
  database: DatabaseHandle;
  db: Database;
  bus: EventBus;
  relay: OutboxRelay;
  logger: Logger;
  signingKey: SigningKey;
  tokens: TokenService;
  keys: KeyRing;
  /** Wakes runners' long polls when their desired state changed. */
  notifier: DesiredStateNotifier;
  /** The fleet's placement loop (runners/placement.ts): `kick` runs a pass soon. */
  placement: { kick(): void };
  /** fetch for calls made on a tenant's behalf: private networks only where OUTBOUND_ALLOWED_NETWORKS allows. */
  outbound: OutboundFetch;
}

/** Runs `work` in one transaction and wakes the outbox relay once it committed. */
export async function transact<T>(services: Services, work: (tx: Database) => Promise<T>): Promise<T> {
  const result = await services.db.transaction(work);
  services.relay.kick();
  return result;
}
