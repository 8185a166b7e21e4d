import { nextTurn, turnsEvery } from '../../db/batches'
import { PNG_SIGNATURE } from '../../lib/png'
import { invalidField, unavailable, unsupportedMediaType } from '../../shared/errors'

export interface ImagePolicy {
  /** The widest or tallest picture accepted, read from its header before anything is decoded. */
  maxDimension: number
  /** Stored pictures fit in a square this size. */
  size: number
  /** Pictures checked and decoded at once (each decode holds width × height × 4 bytes and a core). */
  concurrency: number
  /** Pictures waiting for a slot, at most; then 503. */
  queueLimit: number
}

export type Format = 'png' | 'jpeg' | 'webp'

/** An avatar ready to store: WebP, without metadata, and the SHA-256 of its bytes (its address). */
export interface Avatar {
  bytes: Uint8Array
  sha256: string
}

const FIELD = '/avatar_file'
const NAMES: Record<Format, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP' }
/** What a file's name or declared type may claim, and the format that claim means (Bun 1.4's multipart parser drops a part's type; the name stays). */
const CLAIMS: Array<[RegExp, Format]> = [
  [/\.png$|^image\/png$/i, 'png'],
  [/\.jpe?g$|^image\/jpe?g$/i, 'jpeg'],
  [/\.webp$|^image\/webp$/i, 'webp'],
]
/**
 * Markup that makes a picture a polyglot: a browser or an interpreter would read it as a page or a
 * script. (XML alone is not: phones write their XMP metadata as XML.)
 */
const MARKUP = ['script', 'html', 'svg', 'iframe', 'body', '!doctype', '?php']
const LESS_THAN = 0x3c

/**
 * Turns an uploaded file into an avatar, trusting nothing about it. Its content decides what it is
 * (magic bytes, then the container walked to its end: nothing may be missing, and nothing may follow
 * but zeros or the further JPEGs phones append; no markup inside),
 * never its name or declared type, which may only agree. Its dimensions are read from the header
 * before any pixel is decoded; then Bun.Image decodes it (off the JavaScript thread), turns it upright, scales it to fit `size` and writes a WebP of its own:
 * whatever metadata came in (EXIF and its GPS, comments, colour profiles) stays behind.
 */
export class AvatarImages {
  #running = 0
  readonly #waiting: Array<() => void> = []

  constructor(private readonly policy: ImagePolicy) {}

  /** The whole of it runs in a slot of `concurrency`: its walk takes turns of the event loop, its decode a core. */
  prepare(file: File): Promise<Avatar> {
    return this.#limited(async () => {
      const bytes = new Uint8Array(await file.arrayBuffer())
      await nextTurn()
      if (bytes.length === 0) throw invalidField(FIELD, 'is empty')
      const format = formatOf(bytes)
      if (!format) throw unsupportedMediaType('avatar_file must be a PNG, JPEG or WebP picture (SVG, GIF and others are refused)')
      const claimed = [file.name, file.type].flatMap((label) => CLAIMS.filter(([pattern]) => pattern.test(label)).map(([, claim]) => claim))
      const wrongClaim = claimed.find((claim) => claim !== format)
      if (wrongClaim) throw unsupportedMediaType(`avatar_file says it is ${NAMES[wrongClaim]} but holds ${NAMES[format]}; name it for what it is`)
      const problem = (await CONTAINERS[format](bytes)) ?? (await markupProblem(bytes))
      if (problem) throw invalidField(FIELD, problem)
      const { maxDimension, size } = this.policy
      // The header only, whatever it claims (Bun's own limit would refuse a bomb with a vaguer message).
      const header = await new Bun.Image(bytes, { maxPixels: 2 ** 50 }).metadata().catch(() => undefined)
      if (!header || header.format !== format) throw invalidField(FIELD, `is not a readable ${NAMES[format]} picture`)
      if (header.width > maxDimension || header.height > maxDimension)
        throw invalidField(FIELD, `must be at most ${maxDimension}×${maxDimension} pixels; this one is ${header.width}×${header.height}`)
      const webp = await new Bun.Image(bytes, { maxPixels: maxDimension * maxDimension, autoOrient: true })
        .resize(size, size, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 85 })
        .bytes()
        .catch(() => {
          throw invalidField(FIELD, `is not a whole ${NAMES[format]} picture: it cannot be decoded`)
        })
      return { bytes: webp, sha256: new Bun.CryptoHasher('sha256').update(webp).digest('hex') }
    })
  }

  async #limited<Result>(work: () => Promise<Result>): Promise<Result> {
    if (this.#running >= this.policy.concurrency) {
      if (this.#waiting.length >= this.policy.queueLimit) throw unavailable('Too many avatars are being processed; try again shortly', 1)
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    } else this.#running++
    try {
      return await work()
    } finally {
      // A waiting picture takes this slot over; otherwise it is free.
      const next = this.#waiting.shift()
      if (next) next()
      else this.#running--
    }
  }
}

/** A tag of MARKUP anywhere in the bytes, in any case, followed by a space, `>` or `/`; looked for without copying them. */
async function markupProblem(bytes: Uint8Array): Promise<string | undefined> {
  const step = turnsEvery(STEPS_PER_TURN)
  for (let at = bytes.indexOf(LESS_THAN); at !== -1; at = bytes.indexOf(LESS_THAN, at + 1)) {
    await step()
    const after = String.fromCharCode(...bytes.subarray(at + 1, at + 10)).toLowerCase()
    if (MARKUP.some((tag) => after.startsWith(tag) && /^[\s>/]/.test(after.slice(tag.length))))
      return 'carries markup (HTML, SVG or a script) inside the picture: a polyglot is refused'
  }
  return undefined
}

function formatOf(bytes: Uint8Array): Format | undefined {
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png'
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg'
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp'
  return undefined
}

/**
 * Each format's container, walked from its start to its end: what is wrong with it, if anything. A
 * file of 5 MB can hold 400,000 empty chunks or 2.5 million stuffed bytes: every STEPS_PER_TURN
 * steps the walk lets the event loop take a turn (it would otherwise hold it for 50 to 100 ms; 1,024
 * steps take 2 to 3 ms on a small machine).
 */
const CONTAINERS: Record<Format, (bytes: Uint8Array) => Promise<string | undefined>> = { png: pngProblem, jpeg: jpegProblem, webp: webpProblem }
const STEPS_PER_TURN = 1024

const TRUNCATED = 'is cut short: the picture does not end where its format says'
const TRAILING = 'carries data after the end of the picture: a polyglot is refused'
/**
 * Scans a JPEG may have: a progressive photo has about ten. Each scan is decoded over the whole
 * picture, so thousands of tiny ones are a bomb of decoding time in a file of a few kilobytes.
 */
const MAX_JPEG_SCANS = 64

/** What may follow a picture's end: zeros a writer padded with, or (JPEG) the further pictures phones append. */
function trailerProblem(bytes: Uint8Array, end: number, format: Format): string | undefined {
  const trailer = bytes.subarray(end)
  if (Buffer.from(trailer.buffer, trailer.byteOffset, trailer.length).equals(Buffer.alloc(trailer.length))) return undefined
  // An Ultra HDR gain map, a Multi-Picture Format preview: another JPEG, never decoded here.
  if (format === 'jpeg' && trailer[0] === 0xff && trailer[1] === 0xd8 && trailer[2] === 0xff) return undefined
  return TRAILING
}

/** Chunk by chunk (length, type, data, CRC-32 over type and data) up to IEND, which must end the file. */
async function pngProblem(bytes: Uint8Array): Promise<string | undefined> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const step = turnsEvery(STEPS_PER_TURN)
  let offset = PNG_SIGNATURE.length
  while (offset + 12 <= bytes.length) {
    await step()
    const length = view.getUint32(offset)
    const end = offset + 12 + length
    if (end > bytes.length) return TRUNCATED
    const crc = view.getUint32(end - 4)
    if (Bun.hash.crc32(bytes.subarray(offset + 4, end - 4)) !== crc) return 'is damaged: a chunk fails its checksum'
    if (isIend(bytes, offset + 4)) return trailerProblem(bytes, end, 'png')
    offset = end
  }
  return TRUNCATED
}

/**
 * Segment by segment from SOI to EOI, through the entropy-coded data after each SOS (where 0xFF is
 * followed by 0x00 as a stuffed byte, or by a restart marker): libjpeg-turbo would fill the missing
 * end of a truncated file with grey and call it a picture.
 */
async function jpegProblem(bytes: Uint8Array): Promise<string | undefined> {
  const step = turnsEvery(STEPS_PER_TURN)
  let offset = 2
  let scans = 0
  for (;;) {
    await step()
    if (offset >= bytes.length) return TRUNCATED
    if (bytes[offset] !== 0xff) return 'is damaged: a segment does not start where the previous one ends'
    while (bytes[offset] === 0xff) offset++
    const marker = bytes[offset++]
    if (marker === undefined) return TRUNCATED
    if (marker === 0xd9) return trailerProblem(bytes, offset, 'jpeg')
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue
    if (offset + 2 > bytes.length) return TRUNCATED
    const length = (bytes[offset]! << 8) | bytes[offset + 1]!
    if (length < 2) return 'is damaged: a segment has an impossible length'
    offset += length
    if (marker !== 0xda) continue
    if (++scans > MAX_JPEG_SCANS) return `has more than ${MAX_JPEG_SCANS} scans: no camera or editor writes that many`
    // The scan's data runs to the next marker that is not a stuffed byte or a restart.
    for (;;) {
      await step()
      offset = bytes.indexOf(0xff, offset)
      if (offset === -1) return TRUNCATED
      const next = bytes[offset + 1]
      if (next === undefined) return TRUNCATED
      if (next === 0x00 || next === 0xff || (next >= 0xd0 && next <= 0xd7)) offset += next === 0xff ? 1 : 2
      else break
    }
  }
}

/** The chunks inside the RIFF container must fill exactly the size its header declares; animations are refused. */
async function webpProblem(bytes: Uint8Array): Promise<string | undefined> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (bytes.length < 12) return TRUNCATED
  const declared = view.getUint32(4, true) + 8
  if (declared > bytes.length) return TRUNCATED
  const step = turnsEvery(STEPS_PER_TURN)
  let offset = 12
  while (offset + 8 <= declared) {
    await step()
    const type = ascii(bytes, offset, offset + 4)
    if (type === 'ANIM' || type === 'ANMF') return 'is animated: send a still picture'
    const size = view.getUint32(offset + 4, true)
    offset += 8 + size + (size % 2)
  }
  return offset === declared ? trailerProblem(bytes, declared, 'webp') : TRUNCATED
}

/** Whether the chunk type at `at` is IEND (compared byte by byte: this runs once per chunk). */
const isIend = (bytes: Uint8Array, at: number) => bytes[at] === 0x49 && bytes[at + 1] === 0x45 && bytes[at + 2] === 0x4e && bytes[at + 3] === 0x44

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return prefix.every((byte, index) => bytes[index] === byte)
}

function ascii(bytes: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...bytes.subarray(from, to))
}
