/**
 * The configuration (`fields`) each built-in function takes, as zod schemas: the functions parse
 * their fields with them (runner/components/), and builtins.ts turns them into the JSON Schema the
 * component repository shows.
 */
import { z } from 'zod';

/** A JSONata expression, as a field holds it (compiled when the function runs). */
const expression = (description: string) => z.string().trim().min(1).max(100_000).describe(`JSONata: ${description}`);

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const receiveFields = z.strictObject({
  output: z
    .enum(['body', 'request'])
    .default('body')
    .describe(
      'body: emit the request body (a GET webhook: its query) as the data; request: emit { body, method, query, url, pathSuffix, headers }',
    ),
});

export const requestFields = z
  .strictObject({
    method: z.enum(HTTP_METHODS).default('GET').describe('The HTTP method, in capitals'),
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .max(8000)
      .optional()
      .describe('Where to send the request'),
    urlExpression: expression('the URL, from the input (used instead of url)').optional(),
    query: z
      .record(z.string(), z.union([scalar, z.array(scalar)]))
      .optional()
      .describe('Query parameters added to the URL (an array repeats the parameter)'),
    queryExpression: expression('an object of query parameters, merged over query').optional(),
    headers: z.record(z.string().min(1), z.string()).optional().describe('Request headers'),
    headersExpression: expression('an object of headers, merged over headers').optional(),
    body: z.unknown().optional().describe('The request body, sent as bodyFormat says'),
    bodyExpression: expression('the request body, from the input (used instead of body)').optional(),
    bodyFormat: z
      .enum(['json', 'form', 'text'])
      .default('json')
      .describe(
        'json: JSON (application/json); form: an object as application/x-www-form-urlencoded; text: the body as a string (text/plain). A content-type header overrides the type',
      ),
    timeoutSeconds: z.number().min(0.1).max(3600).default(30).describe('One try may take this long; a timeout is retried (rebound)'),
    failOnHttpError: z
      .boolean()
      .default(true)
      .describe(
        'false: a 4xx answer (other than 429) is emitted like any other instead of failing the input; 429 and 5xx are retried either way',
      ),
  })
  .superRefine((fields, ctx) => {
    if (!fields.url === !fields.urlExpression)
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'give exactly one of url and urlExpression' });
    if (fields.body !== undefined && fields.bodyExpression)
      ctx.addIssue({ code: 'custom', path: ['body'], message: 'give at most one of body and bodyExpression' });
    const hasBody = fields.body !== undefined || fields.bodyExpression;
    if (hasBody && (fields.method === 'GET' || fields.method === 'HEAD'))
      ctx.addIssue({ code: 'custom', path: ['method'], message: `a ${fields.method} request has no body: use POST, PUT or PATCH` });
  });

export const mapFields = z.strictObject({
  expression: expression('what to emit, from the input data; bindings $headers, $passthrough, $metadata, $attachments, $message'),
  split: z
    .boolean()
    .default(false)
    .describe('true: an array result emits each element as an output of its own (an empty array emits nothing)'),
});

export const filterFields = z.strictObject({
  condition: expression('true (in JSONata’s sense, like $boolean) passes the input data on, false drops it'),
});

export const recordFields = z.strictObject({
  label: z.string().trim().min(1).max(200).optional().describe('Names the log line, to tell several debug steps apart'),
});

export type RequestFields = z.output<typeof requestFields>;
