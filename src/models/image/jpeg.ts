// JPEG decoding: baseline and extended sequential (SOF0/SOF1) and progressive (SOF2) Huffman-coded
// 8-bit JPEG/JFIF/Adobe/EXIF files with 1, 3 or 4 components, any integral chroma subsampling
// (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, ...), interleaved or separate scans and restart markers.
//
// Output matches libjpeg-turbo with its default settings (islow IDCT, fancy upsampling), which is what
// Pillow gives; see jpeg-pixels.ts for the exact arithmetic. Channels: 1 (greyscale files) or 3 (RGB).
// Colour space as libjpeg guesses it: JFIF marker -> YCbCr; Adobe APP14 transform 0 -> RGB (no
// conversion), 1 -> YCbCr; otherwise component ids 'R','G','B' -> RGB, else YCbCr. Four components:
// Adobe transform 2 -> YCCK, else CMYK, turned into RGB the way Pillow does (see cmykToRgb).
// The EXIF orientation is reported, not applied.
//
// Rejected with an ImageError naming the file and the cause: arithmetic coding (SOF9-SOF15),
// lossless (SOF3) and hierarchical (SOF5-7) files, 12/16-bit precision, 2 components, DNL-defined height,
// fractional sampling ratios, missing tables, truncated data (the file ends inside a scan or before EOI
// of a progressive image) and images over the DecodeLimits.

import { type DecodeLimits, type DecodedImage, ImageError, checkDimensions, parseExifOrientation } from './types.js';
import { type HuffmanTable, type JpegComponent, buildHuffmanTable, decodeScan } from './jpeg-entropy.js';
import { ZIGZAG, cmykToRgb, idctIslow, upsample, yccToRgb } from './jpeg-pixels.js';

interface Frame {
  progressive: boolean;
  width: number;
  height: number;
  components: JpegComponent[];
  hmax: number;
  vmax: number;
  mcusPerLine: number;
  mcusPerColumn: number;
}

const SOF_NAMES: Record<number, string> = {
  0xc3: 'lossless (SOF3)',
  0xc5: 'differential sequential (SOF5)',
  0xc6: 'differential progressive (SOF6)',
  0xc7: 'differential lossless (SOF7)',
  0xc9: 'arithmetic-coded sequential (SOF9)',
  0xca: 'arithmetic-coded progressive (SOF10)',
  0xcb: 'arithmetic-coded lossless (SOF11)',
  0xcd: 'arithmetic-coded differential (SOF13)',
  0xce: 'arithmetic-coded differential progressive (SOF14)',
  0xcf: 'arithmetic-coded differential lossless (SOF15)',
};

/** Decodes a JPEG file; `name` is used in error messages. */
export function decodeJpeg(bytes: Uint8Array, name = 'image.jpg', limits?: DecodeLimits): DecodedImage {
  const fail = (reason: string): never => {
    throw new ImageError(name, reason);
  };
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) fail('not a JPEG file (no SOI marker)');
  const quant: Array<Uint16Array | undefined> = [];
  const dcTables: Array<HuffmanTable | undefined> = [];
  const acTables: Array<HuffmanTable | undefined> = [];
  let frame: Frame | null = null;
  let restartInterval = 0;
  let jfif = false;
  let adobeTransform = -1;
  let orientation = 1;
  let scans = 0;
  let sawEoi = false;
  let pos = 2;

  const segment = (): Uint8Array => {
    if (pos + 2 > bytes.length) fail(`truncated JPEG: the file ends at byte ${bytes.length} inside a marker`);
    const length = (bytes[pos]! << 8) | bytes[pos + 1]!;
    if (length < 2) fail(`corrupt JPEG: marker segment at byte ${pos} has length ${length}`);
    if (pos + length > bytes.length) {
      fail(`truncated JPEG: a marker segment at byte ${pos} needs ${length} bytes, the file has ${bytes.length - pos}`);
    }
    const seg = bytes.subarray(pos + 2, pos + length);
    pos += length;
    return seg;
  };

  while (pos < bytes.length) {
    // Find the next marker, skipping stray bytes and 0xFF fill bytes.
    while (pos < bytes.length && bytes[pos] !== 0xff) pos++;
    while (pos < bytes.length && bytes[pos] === 0xff) pos++;
    if (pos >= bytes.length) break;
    const marker = 0xff00 | bytes[pos++]!;
    const m = marker & 0xff;
    if (m === 0xd9) {
      sawEoi = true;
      break;
    }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) continue; // SOI again, stray RSTn, TEM
    const seg = segment();
    if (m === 0xc0 || m === 0xc1 || m === 0xc2) {
      if (frame !== null) fail('unsupported JPEG: more than one frame');
      frame = parseFrame(seg, m === 0xc2, name, limits);
    } else if (SOF_NAMES[m] !== undefined) {
      fail(`unsupported JPEG: ${SOF_NAMES[m]} coding; only baseline, extended and progressive Huffman are supported`);
    } else if (m === 0xc4) {
      parseHuffmanTables(seg, dcTables, acTables, name);
    } else if (m === 0xdb) {
      parseQuantTables(seg, quant, name);
    } else if (m === 0xdd) {
      if (seg.length < 2) fail('corrupt JPEG: DRI segment too short');
      restartInterval = (seg[0]! << 8) | seg[1]!;
    } else if (m === 0xda) {
      if (frame === null) fail('corrupt JPEG: scan (SOS) before the frame header (SOF)');
      const f = frame!;
      const scan = parseScanHeader(seg, f, dcTables, acTables, name);
      for (const c of scan.components) c.pred = 0;
      pos = decodeScan(bytes, pos, {
        ...scan,
        progressive: f.progressive,
        restartInterval,
        mcusPerLine: f.mcusPerLine,
        mcusPerColumn: f.mcusPerColumn,
        quant: (c) => quant[c.quantId] ?? fail(`corrupt JPEG: quantization table ${c.quantId} is not defined`),
      }, name);
      scans++;
    } else if (m === 0xdc) {
      fail('unsupported JPEG: the image height is defined by a DNL marker');
    } else if (m === 0xe0 && seg.length >= 5 && String.fromCharCode(...seg.subarray(0, 5)) === 'JFIF\0') {
      jfif = true;
    } else if (m === 0xe1 && seg.length >= 6 && String.fromCharCode(...seg.subarray(0, 6)) === 'Exif\0\0') {
      orientation = parseExifOrientation(seg.subarray(6));
    } else if (m === 0xee && seg.length >= 12 && String.fromCharCode(...seg.subarray(0, 5)) === 'Adobe') {
      adobeTransform = seg[11]!;
    }
    // Other APPn, COM and unknown segments are skipped.
  }
  if (frame === null) fail(`truncated JPEG: no frame header (SOF) in ${bytes.length} bytes`);
  const f = frame!;
  if (scans === 0) fail('truncated JPEG: no image data (no SOS marker)');
  if (!sawEoi && f.progressive) {
    fail(`truncated JPEG: the file ends at byte ${bytes.length} before the end of the progressive image (EOI)`);
  }
  if (f.progressive) {
    for (const c of f.components) {
      const table = quant[c.quantId] ?? fail(`corrupt JPEG: quantization table ${c.quantId} is not defined`);
      const stride = c.blocksPerLineMcu * 8;
      for (let row = 0; row < c.blocksPerColumnMcu; row++) {
        for (let col = 0; col < c.blocksPerLineMcu; col++) {
          idctIslow(c.coefs!, (row * c.blocksPerLineMcu + col) * 64, table, c.plane, row * 8 * stride + col * 8, stride);
        }
      }
      c.coefs = null;
    }
  }
  return toImage(f, jfif, adobeTransform, orientation, name);
}

function parseFrame(seg: Uint8Array, progressive: boolean, name: string, limits?: DecodeLimits): Frame {
  if (seg.length < 6) throw new ImageError(name, 'corrupt JPEG: SOF segment too short');
  const precision = seg[0]!;
  const height = (seg[1]! << 8) | seg[2]!;
  const width = (seg[3]! << 8) | seg[4]!;
  const count = seg[5]!;
  if (precision !== 8) throw new ImageError(name, `unsupported JPEG: ${precision}-bit samples (only 8-bit)`);
  if (height === 0) throw new ImageError(name, 'unsupported JPEG: the image height is defined by a DNL marker');
  if (count !== 1 && count !== 3 && count !== 4) {
    throw new ImageError(name, `unsupported JPEG: ${count} components (1, 3 or 4 are supported)`);
  }
  if (seg.length < 6 + 3 * count) throw new ImageError(name, 'corrupt JPEG: SOF segment too short');
  checkDimensions(name, 'JPEG', width, height, limits);
  const raw = [];
  for (let i = 0; i < count; i++) {
    const o = 6 + 3 * i;
    const h = seg[o + 1]! >> 4;
    const v = seg[o + 1]! & 15;
    if (h < 1 || h > 4 || v < 1 || v > 4) throw new ImageError(name, `corrupt JPEG: sampling factors ${h}x${v}`);
    raw.push({ id: seg[o]!, h, v, quantId: seg[o + 2]! });
  }
  const hmax = Math.max(...raw.map((c) => c.h));
  const vmax = Math.max(...raw.map((c) => c.v));
  const mcusPerLine = Math.ceil(width / (8 * hmax));
  const mcusPerColumn = Math.ceil(height / (8 * vmax));
  const components: JpegComponent[] = raw.map((c) => {
    const blocksPerLineMcu = mcusPerLine * c.h;
    const blocksPerColumnMcu = mcusPerColumn * c.v;
    return {
      ...c,
      blocksPerLine: Math.ceil(Math.ceil((width * c.h) / hmax) / 8),
      blocksPerColumn: Math.ceil(Math.ceil((height * c.v) / vmax) / 8),
      blocksPerLineMcu,
      blocksPerColumnMcu,
      plane: new Uint8Array(blocksPerLineMcu * blocksPerColumnMcu * 64),
      coefs: progressive ? new Int16Array(blocksPerLineMcu * blocksPerColumnMcu * 64) : null,
      dcTable: null,
      acTable: null,
      pred: 0,
    };
  });
  return { progressive, width, height, components, hmax, vmax, mcusPerLine, mcusPerColumn };
}

function parseHuffmanTables(
  seg: Uint8Array,
  dc: Array<HuffmanTable | undefined>,
  ac: Array<HuffmanTable | undefined>,
  name: string,
): void {
  let o = 0;
  while (o < seg.length) {
    if (o + 17 > seg.length) throw new ImageError(name, 'corrupt JPEG: DHT segment too short');
    const kind = seg[o]! >> 4;
    const id = seg[o]! & 15;
    const counts = seg.subarray(o + 1, o + 17);
    const total = counts.reduce((s, v) => s + v, 0);
    if (kind > 1 || id > 3 || o + 17 + total > seg.length || total > 256) {
      throw new ImageError(name, 'corrupt JPEG: bad DHT segment');
    }
    const table = buildHuffmanTable(counts, seg.subarray(o + 17, o + 17 + total), name);
    (kind === 0 ? dc : ac)[id] = table;
    o += 17 + total;
  }
}

function parseQuantTables(seg: Uint8Array, quant: Array<Uint16Array | undefined>, name: string): void {
  let o = 0;
  while (o < seg.length) {
    const wide = seg[o]! >> 4;
    const id = seg[o]! & 15;
    const size = wide ? 128 : 64;
    if (wide > 1 || id > 3 || o + 1 + size > seg.length) throw new ImageError(name, 'corrupt JPEG: bad DQT segment');
    const table = new Uint16Array(64);
    for (let k = 0; k < 64; k++) {
      table[ZIGZAG[k]!] = wide ? (seg[o + 1 + 2 * k]! << 8) | seg[o + 2 + 2 * k]! : seg[o + 1 + k]!;
    }
    quant[id] = table;
    o += 1 + size;
  }
}

function parseScanHeader(
  seg: Uint8Array,
  frame: Frame,
  dc: Array<HuffmanTable | undefined>,
  ac: Array<HuffmanTable | undefined>,
  name: string,
): { components: JpegComponent[]; ss: number; se: number; ah: number; al: number } {
  const count = seg[0] ?? 0;
  if (count < 1 || count > 4 || seg.length < 4 + 2 * count) throw new ImageError(name, 'corrupt JPEG: bad SOS segment');
  const components: JpegComponent[] = [];
  const ss = seg[1 + 2 * count]!;
  const se = seg[2 + 2 * count]!;
  const ah = seg[3 + 2 * count]! >> 4;
  const al = seg[3 + 2 * count]! & 15;
  for (let i = 0; i < count; i++) {
    const id = seg[1 + 2 * i]!;
    const c = frame.components.find((x) => x.id === id);
    if (c === undefined) throw new ImageError(name, `corrupt JPEG: scan refers to unknown component ${id}`);
    const dcId = seg[2 + 2 * i]! >> 4;
    const acId = seg[2 + 2 * i]! & 15;
    const needsDc = !frame.progressive || (ss === 0 && ah === 0);
    const needsAc = !frame.progressive || ss > 0;
    c.dcTable = needsDc ? (dc[dcId] ?? null) : null;
    c.acTable = needsAc ? (ac[acId] ?? null) : null;
    if (needsDc && c.dcTable === null) {
      throw new ImageError(name, `corrupt JPEG: DC Huffman table ${dcId} is not defined`);
    }
    if (needsAc && c.acTable === null) {
      throw new ImageError(name, `corrupt JPEG: AC Huffman table ${acId} is not defined`);
    }
    components.push(c);
  }
  if (frame.progressive && (se > 63 || ss > se || (ss === 0 && se !== 0) || (ss > 0 && count !== 1) || al > 13)) {
    throw new ImageError(name, `corrupt JPEG: invalid progressive scan parameters Ss=${ss} Se=${se} Ah=${ah} Al=${al}`);
  }
  return { components, ss, se, ah, al };
}

function toImage(f: Frame, jfif: boolean, adobeTransform: number, orientation: number, name: string): DecodedImage {
  const { width, height, hmax, vmax } = f;
  const planes = f.components.map((c) => {
    if (hmax % c.h !== 0 || vmax % c.v !== 0) {
      throw new ImageError(name, `unsupported JPEG: fractional sampling ratio ${hmax}/${c.h} x ${vmax}/${c.v}`);
    }
    const plane = {
      data: c.plane,
      stride: c.blocksPerLineMcu * 8,
      width: Math.ceil((width * c.h) / hmax),
      height: Math.ceil((height * c.v) / vmax),
    };
    return upsample(plane, hmax / c.h, vmax / c.v, width, height);
  });
  const base = { width, height, format: 'jpeg' as const, bitDepth: 8, orientation };
  if (planes.length === 1) return { ...base, channels: 1, data: planes[0]! };
  const data = new Uint8Array(width * height * 3);
  if (planes.length === 4) {
    cmykToRgb(planes, adobeTransform > 0, data);
    return { ...base, channels: 3, data };
  }
  const ids = f.components.map((c) => c.id).join(',');
  const rgb = jfif ? false : adobeTransform >= 0 ? adobeTransform === 0 : ids === '82,71,66';
  if (rgb) {
    const [r, g, b] = planes as [Uint8Array, Uint8Array, Uint8Array];
    for (let i = 0; i < width * height; i++) {
      data[3 * i] = r[i]!;
      data[3 * i + 1] = g[i]!;
      data[3 * i + 2] = b[i]!;
    }
  } else {
    yccToRgb(planes[0]!, planes[1]!, planes[2]!, data);
  }
  return { ...base, channels: 3, data };
}
