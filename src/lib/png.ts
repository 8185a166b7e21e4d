/**
 * Writing a PNG (RFC 2083) from rows of pixels: Bun.Image reads pictures but makes none from pixels.
 * For the demo avatars, and for tests that need a PNG byte by byte.
 */

export const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** A chunk: length, type, data, and the CRC-32 of type and data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const body = Buffer.concat([new TextEncoder().encode(type), data])
  const chunk = new Uint8Array(body.length + 8)
  const view = new DataView(chunk.buffer)
  view.setUint32(0, data.length)
  chunk.set(body, 4)
  view.setUint32(chunk.length - 4, Bun.hash.crc32(body))
  return chunk
}

/** A whole PNG of 8-bit RGB pixels whose IDAT holds `compressed` (see zlibStream); the header says `width` × `height`, whatever the rows hold. */
export function rgbPng(width: number, height: number, compressed: Uint8Array): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(13)
  const view = new DataView(header.buffer)
  view.setUint32(0, width)
  view.setUint32(4, height)
  header.set([8, 2, 0, 0, 0], 8)
  return new Uint8Array(Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', header), pngChunk('IDAT', compressed), pngChunk('IEND', new Uint8Array())]))
}

/** A zlib stream (RFC 1950) of `rows`, each a filter byte and its pixels: header, raw deflate, Adler-32. */
export function zlibStream(rows: Uint8Array<ArrayBuffer>): Uint8Array {
  let a = 1
  let b = 0
  for (const byte of rows) {
    a = (a + byte) % 65_521
    b = (b + a) % 65_521
  }
  const checksum = new Uint8Array(4)
  new DataView(checksum.buffer).setUint32(0, ((b << 16) | a) >>> 0)
  return Buffer.concat([new Uint8Array([0x78, 0x9c]), Bun.deflateSync(rows), checksum])
}
