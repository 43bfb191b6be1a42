/**
 * The CLIP byte-level BPE tokenizer, exactly as openai/CLIP `clip/simple_tokenizer.py` and
 * `clip.tokenize` (also HF's slow `CLIPTokenizer` with ftfy, and CRIS's copy with another context
 * length). Pure TypeScript for Node and browsers: the caller supplies the vocabulary bytes.
 *
 * Pipeline of `encode(text)`:
 *   1. cleanText (text-clean.ts): ftfy port, HTML-unescape twice, whitespace collapse, lower-case;
 *   2. split with PRETOKENIZE_RE (special tokens, contractions, letter runs, single digits,
 *      punctuation runs; whitespace is dropped);
 *   3. each piece: UTF-8 bytes -> "byte characters" (bytesToUnicode), `</w>` on the last one, then
 *      repeatedly merge the adjacent pair with the lowest merge rank (cached per piece);
 *   4. symbols -> ids. `<|startoftext|>`/`<|endoftext|>` typed in the text map to their ids.
 * `tokenize(texts)` then builds the [N, 77] rows of `clip.tokenize`: BOS, ids, EOS, zero padding.
 *
 * Vocabulary (built, as the original does, from the merges): ids 0..255 are the byte characters in
 * table order, 256..511 the same with `</w>`, then one id per merge, then BOS = 49406, EOS = 49407.
 */
import { gunzipSync } from 'fflate';

import { cleanText } from './text-clean.js';

/** Merges used from `bpe_simple_vocab_16e6.txt.gz`: lines 1 .. 48894 (`[1 : 49152 - 256 - 2 + 1]`). */
export const CLIP_NUM_MERGES = 49152 - 256 - 2;
export const CLIP_CONTEXT_LENGTH = 77;
export const BOS_TOKEN = '<|startoftext|>';
export const EOS_TOKEN = '<|endoftext|>';

/** The `regex` module's `\s` (Unicode White_Space; JS `\s` differs in U+0085 and U+FEFF). */
const WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** `word` matched case-insensitively as Python's IGNORECASE does (simple case folding: ſ ~ s). */
function ignoreCase(word: string): string {
  return [...word]
    .map((c) => {
      if (c === 's') return '[sS\\u017f]';
      if (/[a-z]/.test(c)) return `[${c}${c.toUpperCase()}]`;
      return c === '|' ? '\\|' : c;
    })
    .join('');
}

/**
 * The pre-tokenisation pattern `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|
 * [\p{N}]|[^\s\p{L}\p{N}]+` with the `regex` module's IGNORECASE semantics (`\p{N}` takes ONE digit).
 * JS's `i` flag is not used: it would also make `\p{L}` match U+0345 (which case-folds to a Greek
 * iota); Python's `regex` matches U+0345 with none of the alternatives, so it is excluded from
 * the last class too. Checked against `regex` 2026.5 for every code point in several contexts.
 */
export const PRETOKENIZE_RE = new RegExp(
  [
    ignoreCase('<|startoftext|>'),
    ignoreCase('<|endoftext|>'),
    ...["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map(ignoreCase),
    '\\p{L}+',
    '\\p{N}',
    `[^${WS}\\p{L}\\p{N}\\u0345]+`,
  ].join('|'),
  'gu',
);

/**
 * GPT-2/CLIP `bytes_to_unicode`: printable bytes (33-126, 161-172, 174-255) map to themselves,
 * the other 68 bytes in increasing order to U+0100, U+0101, ... `order` lists the bytes in the
 * table's iteration order (printables first), which defines token ids 0..255.
 */
export function bytesToUnicode(): { byteToChar: string[]; order: number[] } {
  const order: number[] = [];
  for (let b = 33; b <= 126; b++) order.push(b);
  for (let b = 161; b <= 172; b++) order.push(b);
  for (let b = 174; b <= 255; b++) order.push(b);
  const byteToChar: string[] = new Array<string>(256);
  for (const b of order) byteToChar[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (byteToChar[b] !== undefined) continue;
    byteToChar[b] = String.fromCharCode(256 + n++);
    order.push(b);
  }
  return { byteToChar, order };
}

export interface TokenizeOptions {
  /** Row length (77 for CLIP, CRIS uses 17/22). */
  contextLength?: number;
  /** Too long: keep the first `contextLength` ids and make the last one EOS (true), or throw. */
  truncate?: boolean;
  /** 'max_length' (default): every row has `contextLength` entries; 'longest': rows as long as the longest. */
  padding?: 'max_length' | 'longest';
  /** Padding id: 0 like `clip.tokenize` (default) or the EOS id like HF's processor. */
  padTokenId?: number;
}

export interface TokenizedBatch {
  /** Row-major [N, L] ids. */
  inputIds: Int32Array;
  /** Row-major [N, L]: 1 for BOS, text ids and EOS, 0 for padding. */
  attentionMask: Int32Array;
  shape: [number, number];
  /** Per row: number of real tokens (BOS and EOS included) after truncation. */
  lengths: number[];
  /** Per row: whether the prompt was cut to fit. */
  truncated: boolean[];
}

const UTF8_ENCODER = new TextEncoder();
const UTF8_DECODER = new TextDecoder('utf-8', { ignoreBOM: true });
const MAX_CACHE_ENTRIES = 50_000;

export class ClipTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly vocabSize: number;

  private readonly encoder: Map<string, number>;
  private readonly decoder: string[];
  private readonly ranks: Map<string, number>;
  private readonly merges: Array<[string, string]>;
  private readonly byteToChar: string[];
  private readonly charToByte: Map<string, number>;
  private cache = new Map<string, string[]>();

  private constructor(encoder: Map<string, number>, merges: Array<[string, string]>) {
    this.encoder = encoder;
    this.merges = merges;
    this.ranks = new Map(merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
    const { byteToChar } = bytesToUnicode();
    this.byteToChar = byteToChar;
    this.charToByte = new Map(byteToChar.map((c, b) => [c, b]));
    this.decoder = [];
    for (const [token, id] of encoder) this.decoder[id] = token;
    const bos = encoder.get(BOS_TOKEN);
    const eos = encoder.get(EOS_TOKEN);
    if (bos === undefined || eos === undefined) {
      throw new Error(`ClipTokenizer: the vocabulary has no ${BOS_TOKEN} or ${EOS_TOKEN} token`);
    }
    this.bosTokenId = bos;
    this.eosTokenId = eos;
    this.vocabSize = this.decoder.length;
  }

  /** From the original gzipped merges file `bpe_simple_vocab_16e6.txt.gz`. */
  static fromBpeGz(bytes: Uint8Array): ClipTokenizer {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(gunzipSync(bytes));
    } catch (err) {
      throw new Error(`ClipTokenizer.fromBpeGz: not a gzipped UTF-8 BPE merges file (${String(err)})`);
    }
    return ClipTokenizer.fromBpeText(text);
  }

  /** From the decompressed text of `bpe_simple_vocab_16e6.txt` (header line, then merges). */
  static fromBpeText(text: string): ClipTokenizer {
    // Only lines 1..48,894 are used: cut the text there instead of splitting all 262k lines.
    let end = -1;
    for (let n = 0; n <= CLIP_NUM_MERGES; n++) {
      end = text.indexOf('\n', end + 1);
      if (end === -1) break;
    }
    const lines = (end === -1 ? text : text.slice(0, end)).split('\n').slice(1, CLIP_NUM_MERGES + 1);
    const merges = lines.map((line, i) => parseMerge(line, i + 2, 'fromBpeText'));
    const { byteToChar, order } = bytesToUnicode();
    const vocab = order.map((b) => byteToChar[b]!);
    vocab.push(...vocab.map((c) => `${c}</w>`));
    for (const [a, b] of merges) vocab.push(a + b);
    vocab.push(BOS_TOKEN, EOS_TOKEN);
    return new ClipTokenizer(new Map(vocab.map((token, id) => [token, id])), merges);
  }

  /** From HF `vocab.json` (token -> id) and `merges.txt` (`#version` header, one merge per line). */
  static fromHf(vocabJson: string, mergesTxt: string): ClipTokenizer {
    let parsed: unknown;
    try {
      parsed = JSON.parse(vocabJson);
    } catch (err) {
      throw new Error(`ClipTokenizer.fromHf: vocab.json is not valid JSON (${String(err)})`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error('ClipTokenizer.fromHf: vocab.json must be an object mapping tokens to ids');
    }
    const encoder = new Map<string, number>();
    for (const [token, id] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw new Error(`ClipTokenizer.fromHf: vocab.json maps ${JSON.stringify(token)} to ${String(id)}, not an id`);
      }
      encoder.set(token, id);
    }
    const lines = mergesTxt.split('\n').map((l) => l.replace(/\r$/, ''));
    const start = lines[0]?.startsWith('#version') ? 1 : 0;
    const merges: Array<[string, string]> = [];
    for (let i = start; i < lines.length; i++) {
      if (lines[i] === '') continue;
      merges.push(parseMerge(lines[i]!, i + 1, 'fromHf'));
    }
    for (const [a, b] of merges) {
      if (!encoder.has(a + b)) throw new Error(`ClipTokenizer.fromHf: merge "${a} ${b}" has no token in vocab.json`);
    }
    return new ClipTokenizer(encoder, merges);
  }

  /** BPE ids of `text`, without BOS/EOS (`SimpleTokenizer.encode`). */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const symbol of this.bpeTokens(text)) {
      const id = this.encoder.get(symbol);
      if (id === undefined) {
        throw new Error(`ClipTokenizer.encode: symbol ${JSON.stringify(symbol)} is not in the vocabulary`);
      }
      ids.push(id);
    }
    return ids;
  }

  /** The BPE symbols (vocabulary strings) of `text`, e.g. `['poly', 'p</w>']`. */
  bpeTokens(text: string): string[] {
    if (typeof text !== 'string') throw new Error(`ClipTokenizer: a prompt must be a string, got ${typeof text}`);
    const symbols: string[] = [];
    for (const match of cleanText(text).matchAll(PRETOKENIZE_RE)) {
      const piece = match[0];
      if (piece === BOS_TOKEN || piece === EOS_TOKEN) symbols.push(piece);
      else for (const symbol of this.bpe(piece)) symbols.push(symbol);
    }
    return symbols;
  }

  /**
   * `clip.tokenize(texts, context_length, truncate)`: rows of BOS, ids, EOS and padding, plus the
   * attention mask. Throws (truncate: false) naming the first prompt that does not fit.
   */
  tokenize(texts: string | readonly string[], options: TokenizeOptions = {}): TokenizedBatch {
    const list = typeof texts === 'string' ? [texts] : texts;
    const contextLength = options.contextLength ?? CLIP_CONTEXT_LENGTH;
    const truncate = options.truncate ?? true;
    const padTokenId = options.padTokenId ?? 0;
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new Error(`ClipTokenizer.tokenize: contextLength must be an integer >= 2, got ${contextLength}`);
    }
    const rows = list.map((text, i) => {
      const tokens = [this.bosTokenId, ...this.encode(text), this.eosTokenId];
      if (tokens.length <= contextLength) return { tokens, truncated: false };
      if (!truncate) {
        throw new Error(
          `ClipTokenizer.tokenize: prompt ${i} ${JSON.stringify(text)} has ${tokens.length} tokens ` +
            `(with BOS/EOS), more than the context length ${contextLength}; shorten it or pass truncate: true`,
        );
      }
      const cut = tokens.slice(0, contextLength);
      cut[contextLength - 1] = this.eosTokenId;
      return { tokens: cut, truncated: true };
    });
    const width =
      options.padding === 'longest' ? Math.max(0, ...rows.map((r) => r.tokens.length)) : contextLength;
    const inputIds = new Int32Array(rows.length * width).fill(padTokenId);
    const attentionMask = new Int32Array(rows.length * width);
    rows.forEach(({ tokens }, i) => {
      inputIds.set(tokens, i * width);
      attentionMask.fill(1, i * width, i * width + tokens.length);
    });
    return {
      inputIds,
      attentionMask,
      shape: [rows.length, width],
      lengths: rows.map((r) => r.tokens.length),
      truncated: rows.map((r) => r.truncated),
    };
  }

  /** `SimpleTokenizer.decode`: ids -> text, `</w>` becomes a space, invalid UTF-8 becomes U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const token = this.decoder[ids[i]!];
      if (token === undefined) throw new Error(`ClipTokenizer.decode: unknown token id ${ids[i]}`);
      for (const ch of token) {
        const b = this.charToByte.get(ch);
        if (b === undefined) throw new Error(`ClipTokenizer.decode: token ${JSON.stringify(token)} is not byte-level`);
        bytes.push(b);
      }
    }
    return UTF8_DECODER.decode(new Uint8Array(bytes)).replaceAll('</w>', ' ');
  }

  /** The vocabulary string of an id (`undefined` when out of range). */
  idToToken(id: number): string | undefined {
    return this.decoder[id];
  }

  /** Byte-level BPE of one pre-tokenised piece (UTF-8 bytes -> byte characters -> merges), cached. */
  private bpe(piece: string): string[] {
    const cached = this.cache.get(piece);
    if (cached !== undefined) return cached;
    let word: string[] = [];
    for (const b of UTF8_ENCODER.encode(piece)) word.push(this.byteToChar[b]!);
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < best) best = rank;
      }
      if (best === Infinity) break;
      const [first, second] = this.merges[best]!;
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (word[i] === first && i + 1 < word.length && word[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word[i]!);
        }
      }
      word = merged;
    }
    if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
    this.cache.set(piece, word);
    return word;
  }
}

function parseMerge(line: string, lineNumber: number, where: string): [string, string] {
  const parts = line.split(' ');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new Error(`ClipTokenizer.${where}: line ${lineNumber} is not a merge "a b": ${JSON.stringify(line)}`);
  }
  return [parts[0]!, parts[1]!];
}
