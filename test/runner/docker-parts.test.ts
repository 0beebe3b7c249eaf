/** The docker driver's parts that need no engine: its log stream as lines, Docker's times, a worker's container, how a run ended. */
import { describe, expect, it } from 'vitest';
import { adoptionOrder } from '../../runner/drivers/docker/adopt.js';
import { exitOf, signalOf } from '../../runner/drivers/docker/exit.js';
import { LogDemuxer, splitStamp, type LogStream } from '../../runner/drivers/docker/logs.js';
import { containerName, containerSpec, keyOf, type SpecOptions } from '../../runner/drivers/docker/spec.js';
import { later, sinceOf, stampKey } from '../../runner/drivers/docker/time.js';
import { WORKER_ENV } from '../../runner/worker/config.js';
import { fakeLaunch } from '../support/docker.js';

/** One frame of Docker's multiplexed stream: [stream, 0, 0, 0, size (big endian)] + payload. */
const frame = (stream: LogStream, payload: string | Buffer) => {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = stream === 'stderr' ? 2 : 1;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
};

const demux = (chunks: Buffer[]) => {
  const lines: [LogStream, string][] = [];
  const demuxer = new LogDemuxer((stream, line) => lines.push([stream, line]));
  for (const chunk of chunks) demuxer.write(chunk);
  demuxer.end();
  return lines;
};

describe('Docker log demultiplexing', () => {
  it('splits frames into lines of their stream, a line across frames joined, \\r\\n ends a line, a last line without newline kept', () => {
    const lines = demux([frame('stdout', 'one\ntw'), frame('stderr', 'oops\r\n'), frame('stdout', 'o\nlast')]);
    expect(lines).toEqual([
      ['stdout', 'one'],
      ['stderr', 'oops'],
      ['stdout', 'two'],
      ['stdout', 'last'],
    ]);
  });

  it('reads a frame cut anywhere across chunks, its header too, and a UTF-8 character cut between frames', () => {
    const snowman = Buffer.from('☃');
    const stream = Buffer.concat([
      frame('stdout', Buffer.concat([Buffer.from('snow '), snowman.subarray(0, 1)])),
      frame('stdout', Buffer.concat([snowman.subarray(1), Buffer.from('\n')])),
    ]);
    const byteByByte = [...stream].map((byte) => Buffer.from([byte]));
    expect(demux(byteByByte)).toEqual([['stdout', 'snow ☃']]);
    expect(demux([stream.subarray(0, 3), stream.subarray(3, 11), stream.subarray(11)])).toEqual([['stdout', 'snow ☃']]);
  });

  it('splits the Docker time off a timestamped line; a line without one is all text', () => {
    expect(splitStamp('2026-12-02T16:00:00.123456789Z hello world')).toEqual({
      stamp: '2026-12-02T16:00:00.123456789Z',
      key: stampKey('2026-12-02T16:00:00.123456789Z'),
      line: 'hello world',
    });
    expect(splitStamp('no time here')).toEqual({ stamp: '', key: '', line: 'no time here' });
  });
});

describe("Docker's times", () => {
  it('gives the logs API its since as seconds.nanoseconds, offsets applied; none for the zero time or a wrong one', () => {
    expect(sinceOf('2026-12-02T16:00:00.5Z')).toBe(`${Date.UTC(2026, 11, 2, 16) / 1000}.500000000`);
    expect(sinceOf('2026-12-02T18:00:00.123456789+02:00')).toBe(`${Date.UTC(2026, 11, 2, 16) / 1000}.123456789`);
    expect(sinceOf('2026-12-02T16:00:00Z')).toBe(`${Date.UTC(2026, 11, 2, 16) / 1000}.000000000`);
    expect(sinceOf('0001-01-01T00:00:00Z')).toBeUndefined();
    expect(sinceOf('yesterday')).toBeUndefined();
    expect(sinceOf(undefined)).toBeUndefined();
  });

  it('orders times to the nanosecond, where Date would not', () => {
    const a = '2026-12-02T16:00:00.000000001Z';
    const b = '2026-12-02T16:00:00.000000002Z';
    expect(stampKey(a) < stampKey(b)).toBe(true);
    expect(stampKey('2026-12-02T16:00:09.9Z') < stampKey('2026-12-02T16:00:10Z')).toBe(true);
    expect(later(a, b)).toBe(b);
    expect(later(b, a)).toBe(b);
    expect(later(undefined, a)).toBe(a);
    expect(later(a, '0001-01-01T00:00:00Z')).toBe(a);
  });
});

describe("a worker's container", () => {
  const key = { flowId: 'flow-1', stepId: 'greet', generation: 2 };
  const options: SpecOptions = { runnerName: 'node a', engine: { init: true, podman: false }, stopGraceSeconds: 7 };

  it('is named and labelled after the runner and the worker, and the labels give the worker back', () => {
    const spec = containerSpec(fakeLaunch(key, { specHash: 'h1' }), options);
    expect(spec.name).toBe('hookline-node_a-flow-1.greet.2');
    expect(spec.name).toBe(containerName('node a', key));
    expect(spec.Labels).toEqual({
      'hookline.runner': 'node a',
      'hookline.flow': 'flow-1',
      'hookline.step': 'greet',
      'hookline.generation': '2',
      'hookline.spec': 'h1',
    });
    expect(keyOf(spec.Labels)).toEqual(key);
    expect(keyOf({ 'hookline.flow': 'flow-1' })).toBeNull();
  });

  it("has the step's limits, or the runner's defaults for a step without, sandboxed, with no secret in its configuration", () => {
    const launch = fakeLaunch(key, { memoryMb: 0, cpus: 0 });
    const spec = containerSpec(launch, { ...options, defaults: { memoryMb: 64, cpus: 2, pids: 100 }, logMaxSize: '1m', logMaxFiles: 2 });
    expect(spec.HostConfig).toMatchObject({
      Memory: 64 * 1048576,
      MemorySwap: 64 * 1048576,
      NanoCpus: 2e9,
      PidsLimit: 100,
      ReadonlyRootfs: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      RestartPolicy: { Name: 'no' },
      Init: true,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2' } },
    });
    expect(spec.StopTimeout).toBe(7);
    expect(JSON.stringify(spec)).not.toContain(launch.secrets.stepToken);
    expect(JSON.stringify(spec)).not.toContain(launch.secrets.amqpUrl);
    expect(spec.Env).toContain(`${WORKER_ENV.config}=${JSON.stringify(launch.config)}`);
    expect(containerSpec(fakeLaunch(key, { memoryMb: 96, cpus: 0.25 }), options).HostConfig).toMatchObject({
      Memory: 96 * 1048576,
      NanoCpus: 250_000_000,
      PidsLimit: 256,
    });
  });

  it('asks Podman only for limits it can give, and no init where the engine has none', () => {
    const podman = containerSpec(fakeLaunch(key), { ...options, engine: { init: false, podman: true } }).HostConfig!;
    expect(podman.Init).toBeUndefined();
    expect(podman.Ulimits).toEqual([
      { Name: 'nofile', Soft: 4096, Hard: 4096 },
      { Name: 'nproc', Soft: 4096, Hard: 4096 },
    ]);
    expect(containerSpec(fakeLaunch(key), options).HostConfig!.Ulimits).toBeUndefined();
  });

  it('of two containers of one worker, adopts the one of its own name first, then the oldest', () => {
    const labels = { 'hookline.flow': 'flow-1', 'hookline.step': 'greet', 'hookline.generation': '2' };
    const found = [
      { Id: 'copy-old', Names: ['/copy'], Labels: labels, Created: 1 },
      { Id: 'own', Names: [`/${containerName('node a', key)}`], Labels: labels, Created: 3 },
      { Id: 'copy-new', Names: ['/copy2'], Labels: labels, Created: 2 },
    ];
    expect(adoptionOrder(found, 'node a').map((c) => c.Id)).toEqual(['own', 'copy-old', 'copy-new']);
  });
});

describe('how a run ended', () => {
  it('names the signal of an exit code of 128 + n, and none for an ordinary code', () => {
    expect(signalOf(137)).toBe('SIGKILL');
    expect(signalOf(143)).toBe('SIGTERM');
    expect(signalOf(1)).toBeNull();
    expect(signalOf(null)).toBeNull();
  });

  it('says when the kernel killed it over its memory limit, or its container was removed, after the end of its output', () => {
    expect(exitOf({ code: 137, oom: true, gone: false, tail: ['a', 'b'], memoryBytes: 96 * 1048576 })).toEqual({
      code: 137,
      signal: 'SIGKILL',
      output: 'a\nb\n(killed: out of memory, over its limit of 96 MB)',
    });
    expect(exitOf({ code: 0, oom: false, gone: true, tail: [], memoryBytes: 0 })).toEqual({
      code: null,
      signal: null,
      output: '(its container was removed)',
    });
  });

  it('quotes at most the last 4000 characters of its output', () => {
    const exit = exitOf({ code: 1, oom: false, gone: false, tail: ['x'.repeat(5000), 'the end'], memoryBytes: 0 });
    expect(exit.output).toHaveLength(4000);
    expect(exit.output.endsWith('\nthe end')).toBe(true);
  });
});
