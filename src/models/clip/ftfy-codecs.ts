/**
 * The single-byte encodings that ftfy 6.3.1 (Apache-2.0, Copyright 2023 Robyn Speer; see
 * ftfy.LICENSE.txt) tries, in its order, when it repairs mojibake (UTF-8 text that was decoded
 * with one of them), and the UTF-8 "clue" character classes derived from them. Pure data; no
 * Node APIs.
 *
 * Byte strings are "binary strings": one UTF-16 code unit (0..255) per byte.
 *
 * Tables: the characters of bytes 0x80..0xff, from Python's codecs. ftfy's "sloppy" variants of
 * the windows code pages decode the bytes a code page leaves undefined as the Latin-1 character
 * of the same number, and decode byte 0x1a as U+FFFD (so that U+FFFD can be re-encoded).
 */

export type CodecName =
  | 'latin-1'
  | 'sloppy-windows-1252'
  | 'sloppy-windows-1251'
  | 'sloppy-windows-1250'
  | 'sloppy-windows-1253'
  | 'sloppy-windows-1254'
  | 'sloppy-windows-1257'
  | 'iso-8859-2'
  | 'macroman'
  | 'cp437';

const HIGH_HALVES: Record<Exclude<CodecName, 'latin-1'>, string[]> = {
  'sloppy-windows-1252': [
    '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ',
    '\u00a0¡¢£¤¥¦§¨©ª«¬\u00ad®¯°±²³´µ¶·¸¹º»¼½¾¿',
    'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞß',
    'àáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ',
  ],
  'sloppy-windows-1251': [
    'ЂЃ‚ѓ„…†‡€‰Љ‹ЊЌЋЏђ‘’“”•–—\u0098™љ›њќћџ',
    '\u00a0ЎўЈ¤Ґ¦§Ё©Є«¬\u00ad®Ї°±Ііґµ¶·ё№є»јЅѕї',
    'АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ',
    'абвгдежзийклмнопрстуфхцчшщъыьэюя',
  ],
  'sloppy-windows-1250': [
    '€\u0081‚\u0083„…†‡\u0088‰Š‹ŚŤŽŹ\u0090‘’“”•–—\u0098™š›śťžź',
    '\u00a0ˇ˘Ł¤Ą¦§¨©Ş«¬\u00ad®Ż°±˛ł´µ¶·¸ąş»Ľ˝ľż',
    'ŔÁÂĂÄĹĆÇČÉĘËĚÍÎĎĐŃŇÓÔŐÖ×ŘŮÚŰÜÝŢß',
    'ŕáâăäĺćçčéęëěíîďđńňóôőö÷řůúűüýţ˙',
  ],
  'sloppy-windows-1253': [
    '€\u0081‚ƒ„…†‡\u0088‰\u008a‹\u008c\u008d\u008e\u008f\u0090‘’“”•–—\u0098™\u009a›\u009c\u009d\u009e\u009f',
    '\u00a0΅Ά£¤¥¦§¨©ª«¬\u00ad®―°±²³΄µ¶·ΈΉΊ»Ό½ΎΏ',
    'ΐΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡÒΣΤΥΦΧΨΩΪΫάέήί',
    'ΰαβγδεζηθικλμνξοπρςστυφχψωϊϋόύώÿ',
  ],
  'sloppy-windows-1254': [
    '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008d\u008e\u008f\u0090‘’“”•–—˜™š›œ\u009d\u009eŸ',
    '\u00a0¡¢£¤¥¦§¨©ª«¬\u00ad®¯°±²³´µ¶·¸¹º»¼½¾¿',
    'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏĞÑÒÓÔÕÖ×ØÙÚÛÜİŞß',
    'àáâãäåæçèéêëìíîïğñòóôõö÷øùúûüışÿ',
  ],
  'sloppy-windows-1257': [
    '€\u0081‚\u0083„…†‡\u0088‰\u008a‹\u008c¨ˇ¸\u0090‘’“”•–—\u0098™\u009a›\u009c¯˛\u009f',
    '\u00a0¡¢£¤¥¦§Ø©Ŗ«¬\u00ad®Æ°±²³´µ¶·ø¹ŗ»¼½¾æ',
    'ĄĮĀĆÄÅĘĒČÉŹĖĢĶĪĻŠŃŅÓŌÕÖ×ŲŁŚŪÜŻŽß',
    'ąįāćäåęēčéźėģķīļšńņóōõö÷ųłśūüżž˙',
  ],
  'iso-8859-2': [
    '\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008a\u008b\u008c\u008d\u008e\u008f' +
      '\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009a\u009b\u009c\u009d\u009e\u009f',
    '\u00a0Ą˘Ł¤ĽŚ§¨ŠŞŤŹ\u00adŽŻ°ą˛ł´ľśˇ¸šşťź˝žż',
    'ŔÁÂĂÄĹĆÇČÉĘËĚÍÎĎĐŃŇÓÔŐÖ×ŘŮÚŰÜÝŢß',
    'ŕáâăäĺćçčéęëěíîďđńňóôőö÷řůúűüýţ˙',
  ],
  'macroman': [
    'ÄÅÇÉÑÖÜáàâäãåçéèêëíìîïñóòôöõúùûü',
    '†°¢£§•¶ß®©™´¨≠ÆØ∞±≤≥¥µ∂∑∏π∫ªºΩæø',
    '¿¡¬√ƒ≈∆«»…\u00a0ÀÃÕŒœ–—“”‘’÷◊ÿŸ⁄€‹›\ufb01\ufb02',
    '‡·‚„‰ÂÊÁËÈÍÎÏÌÓÔ\uf8ffÒÚÛÙıˆ˜¯˘˙˚¸˝˛ˇ',
  ],
  'cp437': [
    'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒ',
    'áíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐',
    '└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀',
    'αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0',
  ],
};

/** A single-byte codec: its 256-character decode table, encode map and `possible_encoding` test. */
export interface SingleByteCodec {
  readonly name: CodecName;
  readonly decodeTable: string;
  readonly encodeMap: ReadonlyMap<string, number>;
  /** ftfy's ENCODING_REGEXES: bytes 0x00-0x19, 0x1b-0x7f and the decodings of 0x80-0xff and 0x1a. */
  readonly possible: RegExp;
}

function escapeForClass(chars: string): string {
  return chars.replace(/[\\\]\[^-]/g, (c) => `\\${c}`);
}

function makeCodec(name: CodecName): SingleByteCodec {
  let low = '';
  for (let b = 0; b < 0x80; b++) low += String.fromCharCode(b);
  if (name.startsWith('sloppy')) low = low.slice(0, 0x1a) + '\ufffd' + low.slice(0x1b);
  let high = '';
  if (name === 'latin-1') {
    for (let b = 0x80; b < 0x100; b++) high += String.fromCharCode(b);
  } else {
    high = HIGH_HALVES[name].join('');
  }
  const decodeTable = low + high;
  if (decodeTable.length !== 256) throw new Error(`ftfy-codecs: table ${name} has ${decodeTable.length} entries`);
  const encodeMap = new Map<string, number>();
  for (let b = 255; b >= 0; b--) encodeMap.set(decodeTable[b]!, b);
  const possible = new RegExp(`^[\\x00-\\x19\\x1b-\\x7f${escapeForClass(high + decodeTable[0x1a]!)}]*$`);
  return { name, decodeTable, encodeMap, possible };
}

/** The encodings tried by `fix_encoding`, in ftfy's order. */
export const CHARMAP_CODECS: readonly SingleByteCodec[] = (
  [
    'latin-1',
    'sloppy-windows-1252',
    'sloppy-windows-1251',
    'sloppy-windows-1250',
    'sloppy-windows-1253',
    'sloppy-windows-1254',
    'sloppy-windows-1257',
    'iso-8859-2',
    'macroman',
    'cp437',
  ] as const
).map(makeCodec);

export function codec(name: CodecName): SingleByteCodec {
  return CHARMAP_CODECS.find((c) => c.name === name)!;
}

/** `text.encode(codec)`; every character must be encodable (check `codec.possible` first). */
export function encodeSingleByte(text: string, c: SingleByteCodec): string {
  let out = '';
  for (const ch of text) {
    const b = c.encodeMap.get(ch);
    if (b === undefined) throw new Error(`encodeSingleByte: ${JSON.stringify(ch)} is not in ${c.name}`);
    out += String.fromCharCode(b);
  }
  return out;
}

/** `bin.decode(codec)` for a binary string. */
export function decodeSingleByte(bin: string, c: SingleByteCodec): string {
  let out = '';
  for (let i = 0; i < bin.length; i++) out += c.decodeTable[bin.charCodeAt(i)]!;
  return out;
}

// --- UTF-8 clues (chardata.UTF8_CLUES) ----------------------------------------------------------
// ftfy lists these characters by name; they are exactly the decodings of the given bytes in
// latin-1 and the sloppy windows-1250/1251/1252/1253/1254/1257 codecs (checked against ftfy 6.3.1).

const CLUE_CODECS: CodecName[] = [
  'latin-1',
  'sloppy-windows-1252',
  'sloppy-windows-1251',
  'sloppy-windows-1250',
  'sloppy-windows-1253',
  'sloppy-windows-1254',
  'sloppy-windows-1257',
];

function clueClass(bytes: number[], extra = '', exclude = ''): string {
  const chars = new Set<string>(extra);
  for (const name of CLUE_CODECS) for (const b of bytes) chars.add(codec(name).decodeTable[b]!);
  for (const ch of exclude) chars.delete(ch);
  return escapeForClass([...chars].sort().join(''));
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Characters that decode to 0xc2..0xdf (UTF-8 lead bytes of 2-byte sequences). */
export const UTF8_FIRST_OF_2 = clueClass(range(0xc2, 0xe0));
/** Characters that decode to 0xe0..0xef. */
export const UTF8_FIRST_OF_3 = clueClass(range(0xe0, 0xf0));
/** Characters that decode to 0xf0 or 0xf3. */
export const UTF8_FIRST_OF_4 = clueClass([0xf0, 0xf3]);
/** Characters that decode to 0x80..0xbf, plus a space standing in for 0xa0. */
export const UTF8_CONTINUATION = clueClass(range(0x80, 0xc0), ' ');
/** The same without spaces, dashes, bullet, quotation marks and ellipsis. */
export const UTF8_CONTINUATION_STRICT = clueClass(
  range(0x80, 0xc0),
  '',
  '\u2013\u2014\u2015\u2018\u2019\u201a\u201c\u201d\u201e\u2022\u2026',
);
