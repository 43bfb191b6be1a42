/**
 * Character data for ftfy.ts, ported from ftfy 6.3.1 `chardata.py` and `badness.py`
 * (Apache-2.0, Copyright 2023 Robyn Speer; see ftfy.LICENSE.txt): the mojibake detectors,
 * byte-level patterns, translation tables and the badness heuristic. Pure data + regexes; no
 * Node APIs. The code pages are in ftfy-codecs.ts.
 *
 * Byte strings are "binary strings": one UTF-16 code unit per byte (0..255).
 */
import {
  UTF8_CONTINUATION,
  UTF8_CONTINUATION_STRICT,
  UTF8_FIRST_OF_2,
  UTF8_FIRST_OF_3,
  UTF8_FIRST_OF_4,
} from './ftfy-codecs.js';

/** Python's whitespace (`str.isspace`, stdlib `re` `\s` on str): used where ftfy uses `\s`. */
export const PY_SPACE_CLASS =
  '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

export const ASCII_RE = /^[\x00-\x7f]*$/;

/** Runs of characters that look like UTF-8 decoded as a single-byte encoding. */
export const UTF8_DETECTOR_RE = new RegExp(
  `(?<![${UTF8_CONTINUATION_STRICT}])` +
    `(?:[${UTF8_FIRST_OF_2}][${UTF8_CONTINUATION}]` +
    `|[${UTF8_FIRST_OF_3}][${UTF8_CONTINUATION}]{2}` +
    `|[${UTF8_FIRST_OF_4}][${UTF8_CONTINUATION}]{3})+`,
  'gu',
);

// --- Byte-level patterns (on binary strings) ----------------------------------------------------

/** UTF-8 sequences that would be valid if a 0xa0 byte had not been turned into a space. */
export const ALTERED_UTF8_RE = new RegExp(
  '[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9][ ]' +
    '|[\\xe2\\xe3][ ][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]' +
    '|[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf][ ]' +
    '|[\\xf0][ ][\\x80-\\xbf][\\x80-\\xbf]' +
    '|[\\xf0][\\x80-\\xbf][ ][\\x80-\\xbf]' +
    '|[\\xf0][\\x80-\\xbf][\\x80-\\xbf][ ]',
  'g',
);

/** `Ã ` as a whole word (`à la`), except the Portuguese contractions; see fixes.restore_byte_a0. */
export const A_GRAVE_WORD_RE = /\xc3 (?! |quele|quela|quilo|s )/g;

/** UTF-8 sequences where continuation bytes were lost (0x1a stands for a U+FFFD, `?` too once). */
export const LOSSY_UTF8_RE = new RegExp(
  '[\\xc2-\\xdf][\\x1a]' +
    '|[\\xc2-\\xc3][?]' +
    '|\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]' +
    '|\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]' +
    '|[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]' +
    '|[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]' +
    '|[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]' +
    '|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]' +
    '|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]' +
    '|\\x1a',
  'g',
);

export const C1_CONTROL_RE = /[\x80-\x9f]/g;

// --- Translation tables --------------------------------------------------------------------------

/** Latin ligatures and legacy digraphs that ftfy splits (not æ/œ, which are used on purpose). */
export const LIGATURES: ReadonlyMap<string, string> = new Map([
  ['\u0132', 'IJ'], ['\u0133', 'ij'], ['\u0149', '\u02bcn'],
  ['\u01f1', 'DZ'], ['\u01f2', 'Dz'], ['\u01f3', 'dz'],
  ['\u01c4', 'D\u017d'], ['\u01c5', 'D\u017e'], ['\u01c6', 'd\u017e'],
  ['\u01c7', 'LJ'], ['\u01c8', 'Lj'], ['\u01c9', 'lj'],
  ['\u01ca', 'NJ'], ['\u01cb', 'Nj'], ['\u01cc', 'nj'],
  ['\ufb00', 'ff'], ['\ufb01', 'fi'], ['\ufb02', 'fl'], ['\ufb03', 'ffi'], ['\ufb04', 'ffl'],
  ['\ufb05', '\u017ft'], ['\ufb06', 'st'],
]);
export const LIGATURE_RE = /[\u0132\u0133\u0149\u01c4-\u01cc\u01f1-\u01f3\ufb00-\ufb06]/g;

/** Fullwidth/halfwidth forms U+FF01..U+FFEF -> their NFKC form; U+3000 -> space. */
export const WIDTH_MAP: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>([['\u3000', ' ']]);
  for (let cp = 0xff01; cp < 0xfff0; cp++) {
    const ch = String.fromCharCode(cp);
    const alt = ch.normalize('NFKC');
    if (alt !== ch) map.set(ch, alt);
  }
  return map;
})();
export const WIDTH_RE = /[\u3000\uff01-\uffef]/g;

/** Control characters that ftfy removes (keeps \t \n \f \r, C1 controls and joiners). */
export const CONTROL_CHARS_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

// --- Badness heuristic (badness.py) --------------------------------------------------------------

const C = {
  common: '\u00a0\u00ad\u00b7\u00b4\u2013\u2014\u2015\u2026\u2019',
  c1: '\u0080-\u009f',
  bad:
    '\u00a6\u00a4\u00a8\u00ac\u00af\u00b8\u0192\u02c6\u02c7\u02d8\u02db\u02dc\u2020\u2021\u2030\u2310' +
    '\u25ca\ufffd\u00aa\u00ba',
  law: '\u00b6\u00a7',
  currency: '\u00a2\u00a3\u00a5\u20a7\u20ac',
  start: '\u00a1\u00ab\u00bf\u00a9\u0384\u0385\u2018\u201a\u201c\u201e\u2022\u2039\uf8ff',
  end: '\u00ae\u00bb\u02dd\u201d\u203a\u2122',
  numeric:
    '\u00b2\u00b3\u00b9\u00b1\u00bc\u00bd\u00be\u00d7\u00b5\u00f7\u2044\u2202\u2206\u220f\u2211\u221a' +
    '\u221e\u2229\u222b\u2248\u2260\u2261\u2264\u2265\u2116',
  kaomoji: '\u00d2-\u00d6\u00d9-\u00dc\u00f2-\u00f6\u00f8-\u00fc\u0150\u014c\u016a\u0172\u00b0',
  upperAccented:
    '\u00c0-\u00d1\u00d8\u00dc\u00dd\u0102\u0100\u0104\u0106\u010c\u010e\u0110\u0118\u011a\u0112\u0116' +
    '\u011e\u0122\u0130\u012a\u0136\u0139\u013d\u0141\u013b\u0143\u0147\u0145\u0152\u0158\u015a\u015e' +
    '\u0160\u0162\u0164\u016e\u0170\u0178\u0179\u017b\u017d\u0490',
  lowerAccented:
    '\u00df\u00e0-\u00f1\u0103\u0105\u0101\u0107\u010d\u010f\u0111\u0119\u011b\u0113\u0117\u011f\u0123' +
    '\u012f\u012b\u0137\u013a\u013e\u0142\u013c\u0153\u0155\u015b\u015f\u0161\u0165\u00fc\u017a\u017c' +
    '\u017e\u0491\ufb01\ufb02',
  upperCommon: '\u00de\u0391-\u03a9\u0386\u0388\u0389\u038a\u038c\u038e\u038f\u03aa\u03ab\u0401-\u042f',
  lowerCommon: '\u03b1-\u03c9\u03ac\u03ad\u03ae\u03af\u03b0\u0430-\u045f',
  box:
    '\u2502\u250c\u2510\u2518\u251c\u2524\u252c\u253c\u2550-\u256c\u2580\u2584\u2588\u258c\u2590\u2591' +
    '\u2592\u2593',
};

/** Python's Unicode `\w` (letters, numbers, underscore). */
const PY_WORD = '[\\p{L}\\p{N}_]';
const PY_SPACE = `[${PY_SPACE_CLASS}]`;

const BADNESS_ALTERNATIVES = [
  `[${C.c1}]`,
  `[${C.bad}${C.lowerAccented}${C.upperAccented}${C.box}${C.start}${C.end}${C.currency}${C.numeric}${C.law}][${C.bad}]`,
  `[a-zA-Z][${C.lowerCommon}${C.upperCommon}][${C.bad}]`,
  `[${C.bad}][${C.lowerAccented}${C.upperAccented}${C.box}${C.start}${C.end}${C.currency}${C.numeric}${C.law}]`,
  `[${C.lowerAccented}${C.lowerCommon}${C.box}${C.end}${C.currency}${C.numeric}][${C.upperAccented}]`,
  `[${C.box}${C.end}${C.currency}${C.numeric}][${C.lowerAccented}]`,
  `[${C.lowerAccented}${C.box}${C.end}][${C.currency}]`,
  `${PY_SPACE}[${C.upperAccented}][${C.currency}]`,
  `[${C.upperAccented}${C.box}][${C.numeric}${C.law}]`,
  `[${C.lowerAccented}${C.upperAccented}${C.box}${C.currency}${C.end}][${C.start}][${C.numeric}]`,
  `[${C.lowerAccented}${C.upperAccented}${C.currency}${C.numeric}${C.box}${C.law}][${C.end}][${C.start}]`,
  `[${C.currency}${C.numeric}${C.box}][${C.start}]`,
  `[a-z][${C.upperAccented}][${C.start}${C.currency}]`,
  `[${C.box}][${C.kaomoji}]`,
  `[${C.lowerAccented}${C.upperAccented}${C.currency}${C.numeric}${C.start}${C.end}${C.law}][${C.box}]`,
  `[${C.box}][${C.end}]`,
  `[${C.lowerAccented}${C.upperAccented}][${C.start}${C.end}]${PY_WORD}`,
  // The ligature œ when not followed by an unaccented Latin letter
  '[\u0152\u0153][^A-Za-z]',
  // Degree signs after capital letters
  `[${C.upperAccented}]\u00b0`,
  // Common Windows-1252 2-character mojibake that isn't covered by the cases above
  '[\u00c2\u00c3\u00ce\u00d0]' +
    `[\u20ac\u0153\u0160\u0161\u00a2\u00a3\u0178\u017e\u00a0\u00ad\u00ae\u00a9\u00b0\u00b7\u00bb${C.start}${C.end}` +
    '\u2013\u2014\u00b4]',
  '\u00d7[\u00b2\u00b3]',
  // Windows-1252 mojibake of Arabic words (four characters)
  `[\u00d8\u00d9][${C.common}${C.currency}${C.bad}${C.numeric}${C.start}\u0178\u0160\u00ae\u00b0\u00b5\u00bb]` +
    `[\u00d8\u00d9][${C.common}${C.currency}${C.bad}${C.numeric}${C.start}\u0178\u0160\u00ae\u00b0\u00b5\u00bb]`,
  // Windows-1252 mojibake that starts 3-character sequences for some South Asian alphabets
  '\u00e0[\u00b2\u00b5\u00b9\u00bc\u00bd\u00be]',
  // MacRoman mojibake
  '\u221a[\u00b1\u2202\u2020\u2260\u00ae\u2122\u00b4\u2264\u2265\u00a5\u00b5\u00f8]',
  '\u2248[\u00b0\u00a2]',
  '\u201a\u00c4[\u00ec\u00ee\u00ef\u00f2\u00f4\u00fa\u00f9\u00fb\u2020\u00b0\u00a2\u03c0]',
  '\u201a[\u00e2\u00f3][\u00e0\u00e4\u00b0\u00ea]',
  // Windows-1251 mojibake
  '\u0432\u0402',
  `[\u0412\u0413\u0420\u0421][${C.c1}${C.bad}${C.start}${C.end}${C.currency}\u00b0\u00b5][\u0412\u0413\u0420\u0421]`,
  '\u0413\u045e\u0412\u0402\u0412[^\\n][A-Za-z ]',
  // Windows-1252 encodings of 'à' and 'á', as well as \xa0 itself
  '\u00c3[\u00a0\u00a1]',
  `[a-z]${PY_SPACE}?[\u00c3\u00c2][ ]`,
  '^[\u00c3\u00c2][ ]',
  // Â preceding a character as an encoding of exactly the same character
  `[a-z.,?!${C.end}]\u00c2[ ${C.start}${C.end}]`,
  // Windows-1253 mojibake
  '\u03b2\u20ac[\u2122\u00a0\u0386\u00ad\u00ae\u00b0]',
  `[\u0392\u0393\u039e\u039f][${C.c1}${C.bad}${C.start}${C.end}${C.currency}\u00b0][\u0392\u0393\u039e\u039f]`,
  // Windows-1257 mojibake of characters in the U+2000 range
  '\u0101\u20ac',
];

const BADNESS_RE = new RegExp(BADNESS_ALTERNATIVES.join('|'), 'u');

/** ftfy's `is_bad`: does the text contain a sequence that is much more likely mojibake than not? */
export function isBad(text: string): boolean {
  return BADNESS_RE.test(text);
}
