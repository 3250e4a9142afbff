import path from 'node:path';
import fs from 'node:fs';
import readline from 'node:readline';
import { JSONParser, Tokenizer, TokenType } from '@streamparser/json';
import { InvalidInputError } from '../types/errors.js';

/**
 * Files of PDUs, in the shapes homeservers and their tools write them, read as a stream (a file larger than
 * memory works: memory is bounded by one PDU, not by the file):
 *
 * - `json-lines`: one PDU per line (what `matrix-storage generate` writes);
 * - `json-array`: one JSON array of PDUs;
 * - `transaction`: a federation transaction body, `{"origin": ..., "pdus": [...], "edus": [...]}`;
 * - `concatenated`: JSON objects one after another, pretty-printed or not (some servers' export commands).
 *
 * The format is detected from the file's beginning. JSON lines are parsed a line at a time with JSON.parse (the
 * fast path, and the one whose errors can name a line); the others with a streaming parser (@streamparser/json).
 */
export type PDUFileFormat = 'json-lines' | 'json-array' | 'transaction' | 'concatenated';

export const PDU_FILE_FORMATS: readonly PDUFileFormat[] = ['json-lines', 'json-array', 'transaction', 'concatenated'];

/** One PDU read from a file: the parsed value, its text where the format keeps it, and where it stands. */
export interface PDUEntry {
  readonly value: unknown;
  /** The PDU's own text (JSON lines only): stored as given. */
  readonly text?: string;
  /** "line 12" (JSON lines) or "PDU 12" (the other formats), for messages. */
  readonly where: string;
}

/** How much of the file has been read, for progress reports. */
export interface ReadProgress {
  readonly bytesRead: number;
  readonly totalBytes: number;
}

const PEEK_BYTES = 1 << 20;

function notFound(file: string, e: unknown): never {
  const code = (e as NodeJS.ErrnoException).code;
  throw new InvalidInputError(code === 'ENOENT'
    ? `no such file: ${path.resolve(file)}. Fix: correct the path (relative paths start from ${process.cwd()}), or write a sample room with \`matrix-storage generate --out ${file}\``
    : code === 'EISDIR' ? `${file} is a directory, not a file of PDUs` : `cannot read ${file}: ${code ?? (e as Error).message}`);
}

/** The format of a file of PDUs, from its first megabyte. InvalidInputError if it holds no JSON objects at all. */
export async function detectPDUFileFormat(file: string): Promise<PDUFileFormat> {
  let head: string;
  try {
    const fd = await fs.promises.open(file, 'r');
    try {
      const buffer = Buffer.alloc(PEEK_BYTES);
      const { bytesRead } = await fd.read(buffer, 0, PEEK_BYTES, 0);
      head = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fd.close();
    }
  } catch (e) {
    notFound(file, e);
  }
  const start = head.search(/[^\s\uFEFF]/);
  if (start < 0) return 'json-lines'; // empty: nothing to read, in any format
  if (head[start] === '[') return 'json-array';
  if (head[start] !== '{') {
    throw new InvalidInputError(`${file} does not hold JSON objects (it starts with ${JSON.stringify(head.slice(start, start + 20))}): ` +
      'import takes PDUs as JSON lines, a JSON array, a federation transaction ({"pdus": [...]}) or JSON objects one after another');
  }
  const lineEnd = head.indexOf('\n', start);
  if (lineEnd > 0) {
    try {
      const first = JSON.parse(head.slice(start, lineEnd)) as unknown;
      return isTransaction(first) ? 'transaction' : 'json-lines';
    } catch {
      // Not complete on its own line: pretty-printed.
    }
  }
  return hasPDUsKey(head.slice(start)) ? 'transaction' : 'concatenated';
}

const isTransaction = (v: unknown) => typeof v === 'object' && v !== null && Array.isArray((v as { pdus?: unknown }).pdus);

/** Whether the first object of the text has a key "pdus" whose value is an array (tokens only, nothing built). */
function hasPDUsKey(text: string): boolean {
  const tokenizer = new Tokenizer();
  let depth = 0;
  let lastKey: string | undefined;
  let expectKey = false;
  let found: boolean | undefined;
  tokenizer.onToken = ({ token, value }) => {
    if (found !== undefined) return;
    switch (token) {
      case TokenType.LEFT_BRACE:
        if (depth === 1 && lastKey === 'pdus') { found = false; return; }
        depth++;
        expectKey = true;
        break;
      case TokenType.LEFT_BRACKET:
        if (depth === 1 && lastKey === 'pdus') { found = true; return; }
        depth++;
        break;
      case TokenType.RIGHT_BRACE:
      case TokenType.RIGHT_BRACKET:
        depth--;
        if (depth === 0) found = false;
        break;
      case TokenType.COMMA:
        if (depth === 1) expectKey = true;
        break;
      case TokenType.STRING:
        if (depth === 1 && expectKey) { lastKey = value as string; expectKey = false; }
        break;
      default:
        break;
    }
  };
  tokenizer.onError = () => { found ??= false; };
  try {
    tokenizer.write(text);
  } catch {
    // The prefix ends mid-token: what it told so far stands.
  }
  return found === true;
}

/**
 * The PDUs of a file, in file order, as a stream. `format` is detected when not given. Invalid JSON is an
 * InvalidInputError naming where it is (the line, or the PDU after the last good one).
 */
export async function* readPDUFile(file: string, options: { format?: PDUFileFormat; onProgress?: (p: ReadProgress) => void } = {}): AsyncGenerator<PDUEntry> {
  const format = options.format ?? await detectPDUFileFormat(file);
  let totalBytes: number;
  try {
    totalBytes = (await fs.promises.stat(file)).size;
  } catch (e) {
    notFound(file, e);
  }
  const stream = fs.createReadStream(file);
  const progress = () => options.onProgress?.({ bytesRead: stream.bytesRead, totalBytes });
  try {
    if (format === 'json-lines') {
      const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
      let n = 0;
      for await (const line of lines) {
        n++;
        const text = n === 1 ? line.replace(/^\uFEFF/, '') : line;
        if (text.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (e) {
          throw new InvalidInputError(`line ${n}: not valid JSON: ${(e as Error).message}`);
        }
        progress();
        yield { value, text, where: `line ${n}` };
      }
      return;
    }
    const paths = format === 'json-array' ? ['$.*'] : format === 'transaction' ? ['$.pdus.*'] : ['$'];
    const parser = new JSONParser({ paths, keepStack: false, ...(format === 'concatenated' ? { separator: '' } : {}) });
    const queue: unknown[] = [];
    let count = 0;
    let failure: Error | undefined;
    parser.onValue = ({ value }) => { queue.push(value); };
    parser.onError = (e) => { failure ??= e; };
    const fail = (): never => {
      throw new InvalidInputError(`PDU ${count + 1}: not valid JSON: ${failure!.message}`);
    };
    for await (const chunk of stream) {
      parser.write(chunk as Buffer);
      progress();
      while (queue.length > 0) yield { value: queue.shift(), where: `PDU ${++count}` };
      if (failure) fail();
    }
    if (!parser.isEnded) parser.end();
    while (queue.length > 0) yield { value: queue.shift(), where: `PDU ${++count}` };
    if (failure) fail();
  } finally {
    stream.destroy();
  }
}
