/**
 * `http`: one HTTP request per input, authenticated with the step's credential, built from fields
 * and, where the request depends on the input, JSONata expressions evaluated against it.
 */
import { outboundRefusal } from '../../protocol/outbound.js';
import type { StepContext, StepFunction, StepMessage } from '../sdk.js';
import { evaluate, toJson } from './expressions.js';
import { requestFields, type RequestFields } from '../../protocol/builtin-fields.js';
import { readFields } from './read-fields.js';

/** A response body larger than this is not read (an output may not be larger either). */
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
/** How much of an error response's body its error message quotes. */
const ERROR_BODY_CHARS = 500;

type Scalar = string | number | boolean;
const isScalar = (value: unknown): value is Scalar => typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The result of `<field>Expression` when given (`undefined` when not given), as plain JSON. */
async function fromExpression(fields: RequestFields, field: 'url' | 'query' | 'headers' | 'body', message: StepMessage): Promise<unknown> {
  const source = fields[`${field}Expression`];
  return source === undefined ? undefined : toJson(await evaluate(source, message, `${field}Expression`), `${field}Expression`);
}

async function buildUrl(fields: RequestFields, message: StepMessage): Promise<URL> {
  let url: URL;
  if (fields.urlExpression) {
    const value = await fromExpression(fields, 'url', message);
    const parsed = typeof value === 'string' && URL.canParse(value) ? new URL(value) : null;
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new Error(`fields.urlExpression: gives ${JSON.stringify(value) ?? 'nothing'}, not an http:// or https:// URL`);
    }
    url = parsed;
  } else {
    url = new URL(fields.url!);
  }
  const extra = await fromExpression(fields, 'query', message);
  if (extra !== undefined && extra !== null && !isRecord(extra))
    throw new Error('fields.queryExpression: must give an object of query parameters');
  for (const [name, value] of Object.entries({ ...fields.query, ...(extra as Record<string, unknown> | undefined) })) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item === null || item === undefined) continue;
      if (!isScalar(item))
        throw new Error(`fields.queryExpression: query parameter "${name}" must be a string, number or boolean (or an array of them)`);
      url.searchParams.append(name, String(item));
    }
  }
  return url;
}

async function buildHeaders(fields: RequestFields, message: StepMessage): Promise<Headers> {
  const headers = new Headers();
  const set = (field: string, name: string, value: string) => {
    try {
      headers.set(name, value);
    } catch {
      throw new Error(`fields.${field}: header ${JSON.stringify(name)} has a name or value HTTP does not allow`);
    }
  };
  for (const [name, value] of Object.entries(fields.headers ?? {})) set('headers', name, value);
  const extra = await fromExpression(fields, 'headers', message);
  if (extra !== undefined && extra !== null && !isRecord(extra))
    throw new Error('fields.headersExpression: must give an object of headers');
  for (const [name, value] of Object.entries(extra ?? {})) {
    if (value === null || value === undefined) continue;
    if (!isScalar(value)) throw new Error(`fields.headersExpression: header "${name}" must be a string, number or boolean`);
    set('headersExpression', name, String(value));
  }
  return headers;
}

/** The request body and its content type, or nothing when there is no body. */
async function buildBody(fields: RequestFields, message: StepMessage): Promise<{ body: string; type: string } | null> {
  const field = fields.bodyExpression ? 'bodyExpression' : 'body';
  const body = fields.bodyExpression ? await fromExpression(fields, 'body', message) : fields.body;
  if (body === undefined) return null;
  switch (fields.bodyFormat) {
    case 'json':
      return { body: JSON.stringify(body), type: 'application/json' };
    case 'text':
      return { body: typeof body === 'string' ? body : JSON.stringify(body), type: 'text/plain;charset=utf-8' };
    case 'form': {
      if (!isRecord(body)) throw new Error(`fields.${field}: a form body must be an object of fields`);
      const form = new URLSearchParams();
      for (const [name, value] of Object.entries(body)) {
        for (const item of Array.isArray(value) ? value : [value]) {
          if (item === null || item === undefined) continue;
          if (!isScalar(item))
            throw new Error(`fields.${field}: form field "${name}" must be a string, number or boolean (or an array of them)`);
          form.append(name, String(item));
        }
      }
      return { body: form.toString(), type: 'application/x-www-form-urlencoded' };
    }
  }
}

/**
 * The header the step's credential adds, by the shape of its value: OAUTH2 `{ accessToken,
 * tokenType? }` → `Authorization: Bearer <accessToken>`; API_KEY `{ key, headerName? }` → the key,
 * as it is, in `headerName` (x-api-key by default, as for the secret); SIMPLE `{ username,
 * passphrase }` → `Authorization: Basic ...`. Null without a credential.
 */
function credentialHeader(secret: Record<string, unknown> | null): [string, string] | null {
  if (!secret) return null;
  if (typeof secret.accessToken === 'string') {
    const type =
      typeof secret.tokenType === 'string' && secret.tokenType && !/^bearer$/i.test(secret.tokenType) ? secret.tokenType : 'Bearer';
    return ['authorization', `${type} ${secret.accessToken}`];
  }
  if (typeof secret.key === 'string')
    return [typeof secret.headerName === 'string' && secret.headerName ? secret.headerName : 'x-api-key', secret.key];
  if (typeof secret.username === 'string' && typeof secret.passphrase === 'string') {
    return ['authorization', `Basic ${Buffer.from(`${secret.username}:${secret.passphrase}`, 'utf8').toString('base64')}`];
  }
  throw new Error(
    'http.request: the step’s credential is not an OAUTH2, API_KEY or SIMPLE secret (a MIXED secret says nothing of how to authenticate a request)',
  );
}

/** A response too large to read: it fails the input (a retry would get the same). */
class TooLarge extends Error {}

/** Reads at most MAX_RESPONSE_BYTES of the body. */
async function readBody(response: Response, target: string): Promise<Uint8Array> {
  const tooLarge = () => new TooLarge(`${target}: the response body is larger than ${MAX_RESPONSE_BYTES} bytes`);
  if (Number(response.headers.get('content-length') ?? NaN) > MAX_RESPONSE_BYTES) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!response.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const isJsonType = (type: string) => type === 'application/json' || type.endsWith('+json');
const isTextType = (type: string) =>
  type === '' ||
  type.startsWith('text/') ||
  type.endsWith('+xml') ||
  ['application/xml', 'application/javascript', 'application/x-www-form-urlencoded'].includes(type);

/** JSON bodies parsed (left as text when they do not parse), text as text, anything else as base64. */
function decodeBody(bytes: Uint8Array, contentType: string | null): { body: unknown; bodyEncoding?: 'base64' } {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (bytes.byteLength === 0) return { body: null };
  if (!isJsonType(type) && !isTextType(type)) return { body: Buffer.from(bytes).toString('base64'), bodyEncoding: 'base64' };
  const text = new TextDecoder().decode(bytes);
  if (!isJsonType(type)) return { body: text };
  try {
    return { body: JSON.parse(text) };
  } catch {
    return { body: text };
  }
}

/** Why a fetch failed without an answer, as undici tells it (the cause holds the code: ECONNREFUSED, ENOTFOUND...). */
function networkProblem(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  const detail = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
  return `the request failed (${detail})`;
}

/**
 * Sends the request and emits `{ status, headers, body }` (JSON bodies parsed; a binary body as
 * base64, with `bodyEncoding: 'base64'`). 429, 5xx, network errors and timeouts rebound (the
 * platform retries with backoff; a Retry-After is quoted in the reason); another 4xx fails the
 * input with its status and the start of its body, unless `failOnHttpError` is false. It goes
 * through `context.fetch`: a private address fails the input, and a credential stays with its origin.
 */
export const request: StepFunction = async (message, rawFields, context: StepContext) => {
  const fields = readFields(requestFields, rawFields, 'http.request');
  const url = await buildUrl(fields, message);
  const headers = await buildHeaders(fields, message);
  const body = await buildBody(fields, message);
  if (body && !headers.has('content-type')) headers.set('content-type', body.type);
  const auth = credentialHeader(await context.credentials());
  if (auth) headers.set(auth[0], auth[1]);

  const target = `${fields.method} ${url.origin}${url.pathname}`;
  const timeout = AbortSignal.timeout(Math.round(fields.timeoutSeconds * 1000));
  const signal = AbortSignal.any([context.signal, timeout]);
  // A failure with no answer: the step's own abort (timeout, stopping) is the platform's to handle; the rest is retried.
  const unanswered = (error: unknown): never => {
    if (context.signal.aborted) throw context.signal.reason ?? error;
    if (timeout.aborted) return context.rebound(`${target}: no answer within ${fields.timeoutSeconds} s`);
    return context.rebound(`${target}: ${networkProblem(error)}`);
  };

  const started = Date.now();
  let response: Response;
  let bytes: Uint8Array;
  try {
    response = await context.fetch(url, {
      method: fields.method,
      headers,
      body: body?.body,
      signal,
      credentialHeaders: auth ? [auth[0]] : [],
    });
  } catch (error) {
    // A private address (or a redirect loop) stays refused however often it is tried.
    const refused = outboundRefusal(error);
    if (refused) throw new Error(`${target}: ${refused.message}`);
    return unanswered(error);
  }
  try {
    bytes = fields.method === 'HEAD' ? new Uint8Array() : await readBody(response, target);
  } catch (error) {
    if (error instanceof TooLarge) throw error;
    return unanswered(error);
  }
  context.log.debug(`http: ${target} answered ${response.status}`, { status: response.status, ms: Date.now() - started });

  const { status } = response;
  if (status === 429 || status >= 500) {
    const retryAfter = response.headers.get('retry-after');
    context.rebound(
      `${target} answered ${status}${response.statusText ? ` ${response.statusText}` : ''}${retryAfter ? ` (Retry-After: ${retryAfter})` : ''}`,
    );
  }
  const decoded = decodeBody(bytes, response.headers.get('content-type'));
  if (status >= 400 && fields.failOnHttpError) {
    const text =
      decoded.body === null
        ? ''
        : decoded.bodyEncoding
          ? `(${bytes.byteLength} bytes of ${response.headers.get('content-type')})`
          : typeof decoded.body === 'string'
            ? decoded.body
            : JSON.stringify(decoded.body);
    const start = text.length > ERROR_BODY_CHARS ? `${text.slice(0, ERROR_BODY_CHARS)}…` : text;
    throw new Error(`${target} answered ${status}${response.statusText ? ` ${response.statusText}` : ''}${start ? `: ${start}` : ''}`);
  }
  return { status, headers: Object.fromEntries(response.headers), ...decoded };
};
