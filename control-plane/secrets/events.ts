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
      const handled = await handleOnce(services, SERVICE_NAME, event, (tx) => forgetUser(tx, payload.tenant, payload.id));
      if (handled.fresh) services.logger.info({ userId: payload.id, ...handled.result }, 'secrets of a deleted user removed or re-owned');
    }),
  });
}
