/**
 * ftfy 6.3.1 `fix_text` (Apache-2.0, Copyright 2023 Robyn Speer; see ftfy.LICENSE.txt) with its
 * default configuration, the first step of CLIP's text cleaning. Pure TypeScript; no Node APIs
 * (TextDecoder is a web standard).
 *
 * Ported, in ftfy's order (`fix_and_explain`, repeated until the text stops changing, on each line
 * separately): unescape_html ("auto": off from the first line that contains `<`), fix_encoding
 * (mojibake repair: encode as latin-1, sloppy windows-1252/1251/1250/1253/1254/1257,
 * iso-8859-2, MacRoman or cp437 and decode as UTF-8, with restore_byte_a0,
 * replace_lossy_sequences, the utf-8-variants decoder (CESU-8, Java's C0 80),
 * decode_inconsistent_utf8 for embedded mojibake, latin-1 -> windows-1252 and fix_c1_controls),
 * fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
 * fix_surrogates, remove_terminal_escapes, remove_control_chars, NFC normalisation.
 *
 * Checked against ftfy 6.3.1 on ~80,000 generated strings (mojibake through every code page above,
 * nested and embedded mojibake, entities, control characters, fullwidth forms): identical output.
 * Known differences from ftfy:
 * - segment lengths (`max_decode_length`, 1,000,000) count UTF-16 code units, not code points;
 * - Unicode tables (NFC, NFKC of fullwidth forms, `\p{..}`) are those of the JS engine (Node 20:
 *   Unicode 15+; the golden data came from Python 3.11, Unicode 14), so characters added to
 *   Unicode since may normalise or lower-case differently.
 */
import {
  A_GRAVE_WORD_RE,
  ALTERED_UTF8_RE,
  ASCII_RE,
  C1_CONTROL_RE,
  CONTROL_CHARS_RE,
  LIGATURE_RE,
  LIGATURES,
  LOSSY_UTF8_RE,
  UTF8_DETECTOR_RE,
  WIDTH_MAP,
  WIDTH_RE,
  isBad,
} from './ftfy-chardata.js';
import { CHARMAP_CODECS, codec, decodeSingleByte, encodeSingleByte } from './ftfy-codecs.js';
import { ftfyUnescapeHtml } from './html-unescape.js';

const MAX_DECODE_LENGTH = 1_000_000;

// --- UTF-8 decoding of binary strings -----------------------------------------------------------

// fatal: throw like Python's strict decoder; ignoreBOM: keep a leading U+FEFF as Python does.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function binaryToBytes(bin: string): Uint8Array {
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/** Python `bytes.decode('utf-8')`; throws on invalid input. */
function decodeUtf8Strict(bin: string): string {
  return STRICT_UTF8.decode(binaryToBytes(bin));
}

const UTF8_VARIANT_RE = /\xed[\xa0-\xaf][\x80-\xbf]\xed[\xb0-\xbf][\x80-\xbf]|\xc0\x80/g;

/** ftfy's `utf-8-variants` codec: UTF-8 plus CESU-8 surrogate pairs and Java's C0 80 null. */
function decodeUtf8Variants(bin: string): string {
  let out = '';
  let last = 0;
  for (const m of bin.matchAll(UTF8_VARIANT_RE)) {
    out += decodeUtf8Strict(bin.slice(last, m.index));
    const seq = m[0];
    if (seq.length === 2) {
      out += '\u0000';
    } else {
      const unit = (o: number) =>
        ((seq.charCodeAt(o) & 0x0f) << 12) | ((seq.charCodeAt(o + 1) & 0x3f) << 6) | (seq.charCodeAt(o + 2) & 0x3f);
      out += String.fromCharCode(unit(0), unit(3));
    }
    last = m.index + seq.length;
  }
  return out + decodeUtf8Strict(bin.slice(last));
}

// --- Individual fixes (fixes.py) ----------------------------------------------------------------

function restoreByteA0(bin: string): string {
  return bin
    .replace(A_GRAVE_WORD_RE, '\xc3\xa0 ')
    .replace(ALTERED_UTF8_RE, (m) => m.replaceAll(' ', '\xa0'));
}

function replaceLossySequences(bin: string): string {
  return bin.replace(LOSSY_UTF8_RE, '\xef\xbf\xbd');
}

const SLOPPY_1252 = codec('sloppy-windows-1252');

/** Remaining C1 controls become their windows-1252 characters (as browsers do). */
function fixC1Controls(text: string): string {
  return text.replace(C1_CONTROL_RE, (c) => decodeSingleByte(c, SLOPPY_1252));
}

function decodeInconsistentUtf8(text: string): string {
  return text.replace(UTF8_DETECTOR_RE, (substr) =>
    // Require the match to be shorter than the text, so this cannot recurse forever.
    substr.length < text.length && isBad(substr) ? fixEncoding(substr) : substr,
  );
}

function fixLatinLigatures(text: string): string {
  return text.replace(LIGATURE_RE, (c) => LIGATURES.get(c) ?? c);
}

function fixCharacterWidth(text: string): string {
  return text.replace(WIDTH_RE, (c) => WIDTH_MAP.get(c) ?? c);
}

function uncurlQuotes(text: string): string {
  return text.replace(/[\u201c-\u201f]/g, '"').replace(/[\u02bc\u2018-\u201b]/g, "'");
}

function fixLineBreaks(text: string): string {
  return text.replace(/\r\n|[\r\u2028\u2029\u0085]/g, '\n');
}

/** Lone UTF-16 surrogates become U+FFFD (paired ones are already single code points in JS). */
function fixSurrogates(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

function removeTerminalEscapes(text: string): string {
  return text.replace(/\x1b\[((?:\p{Nd}|;)*)([a-zA-Z])/gu, '');
}

function removeControlChars(text: string): string {
  return text.replace(CONTROL_CHARS_RE, '');
}

// --- fix_encoding ---------------------------------------------------------------------------------

function fixEncodingOneStep(text: string): string {
  if (text.length === 0 || ASCII_RE.test(text) || !isBad(text)) return text;

  const possible: string[] = [];
  for (const c of CHARMAP_CODECS) {
    if (!c.possible.test(text)) continue;
    possible.push(c.name);
    let bin = encodeSingleByte(text, c);
    // Restore 0xa0 bytes turned into spaces (not for MacRoman: an en dash + space looks the same).
    ALTERED_UTF8_RE.lastIndex = 0;
    if (c.name !== 'macroman' && ALTERED_UTF8_RE.test(bin)) bin = restoreByteA0(bin);
    if (c.name.startsWith('sloppy')) bin = replaceLossySequences(bin);
    try {
      return bin.includes('\xed') || bin.includes('\xc0') ? decodeUtf8Variants(bin) : decodeUtf8Strict(bin);
    } catch {
      // Not UTF-8 in this encoding: remember it and try the next one.
    }
  }

  // Look for a-hat-euro sequences that remain, and fix them in isolation.
  UTF8_DETECTOR_RE.lastIndex = 0;
  if (UTF8_DETECTOR_RE.test(text)) {
    UTF8_DETECTOR_RE.lastIndex = 0;
    const fixed = decodeInconsistentUtf8(text);
    if (fixed !== text) return fixed;
  }

  // Latin-1 that was meant to be windows-1252 (ftfy compares against the name 'windows-1252',
  // which is never in its list, so this branch always runs when latin-1 was possible).
  if (possible.includes('latin-1')) {
    if (!/[\x81\x8d\x8f\x90\x9d]/.test(text)) {
      const fixed = fixC1Controls(text);
      if (fixed !== text) return fixed;
    }
  }

  C1_CONTROL_RE.lastIndex = 0;
  if (C1_CONTROL_RE.test(text)) return fixC1Controls(text);
  return text;
}

/** ftfy's `fix_encoding`: repeat the one-step repair until the text is stable. */
export function fixEncoding(text: string): string {
  for (;;) {
    const prev = text;
    text = fixEncodingOneStep(text);
    if (text === prev) return text;
  }
}

// --- fix_text -----------------------------------------------------------------------------------

function fixSegment(text: string, unescapeHtml: boolean): string {
  for (;;) {
    const orig = text;
    if (unescapeHtml) text = ftfyUnescapeHtml(text);
    text = fixEncoding(text);
    text = fixC1Controls(text);
    text = fixLatinLigatures(text);
    text = fixCharacterWidth(text);
    text = uncurlQuotes(text);
    text = fixLineBreaks(text);
    text = fixSurrogates(text);
    text = removeTerminalEscapes(text);
    text = removeControlChars(text);
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

/**
 * ftfy's `fix_text(text)` with the default configuration (see the module comment).
 * The text is fixed one line at a time; HTML entities stay undecoded from the first line that
 * contains `<` on (ftfy's "auto" mode).
 */
export function fixText(text: string): string {
  let unescapeHtml = true;
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0) end = text.length;
    if (end - pos > MAX_DECODE_LENGTH) end = pos + MAX_DECODE_LENGTH;
    const segment = text.slice(pos, end);
    if (unescapeHtml && segment.includes('<')) unescapeHtml = false;
    out += fixSegment(segment, unescapeHtml);
    pos = end;
  }
  return out;
}
