import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { jsonProblem } from '../protocol/storable.js';
import { errorResponse } from './errors.js';

/** A rejected request: the response to send. */
export class Rejection extends Error {
  constructor(readonly response: Response) {
    super('rejected');
  }
}

const SUPPORTED = ['application/json', 'text/*', 'application/x-www-form-urlencoded', 'application/xml', 'text/xml'];

/**
 * What the Worker checks of a webhook call before its flow's Durable Object sees it, the same for
 * every flow: the method (405), a POST's content type (415) and its size (413, read with a limit).
 * Answers the body, read whole (empty for GET and HEAD), so the Durable Object gets bytes, not the
 * caller's stream: an early answer can never leave the stream half read.
 */
export async function admitHookRequest(request: Request, limit: number): Promise<Uint8Array> {
  if (request.method === 'HEAD' || request.method === 'GET') return new Uint8Array();
  if (request.method !== 'POST')
    throw new Rejection(errorResponse(405, 'Use GET, POST or HEAD', 'method_not_allowed', { allow: 'GET, POST, HEAD' }));
  checkContentType(request);
  return readLimited(request, limit);
}

/** Refuses a POST without a content type, or with one Hookline does not parse, before reading its body. */
export function checkContentType(request: Request): string {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!type) throw new Rejection(errorResponse(415, `Send a Content-Type: one of ${SUPPORTED.join(', ')}`, 'unsupported_media_type'));
  const supported =
    type === 'application/json' ||
    type.endsWith('+json') ||
    type.startsWith('text/') ||
    type === 'application/x-www-form-urlencoded' ||
    type === 'application/xml' ||
    type.endsWith('+xml');
  if (!supported)
    throw new Rejection(
      errorResponse(415, `Content-Type ${type} is not supported: send one of ${SUPPORTED.join(', ')}`, 'unsupported_media_type'),
    );
  return type;
}

/**
 * The body's bytes, refused with 413 as soon as it passes `limit`: at once from Content-Length, else
 * while streaming, so an oversized body is never kept.
 */
export async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = () => new Rejection(errorResponse(413, `The body is larger than ${limit} bytes`, 'payload_too_large'));
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > limit) throw tooLarge();
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      // The rest is left to the caller, which reads and drops it before answering (edge/worker.ts).
      reader.releaseLock();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' });

/** The body as the message's `data`: JSON, text, form fields or XML as an object; malformed is a 400. */
export function parseBody(type: string, bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new Rejection(errorResponse(400, 'The body is not valid UTF-8', 'bad_request'));
  }
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new Rejection(errorResponse(400, `The body is not valid JSON: ${(error as Error).message}`, 'bad_request'));
    }
  }
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
  if (type === 'application/xml' || type === 'text/xml' || type.endsWith('+xml')) {
    const valid = XMLValidator.validate(text);
    if (valid !== true)
      throw new Rejection(errorResponse(400, `The body is not valid XML: ${valid.err.msg} (line ${valid.err.line})`, 'bad_request'));
    return xml.parse(text);
  }
  return text;
}

/**
 * Refuses data the control plane could not store (protocol/storable.ts: a NUL character, a lone
 * surrogate, JSON nested too deep) with a 400 naming where, before it is accepted: a 202 for it
 * would be a promise nobody can keep.
 */
export function refuseUnstorable(value: unknown, where: string): void {
  const problem = jsonProblem(value, where);
  if (problem) throw new Rejection(errorResponse(400, problem, 'bad_request'));
}
