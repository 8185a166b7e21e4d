import { invalidField } from './errors'

/**
 * Characters free text never holds: controls (NUL among them, which PostgreSQL cannot store);
 * bidirectional marks, overrides and isolates (they make a name display as another); invisible
 * format characters that make a text look empty or like another (zero-width space, word joiners,
 * BOM, soft hyphen, combining grapheme joiner, Hangul fillers, Khmer inherent vowels, the Mongolian
 * vowel separator, the deprecated format controls U+206A-206F, interlinear annotations, line and
 * paragraph separators); and surrogates, which are allowed only in pairs (below).
 */
const REFUSED = String.raw`\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\ud800-\udfff`

/**
 * Characters allowed that show nothing on their own: spaces; combining marks (the combining
 * blocks, and the Cyrillic, Hebrew and Arabic ones); zero-width joiners and variation selectors
 * (emoji need both); and the Braille blank. A text that must not be empty needs one character
 * besides these (or besides the supplementary variation selectors, INVISIBLE_PAIR).
 */
const INVISIBLE = String.raw`\u0020\u00a0\u0300-\u034e\u0350-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed\u1680\u180b-\u180d\u180f\u1ab0-\u1aff\u1dc0-\u1dff\u2000-\u200a\u200c\u200d\u202f\u205f\u20d0-\u20ff\u2800\u3000\ufe00-\ufe0f\ufe20-\ufe2f`
/** The supplementary variation selectors, U+E0100-E01EF. */
const INVISIBLE_PAIR = String.raw`\udb40[\udd00-\uddef]`

/**
 * A pair of surrogates, but none of the refused astral characters: shorthand format controls
 * (U+1BCA0-1BCA3), musical format symbols (U+1D173-1D17A) and tag characters (U+E0000-E007F).
 * Their leading surrogates are split around them, as a pattern without lookarounds must.
 */
const PAIR_BUT_PLANE_14 = String.raw`[\ud800-\ud82e\ud830-\ud833\ud835-\udb3f\udb41-\udbff][\udc00-\udfff]|\ud82f[\udc00-\udc9f\udca4-\udfff]|\ud834[\udc00-\udd72\udd7b-\udfff]`
const PAIR = `${PAIR_BUT_PLANE_14}|\\udb40[\\udc80-\\udfff]`

const ALLOWED = `[^${REFUSED}]|${PAIR}`
/** A character that shows: not refused, not invisible (plane 14 past the tags holds only the variation selectors and unassigned points). */
const SHOWN = `[^${REFUSED}${INVISIBLE}]|${PAIR_BUT_PLANE_14}|\\udb40[\\uddf0-\\udfff]`

/**
 * Plain text, as a pattern for both regular-expression modes (TypeBox and JSON Schema use none of
 * the `u` flag's features): only allowed characters, surrogates in pairs.
 */
export const PLAIN_TEXT_PATTERN = `^(?:${ALLOWED})*$`

/**
 * Plain text with something to see: invisible characters first, then one that shows, then any
 * allowed ones. Each part can only take what the next cannot, so a match never backtracks far.
 */
export const VISIBLE_TEXT_PATTERN = `^(?:[${INVISIBLE}]|${INVISIBLE_PAIR})*(?:${SHOWN})(?:${ALLOWED})*$`

const PLAIN_TEXT = new RegExp(PLAIN_TEXT_PATTERN)
const VISIBLE_TEXT = new RegExp(VISIBLE_TEXT_PATTERN)

export const PLAIN_TEXT_RULE = 'must not contain control, invisible or bidirectional-override characters, or unpaired surrogates'
export const VISIBLE_TEXT_RULE = `must contain a visible character, not only spaces, marks or joiners, and ${PLAIN_TEXT_RULE.replace('must not contain', 'no')}`

/**
 * How much longer than its limit a text may arrive: limits count characters after NFC, which
 * composes a letter and its accents into one (U+0065 U+0301 is é) and at most triples one (U+FB2C).
 */
export const RAW_LENGTH_FACTOR = 4

/**
 * Free text as it is stored, by the same rules wherever it arrives (a schema, a websocket frame):
 * plain, normalised to NFC so that one text is stored one way, at most `maxLength` characters once
 * normalised, and, when `visible`, with something to see.
 */
export function plainText(raw: string, { field, maxLength, visible }: { field: string; maxLength?: number; visible: boolean }): string {
  const text = raw.normalize('NFC')
  if (!(visible ? VISIBLE_TEXT : PLAIN_TEXT).test(text)) throw invalidField(field, visible ? VISIBLE_TEXT_RULE : PLAIN_TEXT_RULE)
  if (maxLength !== undefined && text.length > maxLength) throw invalidField(field, `must be at most ${maxLength} characters once normalised (NFC)`)
  return text
}
