import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { componentCreateSchema } from '../../protocol/component.js';
import * as debug from '../../runner/components/debug.js';
import { compile } from '../../runner/components/expressions.js';
import * as filter from '../../runner/components/filter.js';
import * as http from '../../runner/components/http.js';
import { BUILTIN_COMPONENTS } from '../../protocol/builtins.js';
import { loadBuiltinModule } from '../../runner/components/index.js';
import * as jsonata from '../../runner/components/jsonata.js';
import * as webhook from '../../runner/components/webhook.js';
import { Rebound } from '../../runner/sdk.js';
import { message, run } from './step-context.js';

describe('built-in component definitions', () => {
  it('are valid components, each function exported by its module, nothing else exported', async () => {
    expect(BUILTIN_COMPONENTS.map((c) => c.name)).toEqual(['webhook', 'http', 'jsonata', 'filter', 'debug']);
    for (const { id: _, ...definition } of BUILTIN_COMPONENTS) {
      // Their module is a hookline: name, which only the platform writes: the rest is what a client could write.
      expect(componentCreateSchema.safeParse({ ...definition, module: undefined, access: 'public' }).success, definition.name).toBe(true);
      expect(definition.module).toBe(`hookline:${definition.name}`);
      expect(definition.image).toMatch(/^hookline\/step-worker:/);
      const loaded = await loadBuiltinModule(definition.module);
      expect(Object.keys(loaded).sort(), definition.name).toEqual(definition.functions.map((f) => f.name).sort());
      for (const fn of definition.functions) {
        expect(typeof loaded[fn.name]).toBe('function');
        expect(fn.fields).toMatchObject({ type: 'object', additionalProperties: false });
      }
    }
    expect(new Set(BUILTIN_COMPONENTS.map((c) => c.id)).size).toBe(BUILTIN_COMPONENTS.length);
  });

  it('load by bare name too, and refuse an unknown built-in naming the known ones', async () => {
    expect(await loadBuiltinModule('http')).toBe(await loadBuiltinModule('hookline:http'));
    await expect(loadBuiltinModule('hookline:nope')).rejects.toThrow(
      'No built-in component "nope": the built-ins are webhook, http, jsonata, filter, debug',
    );
    await expect(loadBuiltinModule('toString')).rejects.toThrow(/No built-in component "toString"/);
  });

  it('describe their fields as JSON Schema, defaults included', () => {
    const request = BUILTIN_COMPONENTS.find((c) => c.name === 'http')!.functions[0]!;
    expect(request).toMatchObject({ name: 'request', kind: 'action' });
    expect(request.fields).toMatchObject({
      properties: {
        method: { default: 'GET', enum: expect.arrayContaining(['GET', 'POST']) },
        timeoutSeconds: { default: 30 },
        failOnHttpError: { default: true },
        urlExpression: { type: 'string' },
      },
    });
    expect(BUILTIN_COMPONENTS.find((c) => c.name === 'webhook')!.functions[0]).toMatchObject({ name: 'receive', kind: 'trigger' });
  });
});

describe('webhook.receive', () => {
  const input = message({
    data: { order: 7 },
    headers: { 'content-type': 'application/json', 'x-shop': 'a' },
    method: 'POST',
    query: { q: '1' },
    url: '/hook/f/orders',
    pathSuffix: 'orders',
  });

  it('emits the request body as the data, with the request headers', async () => {
    const { outputs } = await run(webhook.receive, input);
    expect(outputs).toEqual([{ data: { order: 7 }, extras: { headers: { 'content-type': 'application/json', 'x-shop': 'a' } } }]);
  });

  it('emits the whole request with output: request', async () => {
    const { outputs } = await run(webhook.receive, input, { output: 'request' });
    expect(outputs[0]!.data).toEqual({
      body: { order: 7 },
      method: 'POST',
      query: { q: '1' },
      url: '/hook/f/orders',
      pathSuffix: 'orders',
      headers: input.headers,
    });
  });

  it('passes a schedule’s message on too', async () => {
    const data = { scheduledAt: '2026-01-01T00:00:00.000Z', nextAt: null, firedAt: '2026-01-01T00:00:01.000Z' };
    const { outputs } = await run(
      webhook.receive,
      message({ data, metadata: { source: { name: 'schedule', type: 'schedule', externalExecId: 'x' } } }),
    );
    expect(outputs).toEqual([{ data, extras: { headers: {} } }]);
  });

  it('refuses bad fields, naming them', async () => {
    await expect(run(webhook.receive, input, { output: 'all' })).rejects.toThrow(/^webhook\.receive: fields\.output: /);
    await expect(run(webhook.receive, input, { outptu: 'body' })).rejects.toThrow('webhook.receive: fields: unknown field "outptu"');
  });
});

describe('jsonata.map', () => {
  const input = message({
    data: {
      items: [
        { sku: 'a', qty: 2 },
        { sku: 'b', qty: 0 },
      ],
      customer: 'ann',
    },
    headers: { 'x-shop': 's1' },
    passthrough: { first: { id: 9 } },
  });

  it('emits the expression’s result over the input data', async () => {
    const { outputs } = await run(jsonata.map, input, { expression: '{ "who": customer, "total": $sum(items.qty) }' });
    expect(outputs).toEqual([{ data: { who: 'ann', total: 2 }, extras: undefined }]);
  });

  it('binds $headers, $passthrough, $metadata, $attachments and $message', async () => {
    const withMeta = {
      ...input,
      metadata: { source: { name: 'webhook', type: 'webhook' as const, externalExecId: 'req-1' } },
      attachments: { file: { url: 'https://x/y' } },
    };
    const { outputs } = await run(jsonata.map, withMeta, {
      expression:
        '{ "shop": $headers."x-shop", "first": $passthrough.first.id, "req": $metadata.source.externalExecId, "file": $attachments.file.url, "id": $message.id }',
    });
    expect(outputs[0]!.data).toEqual({ shop: 's1', first: 9, req: 'req-1', file: 'https://x/y', id: input.id });
  });

  it('emits nothing for no result', async () => {
    expect((await run(jsonata.map, input, { expression: 'nothing.here' })).outputs).toEqual([]);
  });

  it('emits each element of an array result with split, an empty array as nothing, a non-array as one', async () => {
    expect((await run(jsonata.map, input, { expression: 'items', split: true })).outputs.map((o) => o.data)).toEqual([
      { sku: 'a', qty: 2 },
      { sku: 'b', qty: 0 },
    ]);
    expect((await run(jsonata.map, input, { expression: 'items', split: false })).outputs.map((o) => o.data)).toEqual([
      [
        { sku: 'a', qty: 2 },
        { sku: 'b', qty: 0 },
      ],
    ]);
    expect((await run(jsonata.map, input, { expression: '[]', split: true })).outputs).toEqual([]);
    expect((await run(jsonata.map, input, { expression: 'customer', split: true })).outputs.map((o) => o.data)).toEqual(['ann']);
  });

  it('gives plain JSON: sequences as arrays, functions left out', async () => {
    const { outputs } = await run(jsonata.map, input, { expression: '{ "skus": items.sku, "f": function($x) { $x } }' });
    expect(outputs[0]!.data).toEqual({ skus: ['a', 'b'] });
    expect(Object.keys(outputs[0]!.data as object)).toEqual(['skus']);
    await expect(run(jsonata.map, input, { expression: 'function($x) { $x }' })).rejects.toThrow(
      'fields.expression: the expression gives a function, not data',
    );
  });

  it('throws a syntax error with JSONata’s message and position', async () => {
    await expect(run(jsonata.map, input, { expression: '{ "a": customer' })).rejects.toThrow(
      /^fields\.expression: .+ \(JSONata S0\d{3}, at position \d+/,
    );
    await expect(run(jsonata.map, input, { expression: 'items[' })).rejects.toThrow(/JSONata S0\d{3}, at position 6/);
  });

  it('throws an evaluation error with JSONata’s message and position', async () => {
    const error = await run(jsonata.map, input, { expression: 'customer + 1' }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /^fields\.expression: The left side of the "\+" operator must evaluate to a number \(JSONata T2001, at position 10, near "\+"\)$/,
    );
    await expect(run(jsonata.map, input, { expression: '$number("abc")' })).rejects.toThrow(/JSONata D3030/);
  });

  it('compiles each distinct expression once', () => {
    const text = `$ ~> | $ | { "n": ${Math.random()} } |`;
    expect(compile(text, 'expression')).toBe(compile(text, 'expression'));
  });

  it('refuses bad fields, naming them', async () => {
    await expect(run(jsonata.map, input, {})).rejects.toThrow(/^jsonata\.map: fields\.expression: /);
    await expect(run(jsonata.map, input, { expression: '$', split: 'yes' })).rejects.toThrow(/fields\.split: /);
    await expect(run(jsonata.map, input, { expression: '' })).rejects.toThrow(/fields\.expression: /);
  });
});

describe('filter.filter', () => {
  const input = message({ data: { total: 120, tags: [] }, headers: { 'x-shop': 's1' }, attachments: { a: { url: 'u' } } });

  it('passes the data on unchanged, with its headers and attachments, when the condition is true', async () => {
    const { outputs } = await run(filter.filter, input, { condition: 'total > 100' });
    expect(outputs).toEqual([{ data: input.data, extras: { headers: input.headers, attachments: input.attachments } }]);
  });

  it('drops the input when the condition is false, or false as JSONata’s $boolean sees it', async () => {
    for (const condition of ['total > 200', 'tags', '""', '0', 'missing', 'null', '{}']) {
      expect((await run(filter.filter, input, { condition })).outputs, condition).toEqual([]);
    }
    for (const condition of ['"yes"', '[0, 1]', '{"a": 1}', '$exists(total)']) {
      expect((await run(filter.filter, input, { condition })).outputs, condition).toHaveLength(1);
    }
  });

  it('throws JSONata errors and refuses bad fields', async () => {
    await expect(run(filter.filter, input, { condition: 'total >' })).rejects.toThrow(/^fields\.condition: .*JSONata S0\d{3}/);
    await expect(run(filter.filter, input, {})).rejects.toThrow(/^filter\.filter: fields\.condition: /);
    await expect(run(filter.filter, input, { condition: 'true', expression: 'x' })).rejects.toThrow(
      'filter.filter: fields: unknown field "expression"',
    );
  });
});

describe('debug.record', () => {
  it('passes its input on unchanged and logs it', async () => {
    const input = message({ data: { seen: true }, headers: { h: '1' } });
    const { outputs, logs } = await run(debug.record, input, { label: 'after map' });
    expect(outputs).toEqual([{ data: { seen: true }, extras: { headers: { h: '1' }, attachments: {} } }]);
    expect(logs).toEqual([
      { level: 'info', message: 'debug: after map', details: { messageId: input.id, data: { seen: true }, headers: ['h'] } },
    ]);
  });

  it('logs a large input by its start, and passes it whole', async () => {
    const data = { text: 'x'.repeat(20_000) };
    const { outputs, logs } = await run(debug.record, message({ data }));
    expect(outputs[0]!.data).toBe(data);
    expect(logs[0]!.details!.data).toMatchObject({ truncated: true });
  });

  it('refuses bad fields', async () => {
    await expect(run(debug.record, message({ data: 1 }), { label: 3 })).rejects.toThrow(/^debug\.record: fields\.label: /);
  });
});

describe('http.request', () => {
  let server: Server;
  let base: string;
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, body: string) => void> = {
    '/echo': (req, res, body) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-server': 'test' });
      res.end(JSON.stringify({ method: req.method, url: req.url, body }));
    },
    '/text': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello');
    },
    '/bad-json': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{not json');
    },
    '/binary': (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(Buffer.from([0, 1, 2, 255]));
    },
    '/empty': (_req, res) => {
      res.writeHead(204);
      res.end();
    },
    '/busy': (_req, res) => {
      res.writeHead(503, { 'retry-after': '120', 'content-type': 'text/plain' });
      res.end('down for maintenance');
    },
    '/limited': (_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end('{"error":"slow down"}');
    },
    '/broken': (_req, res) => {
      res.writeHead(500);
      res.end('oops');
    },
    '/missing': (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'no such order', detail: 'x'.repeat(1000) }));
    },
    '/slow': () => {
      // Never answers: the request's own timeout ends it.
    },
    '/huge': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(Buffer.alloc(10 * 1024 * 1024 + 1, 'a'));
    },
    '/redirect': (req, res) => {
      const query = new URL(req.url!, 'http://x').searchParams;
      res.writeHead(Number(query.get('status') ?? 302), { location: query.get('to')! });
      res.end();
    },
    '/loop': (_req, res) => {
      res.writeHead(302, { location: '/loop' });
      res.end();
    },
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const route = routes[`/${new URL(req.url!, 'http://x').pathname.split('/')[1]}`];
        if (route) route(req, res, body);
        else {
          res.writeHead(404);
          res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  /** The request the server saw last. */
  const last = () => seen.at(-1)!;
  const input = message({
    data: { orderId: 42, email: 'ann@example.com', lines: [{ sku: 'a' }] },
    passthrough: { first: { token: 't-1' } },
  });
  /** Runs the step as a runner that allows the test server's address (OUTBOUND_ALLOWED_NETWORKS=127.0.0.1/32). */
  const call = (fields: Record<string, unknown>, options: Parameters<typeof run>[3] = {}) =>
    run(http.request, input, fields, { allowedNetworks: ['127.0.0.1/32'], ...options });

  it('sends a GET with query and headers, and emits { status, headers, body } with JSON parsed', async () => {
    const { outputs } = await call({
      url: `${base}/echo?keep=1`,
      query: { page: 2, tag: ['a', 'b'], on: true },
      headers: { 'x-custom': 'yes' },
    });
    expect(outputs).toHaveLength(1);
    const out = outputs[0]!.data as { status: number; headers: Record<string, string>; body: unknown };
    expect(out.status).toBe(200);
    expect(out.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8', 'x-server': 'test' });
    expect(out.body).toEqual({ method: 'GET', url: '/echo?keep=1&page=2&tag=a&tag=b&on=true', body: '' });
    expect(last().headers['x-custom']).toBe('yes');
    expect(last().headers.authorization).toBeUndefined();
  });

  it('builds url, query, headers and body from the input with the …Expression fields', async () => {
    const { outputs } = await call({
      method: 'POST',
      urlExpression: `"${base}/echo/" & $string(orderId)`,
      query: { fixed: 'x' },
      queryExpression: '{ "email": email, "fixed": "y", "none": null }',
      headers: { 'x-a': '1' },
      headersExpression: '{ "x-token": $passthrough.first.token, "x-id": $message.id }',
      bodyExpression: '{ "order": orderId, "skus": [lines.sku] }',
    });
    expect(outputs).toHaveLength(1);
    expect(last()).toMatchObject({ method: 'POST', url: '/echo/42?fixed=y&email=ann%40example.com' });
    expect(last().headers).toMatchObject({ 'x-a': '1', 'x-token': 't-1', 'x-id': input.id, 'content-type': 'application/json' });
    expect(JSON.parse(last().body)).toEqual({ order: 42, skus: ['a'] });
  });

  it('sends form and text bodies, and a content-type header of the fields overrides the type', async () => {
    await call({ method: 'POST', url: `${base}/echo`, bodyFormat: 'form', body: { a: 1, b: ['x', 'y'], c: null } });
    expect(last()).toMatchObject({ body: 'a=1&b=x&b=y', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    await call({ method: 'PUT', url: `${base}/echo`, bodyFormat: 'text', bodyExpression: '"order " & orderId' });
    expect(last()).toMatchObject({ method: 'PUT', body: 'order 42', headers: { 'content-type': 'text/plain;charset=utf-8' } });
    await call({ method: 'PATCH', url: `${base}/echo`, body: { a: 1 }, headers: { 'Content-Type': 'application/merge-patch+json' } });
    expect(last()).toMatchObject({ body: '{"a":1}', headers: { 'content-type': 'application/merge-patch+json' } });
    await expect(call({ method: 'POST', url: `${base}/echo`, bodyFormat: 'form', body: [1] })).rejects.toThrow(
      'fields.body: a form body must be an object of fields',
    );
  });

  describe('authentication from the step’s credential', () => {
    it('OAUTH2: Authorization: Bearer <accessToken>', async () => {
      await call({ url: `${base}/echo` }, { credentials: { accessToken: 'at-1', tokenType: 'bearer', refreshToken: 'rt' } });
      expect(last().headers.authorization).toBe('Bearer at-1');
    });

    it('API_KEY: the key in its headerName, x-api-key by default; it wins over a header of the fields', async () => {
      await call({ url: `${base}/echo` }, { credentials: { key: 'k-1' } });
      expect(last().headers['x-api-key']).toBe('k-1');
      await call({ url: `${base}/echo`, headers: { 'X-Key': 'from fields' } }, { credentials: { key: 'k-2', headerName: 'X-Key' } });
      expect(last().headers['x-key']).toBe('k-2');
      expect(last().headers['x-api-key']).toBeUndefined();
    });

    it('SIMPLE: Basic', async () => {
      await call({ url: `${base}/echo` }, { credentials: { username: 'ann', passphrase: 'pä:ss' } });
      expect(last().headers.authorization).toBe(`Basic ${Buffer.from('ann:pä:ss').toString('base64')}`);
    });

    it('MIXED: refused, saying why', async () => {
      await expect(call({ url: `${base}/echo` }, { credentials: { payload: { a: 1 } } })).rejects.toThrow(
        /not an OAUTH2, API_KEY or SIMPLE secret/,
      );
    });
  });

  describe('answers', () => {
    it('text as text, JSON that does not parse as text, binary as base64, no body as null', async () => {
      expect((await call({ url: `${base}/text` })).outputs[0]!.data).toMatchObject({ status: 200, body: 'hello' });
      expect((await call({ url: `${base}/bad-json` })).outputs[0]!.data).toMatchObject({ body: '{not json' });
      expect((await call({ url: `${base}/binary` })).outputs[0]!.data).toMatchObject({ body: 'AAEC/w==', bodyEncoding: 'base64' });
      expect((await call({ method: 'DELETE', url: `${base}/empty` })).outputs[0]!.data).toMatchObject({ status: 204, body: null });
      expect((await call({ method: 'HEAD', url: `${base}/text` })).outputs[0]!.data).toMatchObject({ status: 200, body: null });
    });

    it('503 and 429 rebound, quoting Retry-After', async () => {
      const busy = await call({ url: `${base}/busy?secret=1` }).catch((e: unknown) => e);
      expect(busy).toBeInstanceOf(Rebound);
      expect((busy as Rebound).message).toBe(`GET ${base}/busy answered 503 Service Unavailable (Retry-After: 120)`);
      const limited = await call({ method: 'POST', url: `${base}/limited`, body: {} }).catch((e: unknown) => e);
      expect(limited).toBeInstanceOf(Rebound);
      expect((limited as Rebound).message).toMatch(/answered 429/);
    });

    it('5xx rebounds even with failOnHttpError: false', async () => {
      await expect(call({ url: `${base}/broken`, failOnHttpError: false })).rejects.toBeInstanceOf(Rebound);
    });

    it('a timeout rebounds', async () => {
      const error = await call({ url: `${base}/slow`, timeoutSeconds: 0.2 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Rebound);
      expect((error as Rebound).message).toBe(`GET ${base}/slow: no answer within 0.2 s`);
    });

    it('a network error rebounds', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const error = await call({ url: `http://127.0.0.1:${port}/x` }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Rebound);
      expect((error as Rebound).message).toMatch(/the request failed \(ECONNREFUSED\)/);
    });

    it('the step’s own abort (its timeout) is not a rebound', async () => {
      const controller = new AbortController();
      const running = call({ url: `${base}/slow` }, { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('step timed out')), 50);
      const error = await running.catch((e: unknown) => e);
      expect(error).not.toBeInstanceOf(Rebound);
      expect((error as Error).message).toBe('step timed out');
    });

    it('another 4xx fails with its status and the start of its body, or is emitted with failOnHttpError: false', async () => {
      const error = await call({ url: `${base}/missing` }).catch((e: unknown) => e);
      expect(error).not.toBeInstanceOf(Rebound);
      expect((error as Error).message).toMatch(
        new RegExp(`^GET ${base}/missing answered 404 Not Found: \\{"error":"no such order","detail":"x+…$`),
      );
      expect((error as Error).message.length).toBeLessThan(700);
      const { outputs } = await call({ url: `${base}/missing`, failOnHttpError: false });
      expect(outputs[0]!.data).toMatchObject({ status: 404, body: { error: 'no such order' } });
    });

    it('a body over 10 MiB fails the input', async () => {
      await expect(call({ url: `${base}/huge` })).rejects.toThrow(/the response body is larger than 10485760 bytes/);
    });
  });

  describe('outbound calls', () => {
    const port = () => new URL(base).port;
    const refused = async (run: Promise<unknown>, pattern: RegExp) => {
      const before = seen.length;
      const error = await run.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(Rebound);
      expect((error as Error).message).toMatch(pattern);
      expect((error as Error).message).toMatch(/is a private address .*OUTBOUND_ALLOWED_NETWORKS|redirects/);
      return seen.length - before;
    };

    it('refuses loopback by address without OUTBOUND_ALLOWED_NETWORKS, failing the input (no retry)', async () => {
      const reached = await refused(
        run(http.request, input, { url: `${base}/echo` }),
        /^GET http:\/\/127\.0\.0\.1:\d+\/echo: 127\.0\.0\.1 is a private address \(loopback\); outbound calls reach private networks only where the operator allows them \(OUTBOUND_ALLOWED_NETWORKS\)$/,
      );
      expect(reached).toBe(0);
      expect(
        await refused(
          run(http.request, input, { url: `http://[::ffff:127.0.0.1]:${port()}/echo` }),
          /::ffff:7f00:1 is a private address \(loopback\)/,
        ),
      ).toBe(0);
      expect(await refused(run(http.request, input, { url: `http://0x7f.1:${port()}/echo` }), /127\.0\.0\.1 is a private address/)).toBe(0);
    });

    it('refuses a name that resolves to loopback, after DNS', async () => {
      const reached = await refused(
        run(http.request, input, { url: `http://localhost:${port()}/echo` }),
        /^GET http:\/\/localhost:\d+\/echo: localhost resolves to (127\.0\.0\.1|::1), which is a private address \(loopback\)/,
      );
      expect(reached).toBe(0);
    });

    it('refuses link-local addresses, the cloud metadata service among them, even with loopback allowed', async () => {
      await refused(
        call({ url: 'http://169.254.169.254/latest/meta-data/', timeoutSeconds: 1 }),
        /169\.254\.169\.254 is a private address \(link-local\)/,
      );
      await refused(call({ url: 'http://[fe80::1]/', timeoutSeconds: 1 }), /fe80::1 is a private address \(link-local\)/);
    });

    it('checks every redirect: from the allowed 127.0.0.1 to 127.0.0.2 or [::1] is refused', async () => {
      for (const to of [`http://127.0.0.2:${port()}/echo`, `http://[::1]:${port()}/echo`]) {
        const reached = await refused(
          call({ url: `${base}/redirect?to=${encodeURIComponent(to)}` }),
          /redirected to http:\/\/(127\.0\.0\.2|\[::1\]):\d+\/echo: (127\.0\.0\.2|::1) is a private address \(loopback\)/,
        );
        expect(reached).toBe(1);
      }
    });

    it('follows redirects itself: a 303 after a POST is a GET without body, at most 5 hops', async () => {
      const { outputs } = await call({ method: 'POST', url: `${base}/redirect?status=303&to=/echo/after`, body: { a: 1 } });
      expect(outputs[0]!.data).toMatchObject({ status: 200, body: { method: 'GET', url: '/echo/after', body: '' } });
      expect(last().headers['content-type']).toBeUndefined();
      await call({ method: 'PUT', url: `${base}/redirect?status=307&to=/echo/kept`, body: { a: 1 } });
      expect(last()).toMatchObject({ method: 'PUT', url: '/echo/kept', body: '{"a":1}' });
      const before = seen.length;
      await refused(call({ url: `${base}/loop` }), /^GET http:\/\/127\.0\.0\.1:\d+\/loop: more than 5 redirects$/);
      expect(seen.length - before).toBe(6);
    });

    it('keeps the credential with its origin: a redirect elsewhere drops its header', async () => {
      const credentials = { key: 'k-secret', headerName: 'x-shop-key' };
      await call({ url: `${base}/redirect?to=/echo/same` }, { credentials });
      expect(last()).toMatchObject({ url: '/echo/same', headers: { 'x-shop-key': 'k-secret' } });
      await call(
        { url: `${base}/redirect?to=${encodeURIComponent(`http://localhost:${port()}/echo/other`)}` },
        { credentials: { accessToken: 'at-1' } },
      );
      expect(last().url).toBe('/echo/other');
      expect(last().headers.authorization).toBeUndefined();
      await call({ url: `${base}/redirect?to=${encodeURIComponent(`http://localhost:${port()}/echo/other`)}` }, { credentials });
      expect(last().url).toBe('/echo/other');
      expect(last().headers['x-shop-key']).toBeUndefined();
    });
  });

  it('refuses bad fields, naming them', async () => {
    const bad = async (fields: Record<string, unknown>, pattern: RegExp) => expect(call(fields)).rejects.toThrow(pattern);
    await bad({}, /^http\.request: fields\.url: give exactly one of url and urlExpression$/);
    await bad({ url: `${base}/echo`, urlExpression: '"x"' }, /fields\.url: give exactly one of url and urlExpression/);
    await bad({ url: 'ftp://example.com/x' }, /fields\.url: must be an http:\/\/ or https:\/\/ URL/);
    await bad({ url: `${base}/echo`, method: 'get' }, /fields\.method: /);
    await bad({ url: `${base}/echo`, body: { a: 1 } }, /fields\.method: a GET request has no body/);
    await bad({ url: `${base}/echo`, timeoutSeconds: 0 }, /fields\.timeoutSeconds: /);
    await bad({ url: `${base}/echo`, headers: { a: 1 } }, /fields\.headers\.a: /);
    await bad({ url: `${base}/echo`, methd: 'POST' }, /fields: unknown field "methd"/);
    await bad({ urlExpression: 'orderId' }, /^fields\.urlExpression: gives 42, not an http:\/\/ or https:\/\/ URL$/);
    await bad(
      { url: `${base}/echo`, headersExpression: '{ "x": { "nested": 1 } }' },
      /fields\.headersExpression: header "x" must be a string/,
    );
    await bad(
      { url: `${base}/echo`, headersExpression: '{ "bad name": "v" }' },
      /fields\.headersExpression: header "bad name" has a name or value HTTP does not allow/,
    );
    await bad({ url: `${base}/echo`, queryExpression: '"q"' }, /fields\.queryExpression: must give an object/);
    await bad({ url: `${base}/echo`, method: 'POST', bodyExpression: 'orderId +' }, /^fields\.bodyExpression: .*JSONata S0\d{3}/);
  });
});
