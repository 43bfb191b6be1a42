/**
 * CLIP text normalisation, as `clip/simple_tokenizer.py` does it before splitting:
 *
 *   basic_clean:      ftfy.fix_text -> html.unescape twice -> strip
 *   whitespace_clean: every run of whitespace (regex module `\s+`) -> one space, strip
 *   then lower-case.
 *
 * Whitespace follows Python exactly, which differs from JS `\s`:
 * - the `regex` module's `\s` is Unicode White_Space: JS `\s` without U+FEFF, plus U+0085;
 * - `str.strip()` removes `str.isspace()` characters: the above plus U+001C..U+001F.
 * Lower-casing uses `String.prototype.toLowerCase` (full Unicode mappings incl. final sigma, like
 * Python's `str.lower`); Unicode versions of the JS engine and of Python may differ slightly.
 */
import { fixText } from './ftfy.js';
import { pythonHtmlUnescape } from './html-unescape.js';

/** Unicode White_Space, the `regex` module's `\s`. */
const WHITE_SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Python's `str.isspace()`. */
const PY_ISSPACE = `${WHITE_SPACE}\\x1c-\\x1f`;

const WHITESPACE_RUN_RE = new RegExp(`[${WHITE_SPACE}]+`, 'g');
const STRIP_RE = new RegExp(`^[${PY_ISSPACE}]+|[${PY_ISSPACE}]+$`, 'g');

/** Python's `str.strip()` with no arguments. */
export function pyStrip(text: string): string {
  return text.replace(STRIP_RE, '');
}

/** `basic_clean`: ftfy (port, see ftfy.ts), HTML-unescape twice, strip. */
export function basicClean(text: string): string {
  const fixed = fixText(text);
  return pyStrip(pythonHtmlUnescape(pythonHtmlUnescape(fixed)));
}

/** `whitespace_clean`: collapse whitespace runs to one space, strip. */
export function whitespaceClean(text: string): string {
  return pyStrip(text.replace(WHITESPACE_RUN_RE, ' '));
}

/** The full normalisation of `SimpleTokenizer.encode`: the text that is split and BPE-encoded. */
export function cleanText(text: string): string {
  return whitespaceClean(basicClean(text)).toLowerCase();
}
