import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, startFlow, stopFlow, twoSteps } from './support.js';

/** 2^40 backtracking steps for a backtracking engine: the step would never finish. */
const evil = `${'a'.repeat(40)}!`;

/** Regexes in steps (JSONata literals, output schema patterns) run in linear time, in real step workers (process driver). */
describe('tenant regexes in steps', () => {
  let cp: TestControlPlane;
  let runner: TestRunner;
  let admin: string;

  beforeAll(async () => {
    cp = await startTestControlPlane({ env: { RUNNER_HEARTBEAT_SECONDS: '1' } });
    admin = await cp.login();
    runner = await startTestRunner(cp);
  });
  afterAll(async () => {
    await runner?.stop();
    await cp?.close();
  });

  it('runs ^(a+)+$ in $match, $contains, $replace, $split and ~> on 40 characters to a result', async () => {
    const expression = `{
      "match": $match(s, /^(a+)+$/),
      "contains": $contains(s, /^(a+)+$/),
      "replaced": $replace(s, /(a+)+b/, "x"),
      "split": $count($split(s, /(a+)+b/)),
      "chained": s ~> /^(a+)+$/,
      "found": $match(s, /(a+)+!/).groups[0] = $substring(s, 0, 40)
    }`;
    const flow = await startFlow(cp, admin, twoSteps({ componentId: 'jsonata', function: 'map', fields: { expression } }));
    const execution = await finished(cp, admin, await execute(cp, flow, { s: evil }), 60_000);
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toContainEqual(['next', { contains: false, replaced: evil, split: 1, found: true }]);
    await stopFlow(cp, admin, flow.id);
  });

  it('parses a timestamp by a picture in linear time ($toMillis builds its own regex), and still parses good ones', async () => {
    const expression = `{
      "hostile": $toMillis(words, "[Yw][Mw][Dw][Hw][mw][sw][Yw][Mw]"),
      "date": $toMillis("2024-03-05", "[Y0001]-[M01]-[D01]"),
      "iso": $toMillis("2024-03-05T10:00:00Z")
    }`;
    const flow = await startFlow(cp, admin, twoSteps({ componentId: 'jsonata', function: 'map', fields: { expression } }));
    // 40 words: with the backtracking engine (17 s at 30 words) this would not end within the test's time.
    const execution = await finished(cp, admin, await execute(cp, flow, { words: `${'one '.repeat(40)}!` }), 60_000);
    expect(execution.status, execution.reason).toBe('succeeded');
    expect(outputsOf(execution)).toContainEqual(['next', { date: Date.UTC(2024, 2, 5), iso: Date.UTC(2024, 2, 5, 10) }]);
    await stopFlow(cp, admin, flow.id);
  });

  it('fails an input whose expression has a regex RE2 cannot run, naming it; a filter too', async () => {
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'map', componentId: 'jsonata', function: 'map', fields: { expression: 'ok ? "fine" : $match(s, /(a)\\1/)' } },
          { id: 'keep', componentId: 'filter', function: 'filter', fields: { condition: '$contains(s, /^(?!b)/)' } },
        ],
        edges: [
          { source: 'receive', target: 'map' },
          { source: 'receive', target: 'keep' },
        ],
      },
    });
    const execution = await finished(cp, admin, await execute(cp, flow, { ok: true, s: 'aa' }), 60_000);
    expect(execution.status).toBe('failed');
    const messages = Object.fromEntries(
      execution.errors.map((e: { stepId: string; error: { message: string } }) => [e.stepId, e.error.message]),
    );
    expect(messages.map).toMatch(
      /^fields\.expression: pattern "\(a\)\\\\1" cannot be run in linear time: .*backreferences and lookarounds are not supported/,
    );
    expect(messages.keep).toMatch(/^fields\.condition: pattern "\^\(\?!b\)" cannot be run in linear time/);
    await stopFlow(cp, admin, flow.id);
  });

  it('checks outputs against an output schema pattern in linear time in the step worker', async () => {
    const domain = await cp.request('POST', '/api/v1/domains', { token: admin, body: { name: 'patterns' } });
    const schema = await cp.request('POST', `/api/v1/domains/${domain.body.data.id}/schemas`, {
      token: admin,
      body: { uri: 'letters.json', value: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } } },
    });
    expect(schema.status).toBe(201);
    const flow = await startFlow(
      cp,
      admin,
      twoSteps({
        componentId: 'jsonata',
        function: 'map',
        fields: { expression: '$' },
        nodeSettings: { outputSchema: { domainId: domain.body.data.id, uri: 'letters.json' } },
      }),
    );
    const good = await finished(cp, admin, await execute(cp, flow, { s: 'a'.repeat(40) }), 60_000);
    expect(good.status).toBe('succeeded');
    const bad = await finished(cp, admin, await execute(cp, flow, { s: evil }), 60_000);
    expect(bad.status).toBe('failed');
    expect(bad.errors).toEqual([
      expect.objectContaining({
        stepId: 'next',
        error: expect.objectContaining({
          message: expect.stringMatching(
            /^the output does not match the output schema .*letters\.json: \/s must match pattern "\^\(a\+\)\+\$"$/,
          ),
        }),
      }),
    ]);
    await stopFlow(cp, admin, flow.id);
  });
});
