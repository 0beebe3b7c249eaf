import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs (to stdout unless `destination` is given); secrets, passwords and tokens are
 * redacted wherever they appear in a logged object, and a failed query is logged without its
 * parameters (they may be a password hash or a secret).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'control-plane' },
    redact: {
      paths: [
        'password',
        '*.password',
        'token',
        '*.token',
        'authorization',
        '*.authorization',
        'headers.authorization',
        'req.headers.authorization',
      ],
      censor: '[redacted]',
    },
    serializers: { err: (error: unknown) => stdSerializers.err(withoutQueryParameters(error) as Error) },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** drizzle's DrizzleQueryError carries the parameters in `params` and in its message and stack: keep the SQL and the cause only. */
export function withoutQueryParameters(error: unknown): unknown {
  if (!(error instanceof Error) || !('query' in error) || !('params' in error)) return error;
  const safe = new Error(`Failed query: ${String(error.query)}`, { cause: error.cause });
  safe.name = error.name;
  safe.stack = [`${safe.name}: ${safe.message}`, ...(error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line))].join('\n');
  return safe;
}
