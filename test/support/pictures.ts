/**
 * Pictures for the avatar tests, good and hostile, made here byte by byte (PNG chunks, JPEG
 * segments) or by Bun.Image, so that each test says exactly what it sends.
 */

import { pngChunk, rgbPng, zlibStream } from '../../src/lib/png'

const ONE_PIXEL_PNG = Uint8Array.fromBase64('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')

/** A real picture of the size asked, in the format asked; `shade` makes pictures of the same size differ. */
export async function picture(format: 'png' | 'jpeg' | 'webp', width = 64, height = 48, shade = 1): Promise<Uint8Array> {
  const image = new Bun.Image(ONE_PIXEL_PNG).resize(width, height).modulate({ brightness: shade })
  return (format === 'png' ? image.png() : format === 'jpeg' ? image.jpeg() : image.webp()).bytes()
}

/** A PNG whose header claims `width` × `height` while its data would inflate to that many zero pixels, and no more than a few bytes arrive: a decompression bomb's header. */
export function bombPng(width: number, height: number): Uint8Array {
  // A megabyte of zero rows, deflated to about a kilobyte: the start of what the header promises.
  return rgbPng(width, height, zlibStream(new Uint8Array(1_048_576)))
}

/** The PNG with a chunk added before its end. */
export function withPngChunk(png: Uint8Array, type: string, data: Uint8Array): Uint8Array {
  const end = png.length - 12
  return concat(png.subarray(0, end), pngChunk(type, data), png.subarray(end))
}

/**
 * The JPEG with an EXIF block (APP1) right after its start: an IFD0 with an ImageDescription and a
 * pointer to a GPS IFD holding latitude and longitude, as a phone writes them.
 */
export function withExifGps(jpeg: Uint8Array, secret: string): Uint8Array {
  const description = new TextEncoder().encode(`${secret}\0`)
  // TIFF, big-endian: header (8), IFD0 with 2 entries (2 + 24 + 4), GPS IFD with 4 entries (2 + 48 + 4), then the values.
  const ifd0 = 8
  const gps = ifd0 + 2 + 2 * 12 + 4
  const values = gps + 2 + 4 * 12 + 4
  const latitude = values
  const longitude = latitude + 24
  const text = longitude + 24
  const tiff = new Uint8Array(text + description.length)
  const view = new DataView(tiff.buffer)
  tiff.set([0x4d, 0x4d, 0x00, 0x2a], 0)
  view.setUint32(4, ifd0)
  const entry = (at: number, tag: number, type: number, count: number, value: number) => {
    view.setUint16(at, tag)
    view.setUint16(at + 2, type)
    view.setUint32(at + 4, count)
    if (type === 2 && count <= 4) tiff.set(new TextEncoder().encode(String.fromCharCode(value)), at + 8)
    else view.setUint32(at + 8, value)
  }
  view.setUint16(ifd0, 2)
  entry(ifd0 + 2, 0x010e, 2, description.length, text) // ImageDescription
  entry(ifd0 + 14, 0x8825, 4, 1, gps) // GPS IFD
  view.setUint16(gps, 4)
  entry(gps + 2, 0x0001, 2, 2, 'N'.charCodeAt(0)) // GPSLatitudeRef
  entry(gps + 14, 0x0002, 5, 3, latitude) // GPSLatitude
  entry(gps + 26, 0x0003, 2, 2, 'E'.charCodeAt(0)) // GPSLongitudeRef
  entry(gps + 38, 0x0004, 5, 3, longitude) // GPSLongitude
  for (const [at, [degrees, minutes, seconds]] of [
    [latitude, [55, 45, 21]],
    [longitude, [37, 37, 4]],
  ] as const)
    [degrees, minutes, seconds].forEach((part, index) => {
      view.setUint32(at + index * 8, part)
      view.setUint32(at + index * 8 + 4, 1)
    })
  tiff.set(description, text)
  const payload = concat(new TextEncoder().encode('Exif\0\0'), tiff)
  const segment = new Uint8Array(4 + payload.length)
  segment.set([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff])
  segment.set(payload, 4)
  return concat(jpeg.subarray(0, 2), segment, jpeg.subarray(2))
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(parts.reduce((size, part) => size + part.length, 0))
  let offset = 0
  for (const part of parts) {
    whole.set(part, offset)
    offset += part.length
  }
  return whole
}

export function contains(haystack: Uint8Array, needle: string): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle, 'latin1'))
}
