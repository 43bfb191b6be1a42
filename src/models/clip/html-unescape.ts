/**
 * HTML entity decoding for the CLIP text cleaner, in two flavours:
 *
 * - `pythonHtmlUnescape(s)`: Python's `html.unescape` (what `clip/simple_tokenizer.py` applies twice):
 *   numeric references with or without `;` (HTML5 rules for invalid code points), the 2,125 HTML5
 *   named references with `;`, the legacy names that may omit it, and the "longest legacy prefix"
 *   rule (`&ampx` -> `&x`, `&notit;` -> `¬it;`).
 * - `ftfyUnescapeHtml(s)`: ftfy's `unescape_html` (ftfy 6.3): only `&name;` / `&#...;` forms that end
 *   in a semicolon, plus all-caps variants of lower-case names (`&EACUTE;` -> `É`).
 */
import { HTML5_ENTITIES, HTML5_LEGACY_NAMES } from './html5-entities.js';

/** Like Python's `html.entities.html5`: keys `name;` for every entity and `name` for legacy ones. */
const HTML5 = new Map<string, string>();
for (const pair of HTML5_ENTITIES.split(' ')) {
  const [name, hex] = pair.split(':') as [string, string];
  HTML5.set(`${name};`, String.fromCodePoint(...hex.split('.').map((h) => parseInt(h, 16))));
}
for (const name of HTML5_LEGACY_NAMES.split(' ')) HTML5.set(name, HTML5.get(`${name};`)!);

/** Python's `html._invalid_charrefs`: 0x00, 0x0d and the windows-1252 meanings of 0x80-0x9f. */
const CP1252_C1 =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

function invalidCharref(num: number): string | undefined {
  if (num === 0x00) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252_C1[num - 0x80];
  return undefined;
}

/** Python's `html._invalid_codepoints` (these references decode to nothing). */
function isInvalidCodepoint(num: number): boolean {
  return (
    (num >= 0x1 && num <= 0x8) ||
    num === 0xb ||
    (num >= 0xe && num <= 0x1f) ||
    (num >= 0x7f && num <= 0x9f) ||
    (num >= 0xfdd0 && num <= 0xfdef) ||
    (num & 0xfffe) === 0xfffe // U+xFFFE and U+xFFFF in every plane (num <= 0x10FFFF here)
  );
}

const PY_CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;

function decodeNumeric(num: number): string {
  const special = invalidCharref(num);
  if (special !== undefined) return special;
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  if (isInvalidCodepoint(num)) return '';
  return String.fromCodePoint(num);
}

function pyReplaceCharref(body: string): string {
  if (body[0] === '#') {
    const isHex = body[1] === 'x' || body[1] === 'X';
    const digits = body.slice(isHex ? 2 : 1).replace(/;$/, '');
    // Huge values parse to big floats or Infinity: still > 0x10FFFF, as in Python.
    return decodeNumeric(isHex ? parseInt(digits, 16) : parseInt(digits, 10));
  }
  const exact = HTML5.get(body);
  if (exact !== undefined) return exact;
  // Longest prefix (at least 2 characters) that is an entity name, as html.unescape does.
  for (let x = body.length - 1; x > 1; x--) {
    const prefix = HTML5.get(body.slice(0, x));
    if (prefix !== undefined) return prefix + body.slice(x);
  }
  return `&${body}`;
}

/** Python's `html.unescape` (see the module comment for the entity coverage). */
export function pythonHtmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(PY_CHARREF_RE, (_m, body: string) => pyReplaceCharref(body));
}

/** ftfy's HTML_ENTITIES: `&name;` for every entity, plus all-caps forms of lower-case names. */
const FTFY_ENTITIES = new Map<string, string>();
for (const [key, value] of HTML5) {
  if (!key.endsWith(';')) continue;
  FTFY_ENTITIES.set(`&${key}`, value);
}
for (const [key, value] of HTML5) {
  if (!key.endsWith(';') || key !== key.toLowerCase()) continue;
  const upper = `&${key.toUpperCase()}`;
  if (pythonHtmlUnescape(upper) === upper) FTFY_ENTITIES.set(upper, value.toUpperCase());
}

const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy's `unescape_html`: semicolon-terminated references only. */
export function ftfyUnescapeHtml(s: string): string {
  return s.replace(FTFY_ENTITY_RE, (text) => {
    const named = FTFY_ENTITIES.get(text);
    if (named !== undefined) return named;
    if (text.startsWith('&#')) {
      const decoded = pythonHtmlUnescape(text);
      // If only part of the reference was decoded, keep the text (the `;` must be consumed).
      return decoded.includes(';') ? text : decoded;
    }
    return text;
  });
}
