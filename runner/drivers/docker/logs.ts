import { StringDecoder } from 'node:string_decoder';
import { stampKey } from './time.js';

export type LogStream = 'stdout' | 'stderr';

/**
 * Docker's multiplexed log stream as lines: frames of [stream, 0, 0, 0, size (4 bytes, big
 * endian)] + payload, a frame may end inside a line or a UTF-8 character, and a chunk inside a frame.
 */
export class LogDemuxer {
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly partial = { stdout: '', stderr: '' };
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(private readonly onLine: (stream: LogStream, line: string) => void) {}

  write(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const stream = this.pending[0] === 2 ? 'stderr' : 'stdout';
      this.text(stream, this.decoders[stream].write(this.pending.subarray(8, 8 + size)));
      this.pending = this.pending.subarray(8 + size);
    }
  }

  /** The stream ended: what is left of a last line without its newline is a line too. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.partial[stream] + this.decoders[stream].end();
      if (rest) this.onLine(stream, rest);
    }
  }

  private text(stream: LogStream, chunk: string): void {
    this.partial[stream] += chunk;
    let at: number;
    while ((at = this.partial[stream].indexOf('\n')) >= 0) {
      this.onLine(stream, this.partial[stream].slice(0, at).replace(/\r$/, ''));
      this.partial[stream] = this.partial[stream].slice(at + 1);
    }
  }
}

/** Reads a Docker log stream to its end (or its error), line by line. */
export function readLog(stream: NodeJS.ReadableStream, onLine: (stream: LogStream, line: string) => void): Promise<void> {
  const demuxer = new LogDemuxer(onLine);
  return new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => demuxer.write(chunk));
    const end = () => {
      demuxer.end();
      resolve();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  });
}

/** A line of a log read with `timestamps`: its Docker time (and that time's sort key), and its text; no key when it has no time. */
export function splitStamp(raw: string): { stamp: string; key: string; line: string } {
  const space = raw.indexOf(' ');
  const stamp = space > 0 ? raw.slice(0, space) : '';
  const key = stampKey(stamp);
  return key ? { stamp, key, line: raw.slice(space + 1) } : { stamp: '', key: '', line: raw };
}
