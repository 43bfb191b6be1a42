// JPEG Huffman entropy decoding (ITU T.81 Annex F and G): bit reader with 0xFF00 unstuffing, Huffman
// tables (9-bit lookahead + canonical slow path), baseline/extended sequential blocks, the four progressive
// scan kinds (DC first/refine, AC first/refine with EOB runs; the refinement logic follows libjpeg's
// jdphuff.c) and restart intervals. Sequential blocks are transformed as soon as they are decoded;
// progressive coefficients accumulate in each component's `coefs` and are transformed after the last scan.

import { ImageError } from './types.js';
import { ZIGZAG, idctIslow } from './jpeg-pixels.js';

export interface HuffmanTable {
  /** (length << 8) | symbol for every 9-bit prefix of a code of length <= 9, 0 otherwise. */
  lookup: Uint16Array;
  maxcode: Int32Array;
  valptr: Int32Array;
  mincode: Int32Array;
  symbols: Uint8Array;
}

export function buildHuffmanTable(counts: Uint8Array, symbols: Uint8Array, name: string): HuffmanTable {
  const lookup = new Uint16Array(512);
  const maxcode = new Int32Array(18).fill(-1);
  const valptr = new Int32Array(17);
  const mincode = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    valptr[len] = k;
    mincode[len] = code;
    const n = counts[len - 1]!;
    for (let i = 0; i < n; i++, k++, code++) {
      if (len <= 9) {
        const first = code << (9 - len);
        lookup.fill((len << 8) | symbols[k]!, first, first + (1 << (9 - len)));
      }
    }
    if (code > 2 ** len) throw new ImageError(name, 'corrupt JPEG: Huffman table with too many codes');
    maxcode[len] = n > 0 ? code - 1 : -1;
    code <<= 1;
  }
  return { lookup, maxcode, valptr, mincode, symbols };
}

export class BitReader {
  private acc = 0;
  private bits = 0;
  /** Set when a marker stopped the data (zeros are fed after it, as libjpeg does). */
  marker = -1;
  /** Set when the file ended inside the entropy-coded data. */
  eof = false;

  constructor(
    private readonly data: Uint8Array,
    public pos: number,
    private readonly name: string,
  ) {}

  private fill(): void {
    const d = this.data;
    while (this.bits <= 24) {
      let byte = 0;
      if (this.marker < 0) {
        if (this.pos >= d.length) {
          this.eof = true;
        } else {
          byte = d[this.pos]!;
          if (byte !== 0xff) {
            this.pos++;
          } else {
            const next = d[this.pos + 1];
            if (next === 0) {
              this.pos += 2;
            } else if (next === undefined) {
              this.eof = true;
              byte = 0;
            } else {
              this.marker = next;
              byte = 0;
            }
          }
        }
      }
      this.acc = (this.acc << 8) | byte;
      this.bits += 8;
    }
  }

  bit(): number {
    if (this.bits < 1) this.fill();
    this.bits--;
    return (this.acc >>> this.bits) & 1;
  }

  receive(n: number): number {
    if (n === 0) return 0;
    if (this.bits < n) this.fill();
    this.bits -= n;
    return (this.acc >>> this.bits) & ((1 << n) - 1);
  }

  receiveExtend(n: number): number {
    if (n === 0) return 0;
    const v = this.receive(n);
    return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
  }

  decode(t: HuffmanTable): number {
    if (this.bits < 16) this.fill();
    const entry = t.lookup[(this.acc >>> (this.bits - 9)) & 511]!;
    if (entry !== 0) {
      this.bits -= entry >> 8;
      return entry & 255;
    }
    for (let len = 10; len <= 16; len++) {
      const code = (this.acc >>> (this.bits - len)) & ((1 << len) - 1);
      if (code <= t.maxcode[len]!) {
        this.bits -= len;
        return t.symbols[t.valptr[len]! + code - t.mincode[len]!]!;
      }
    }
    throw new ImageError(this.name, `corrupt JPEG: invalid Huffman code near byte ${this.pos}`);
  }

  /** Drops buffered bits and moves past the RSTn marker that must follow (restart interval). */
  restart(expected: number): void {
    this.acc = 0;
    this.bits = 0;
    const d = this.data;
    let p = this.pos;
    while (p < d.length && d[p] !== 0xff) p++; // bytes before the marker (padding)
    while (p + 1 < d.length && d[p + 1] === 0xff) p++; // fill bytes
    if (p + 1 >= d.length) {
      throw new ImageError(
        this.name,
        `truncated JPEG: the file ends at byte ${d.length} before restart marker RST${expected}`,
      );
    }
    const m = d[p + 1]!;
    if (m < 0xd0 || m > 0xd7) {
      const found = `0xFF${m.toString(16).toUpperCase()}`;
      throw new ImageError(this.name, `corrupt JPEG: expected restart marker RST${expected} at byte ${p}, found ${found}`);
    }
    this.pos = p + 2;
    this.marker = -1;
  }
}

export interface JpegComponent {
  id: number;
  h: number;
  v: number;
  quantId: number;
  /** Blocks that hold image samples (non-interleaved scans cover exactly these). */
  blocksPerLine: number;
  blocksPerColumn: number;
  /** Blocks of the MCU-padded grid (interleaved scans cover these). */
  blocksPerLineMcu: number;
  blocksPerColumnMcu: number;
  /** Samples, blocksPerLineMcu*8 wide, blocksPerColumnMcu*8 tall. */
  plane: Uint8Array;
  /** Progressive only: coefficients of every block, natural order. */
  coefs: Int16Array | null;
  dcTable: HuffmanTable | null;
  acTable: HuffmanTable | null;
  pred: number;
}

export interface ScanSpec {
  components: JpegComponent[];
  ss: number;
  se: number;
  ah: number;
  al: number;
  progressive: boolean;
  restartInterval: number;
  mcusPerLine: number;
  mcusPerColumn: number;
  quant: (c: JpegComponent) => Uint16Array;
}

/** Decodes one scan starting at `offset` (first byte of entropy-coded data); returns the offset after it. */
export function decodeScan(data: Uint8Array, offset: number, scan: ScanSpec, name: string): number {
  const reader = new BitReader(data, offset, name);
  const { components, progressive, ss, se, ah, al } = scan;
  const block = new Int16Array(64);
  let eobrun = 0;

  const decodeBlock = (c: JpegComponent, row: number, col: number): void => {
    const stride = c.blocksPerLineMcu * 8;
    if (!progressive) {
      block.fill(0);
      decodeBaseline(reader, c, block);
      idctIslow(block, 0, scan.quant(c), c.plane, row * 8 * stride + col * 8, stride);
      return;
    }
    const coefs = c.coefs!;
    const base = (row * c.blocksPerLineMcu + col) * 64;
    if (ss === 0) {
      if (ah === 0) {
        const t = reader.decode(c.dcTable!);
        c.pred += reader.receiveExtend(t);
        coefs[base] = c.pred * (1 << al);
      } else if (reader.bit()) {
        coefs[base] = coefs[base]! | (1 << al);
      }
    } else if (ah === 0) {
      eobrun = decodeAcFirst(reader, c.acTable!, coefs, base, ss, se, al, eobrun);
    } else {
      eobrun = decodeAcRefine(reader, c.acTable!, coefs, base, ss, se, al, eobrun);
    }
  };

  const single = components.length === 1;
  const first = components[0]!;
  const mcuCount = single ? first.blocksPerLine * first.blocksPerColumn : scan.mcusPerLine * scan.mcusPerColumn;
  let nextRestart = 0;
  for (let mcu = 0; mcu < mcuCount; mcu++) {
    if (scan.restartInterval > 0 && mcu > 0 && mcu % scan.restartInterval === 0) {
      reader.restart(nextRestart);
      nextRestart = (nextRestart + 1) & 7;
      for (const c of components) c.pred = 0;
      eobrun = 0;
    }
    if (single) {
      decodeBlock(first, Math.floor(mcu / first.blocksPerLine), mcu % first.blocksPerLine);
    } else {
      const my = Math.floor(mcu / scan.mcusPerLine);
      const mx = mcu % scan.mcusPerLine;
      for (const c of components) {
        for (let by = 0; by < c.v; by++) {
          for (let bx = 0; bx < c.h; bx++) decodeBlock(c, my * c.v + by, mx * c.h + bx);
        }
      }
    }
    if (reader.eof) {
      throw new ImageError(
        name,
        `truncated JPEG: the file ends at byte ${data.length} inside a scan (MCU ${mcu + 1} of ${mcuCount})`,
      );
    }
  }
  return reader.pos;
}

function decodeBaseline(r: BitReader, c: JpegComponent, block: Int16Array): void {
  const t = r.decode(c.dcTable!);
  c.pred += r.receiveExtend(t);
  block[0] = c.pred;
  const ac = c.acTable!;
  for (let k = 1; k < 64; ) {
    const rs = r.decode(ac);
    const s = rs & 15;
    const run = rs >> 4;
    if (s === 0) {
      if (run < 15) break;
      k += 16;
      continue;
    }
    k += run;
    block[ZIGZAG[k]!] = r.receiveExtend(s);
    k++;
  }
}

function decodeAcFirst(
  r: BitReader,
  table: HuffmanTable,
  coefs: Int16Array,
  base: number,
  ss: number,
  se: number,
  al: number,
  eobrun: number,
): number {
  if (eobrun > 0) return eobrun - 1;
  for (let k = ss; k <= se; k++) {
    const rs = r.decode(table);
    const s = rs & 15;
    const run = rs >> 4;
    if (s !== 0) {
      k += run;
      coefs[base + ZIGZAG[k]!] = r.receiveExtend(s) * (1 << al);
    } else if (run === 15) {
      k += 15;
    } else {
      return (1 << run) + r.receive(run) - 1;
    }
  }
  return 0;
}

function decodeAcRefine(
  r: BitReader,
  table: HuffmanTable,
  coefs: Int16Array,
  base: number,
  ss: number,
  se: number,
  al: number,
  eobrun: number,
): number {
  const p1 = 1 << al;
  const m1 = -1 << al;
  let k = ss;
  const refine = (pos: number): void => {
    const v = coefs[pos]!;
    if (r.bit() && (v & p1) === 0) coefs[pos] = v >= 0 ? v + p1 : v + m1;
  };
  if (eobrun === 0) {
    for (; k <= se; k++) {
      const rs = r.decode(table);
      let run = rs >> 4;
      let s = rs & 15;
      if (s !== 0) {
        s = r.bit() ? p1 : m1;
      } else if (run !== 15) {
        eobrun = (1 << run) + r.receive(run);
        break;
      }
      // Skip `run` zero coefficients, refining the nonzero ones met on the way.
      while (k <= se) {
        const pos = base + ZIGZAG[k]!;
        if (coefs[pos] !== 0) refine(pos);
        else if (--run < 0) break;
        k++;
      }
      if (s !== 0) coefs[base + ZIGZAG[k]!] = s;
    }
  }
  if (eobrun > 0) {
    for (; k <= se; k++) {
      const pos = base + ZIGZAG[k]!;
      if (coefs[pos] !== 0) refine(pos);
    }
    eobrun--;
  }
  return eobrun;
}
