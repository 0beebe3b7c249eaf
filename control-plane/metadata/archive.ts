import { Gunzip, unzipSync } from 'fflate';
import { extract } from 'tar-stream';
import { ApiError, badRequest } from '../http/errors.js';

export const ARCHIVE_TYPES = {
  'application/zip': 'zip',
  'application/x-zip-compressed': 'zip',
  'application/gzip': 'tar.gz',
  'application/x-gzip': 'tar.gz',
  'application/x-tar+gzip': 'tar.gz',
  'application/x-tar': 'tar',
} as const;
export type ArchiveType = (typeof ARCHIVE_TYPES)[keyof typeof ARCHIVE_TYPES];

/** A bomb guard: what an archive may unpack to, whatever its compressed size. */
export const MAX_UNPACKED_BYTES = 20 * 1024 * 1024;
export const MAX_FILES = 1000;

export interface ArchiveFile {
  path: string;
  bytes: Uint8Array;
}

const tooBig = () => badRequest(`The archive unpacks to more than ${MAX_UNPACKED_BYTES} bytes`);

const normalize = (path: string) => path.replace(/^(\.\/)+/, '');

const hidden = (segment: string) => (segment.startsWith('.') && segment !== '.' && segment !== '..') || segment === '__MACOSX';

/** Only `*.json` files count; folders, other files and hidden ones (`.DS_Store`, `__MACOSX/`) are skipped. `..` is not hidden: the import refuses it. */
const wanted = (path: string) => path.endsWith('.json') && !normalize(path).split('/').some(hidden);

function unzip(body: Uint8Array): ArchiveFile[] {
  let total = 0;
  const files = unzipSync(body, {
    filter: (file) => {
      if (!wanted(file.name)) return false;
      total += file.originalSize;
      if (total > MAX_UNPACKED_BYTES) throw tooBig();
      return true;
    },
  });
  return Object.entries(files).map(([path, bytes]) => ({ path, bytes }));
}

function gunzip(body: Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const stream = new Gunzip((chunk) => {
    total += chunk.length;
    if (total > MAX_UNPACKED_BYTES) throw tooBig();
    chunks.push(chunk);
  });
  stream.push(body, true);
  return Buffer.concat(chunks);
}

async function untar(body: Uint8Array): Promise<ArchiveFile[]> {
  const files: ArchiveFile[] = [];
  const entries = extract();
  entries.end(body);
  for await (const entry of entries) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (entry.header.type === 'file' && wanted(entry.header.name)) files.push({ path: entry.header.name, bytes: Buffer.concat(chunks) });
  }
  return files;
}

/** The `*.json` files of a zip, tar or tar.gz archive, with paths relative to its root; a broken archive is a 400. */
export async function unpack(body: Uint8Array, type: ArchiveType): Promise<ArchiveFile[]> {
  let files: ArchiveFile[];
  try {
    files = type === 'zip' ? unzip(body) : await untar(type === 'tar' ? body : gunzip(body));
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw badRequest(`The body is not a valid ${type} archive: ${(error as Error).message}`);
  }
  if (files.length === 0) throw badRequest('The archive holds no .json files');
  if (files.length > MAX_FILES) throw badRequest(`The archive holds more than ${MAX_FILES} .json files`);
  return files.map((file) => ({ ...file, path: normalize(file.path) }));
}
