/**
 * Just enough of PNG to check a screenshot: the signature, the IHDR, the IDAT stream inflated
 * with zlib and its rows unfiltered, for 8-bit RGB and RGBA images (what Chromium writes).
 */
import { inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface Image {
  width: number;
  height: number;
  /** Bytes per pixel: 3 (RGB) or 4 (RGBA). */
  channels: number;
  /** Unfiltered rows, `width * channels` bytes each. */
  pixels: Buffer;
}

/** Decodes `png`; throws when it is not an 8-bit RGB(A), non-interlaced PNG. */
export function decodePng(png: Buffer): Image {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG: bad signature');
  let offset = 8;
  let header: { width: number; height: number; channels: number } | undefined;
  const data: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') header = ihdr(body);
    else if (type === 'IDAT') data.push(body);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  if (header === undefined) throw new Error('not a PNG: no IHDR');
  const raw = inflateSync(Buffer.concat(data));
  return { ...header, pixels: unfilter(raw, header.width, header.height, header.channels) };
}

function ihdr(body: Buffer): { width: number; height: number; channels: number } {
  const [depth, color, , , interlace] = body.subarray(8, 13);
  if (depth !== 8 || (color !== 2 && color !== 6) || interlace !== 0) {
    throw new Error(`PNG of depth ${depth}, colour type ${color}, interlace ${interlace}: only 8-bit RGB(A) is read`);
  }
  return { width: body.readUInt32BE(0), height: body.readUInt32BE(4), channels: color === 6 ? 4 : 3 };
}

function unfilter(raw: Buffer, width: number, height: number, channels: number): Buffer {
  const stride = width * channels;
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? (out[y * stride + x - channels] as number) : 0;
      const up = y > 0 ? (out[(y - 1) * stride + x] as number) : 0;
      const upLeft = y > 0 && x >= channels ? (out[(y - 1) * stride + x - channels] as number) : 0;
      out[y * stride + x] = ((row[x] as number) + predict(filter, left, up, upLeft)) & 0xff;
    }
  }
  return out;
}

function predict(filter: number | undefined, left: number, up: number, upLeft: number): number {
  switch (filter) {
    case 0:
      return 0;
    case 1:
      return left;
    case 2:
      return up;
    case 3:
      return (left + up) >> 1;
    case 4: {
      const p = left + up - upLeft;
      const [pa, pb, pc] = [Math.abs(p - left), Math.abs(p - up), Math.abs(p - upLeft)];
      if (pa <= pb && pa <= pc) return left;
      return pb <= pc ? up : upLeft;
    }
    default:
      throw new Error(`PNG row filter ${filter} is not one of 0-4`);
  }
}

/** How many pixels of `image` are exactly the colour `#rrggbb`. */
export function countColour(image: Image, hex: string): number {
  const [r, g, b] = [1, 3, 5].map((at) => Number.parseInt(hex.slice(at, at + 2), 16));
  let count = 0;
  for (let i = 0; i < image.pixels.length; i += image.channels) {
    if (image.pixels[i] === r && image.pixels[i + 1] === g && image.pixels[i + 2] === b) count++;
  }
  return count;
}
