import { OpenAPIHono } from '@hono/zod-openapi';
import { swaggerUI } from '@hono/swagger-ui';
import { DELIVERY_LIMITS } from '../protocol/edge.js';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { auditRoutes } from './audit/routes.js';
import { componentRoutes } from './components/routes.js';
import { executionRoutes } from './executions/routes.js';
import { EDGE_INGEST_PATH, edgeRoutes } from './edge/routes.js';
import { flowRoutes } from './flows/routes.js';
import { healthRoutes } from './health/routes.js';
import type { AppEnv } from './http/auth.js';
import { errorBody, errorHandler, validationHook } from './http/errors.js';
import { hasNoBody, refuseUnstorableInput } from './http/input.js';
import { iamRoutes } from './iam/routes.js';
import { domainRoutes } from './metadata/routes.js';
import { runnerRoutes } from './runners/routes.js';
import { authClientRoutes, oauthCallbackRoutes } from './secrets/auth-clients.routes.js';
import { secretRoutes } from './secrets/routes.js';
import type { Services } from './services.js';

const RUNNER_ROUTINE = /^\/runners\/[^/]+\/(heartbeat|deployments|logs)$/;

/** The control plane's HTTP API: one hono app, each module mounting its routes. */
export function createApp(services: Services) {
  const { logger, config } = services;
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.use('*', requestId());
  app.use('*', async (c, next) => {
    c.set('services', services);
    const started = performance.now();
    await next();
    // Runners call these every few seconds: logged only when they fail, or at debug level.
    const routine = c.res.status < 400 && RUNNER_ROUTINE.test(c.req.path);
    logger[routine ? 'debug' : 'info'](
      {
        requestId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      'request',
    );
  });
  const limit = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: (c) => c.json(errorBody({ message: `Request body is larger than ${maxSize} bytes`, code: 'payload_too_large' }), 413),
    });
  const apiLimit = limit(config.BODY_LIMIT_BYTES);
  // The edge's deliveries have a limit of their own: the one the edge cuts its batches by (protocol/edge.ts).
  const deliveryLimit = limit(DELIVERY_LIMITS.bytes);
  // A GET or HEAD has no body to limit; asking for one would build the whole Request of every read.
  app.use('*', (c, next) => (hasNoBody(c.req.method) ? next() : (c.req.path === EDGE_INGEST_PATH ? deliveryLimit : apiLimit)(c, next)));
  app.use('*', refuseUnstorableInput());
  app.onError(errorHandler(logger));
  app.notFound((c) => c.json(errorBody({ message: `No route for ${c.req.method} ${c.req.path}`, code: 'not_found' }), 404));

  app.route('/', healthRoutes());
  app.route('/', iamRoutes());
  app.route('/flows', flowRoutes());
  app.route('/logs', auditRoutes());
  app.route('/components', componentRoutes());
  app.route('/executions', executionRoutes());
  app.route('/runners', runnerRoutes());
  app.route('/api/v1/domains', domainRoutes());
  app.route('/api/v1/secrets', secretRoutes());
  app.route('/api/v1/edge', edgeRoutes());
  app.route('/api/v1/auth-clients', authClientRoutes());
  app.route('/', oauthCallbackRoutes());

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT or hlk_ service token',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Hookline control plane',
      version: '0.1.0',
      description: 'Flows, IAM and the audit log. Errors are `{ errors: [{ message, code }] }`.',
    },
  });
  app.get('/docs', swaggerUI({ url: '/openapi.json', title: 'Hookline API' }));
  return app;
}
