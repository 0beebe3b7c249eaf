import { on } from '../bus/handler.js';
import { handleOnce } from '../bus/inbox.js';
import type { Services } from '../services.js';
import { forgetUser, SERVICE_NAME } from './service.js';

/**
 * Follows IAM: a deleted user's own secrets are deleted, shared ones re-owned. (A deleted tenant's
 * secrets, auth clients and data key go with it through the foreign keys.)
 */
export async function subscribeSecrets(services: Services) {
  await services.bus.subscribe(SERVICE_NAME, {
    'iam.user.deleted': on('iam.user.deleted', async (payload, event) => {
      let outcome: Awaited<ReturnType<typeof forgetUser>> | undefined;
      await handleOnce(services.db, SERVICE_NAME, event, async (tx) => {
        outcome = await forgetUser(tx, payload.tenant, payload.id);
      });
      services.relay.kick();
      if (outcome) services.logger.info({ userId: payload.id, ...outcome }, 'secrets of a deleted user removed or re-owned');
    }),
  });
}
