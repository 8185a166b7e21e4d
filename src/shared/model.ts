import { type TArray, type TBoolean, type TInteger, type TRefUnsafe, type TSchema, type TString, Type } from '@sinclair/typebox'
import { Elysia, t } from 'elysia'
import { REASONS } from './errors'
import { PLAIN_TEXT_PATTERN, PLAIN_TEXT_RULE, plainText, RAW_LENGTH_FACTOR, VISIBLE_TEXT_PATTERN, VISIBLE_TEXT_RULE } from './text'

/** The `$id` of a schema registered with `.model()`: other schemas then embed it as `t.Ref(Schema)`. */
export const componentId = (name: string) => `#/components/schemas/${name}`

/** For response fields: Elysia's t.Integer documents itself as "integer or numeric string" (for query coercion). */
export const Count = (description?: string) => Type.Integer({ minimum: 0, description })

/** Any text, but every surrogate paired: an unpaired one would be hashed as U+FFFD, so that two passwords would match. */
export const PAIRED_SURROGATES_PATTERN = String.raw`^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$`

export const USERNAME_PATTERN = '^[A-Za-z0-9_.-]+$'

/** The shape of a BCP 47 language tag and of an IANA time zone name, which starts with a letter (Intl also takes offsets such as +03, which are no zone); which of them exist, the service checks. */
export const LOCALE_PATTERN = '^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$'
export const TIME_ZONE_PATTERN = '^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$'

/** An email address as HTML's input type=email takes it (the WHATWG definition), which is what a form in a browser sends. */
export const EMAIL_PATTERN =
  "^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"

/** A phone number in E.164: a plus, then up to 15 digits, the first not 0. */
export const E164_PATTERN = '^\\+[1-9][0-9]{1,14}$'

/** What a value matching each pattern may hold, for 422 details (the patterns themselves say it badly). */
export const PATTERN_MEANINGS: Record<string, string> = {
  [PLAIN_TEXT_PATTERN]: PLAIN_TEXT_RULE,
  [VISIBLE_TEXT_PATTERN]: VISIBLE_TEXT_RULE,
  [PAIRED_SURROGATES_PATTERN]: 'must not contain unpaired surrogates',
  [USERNAME_PATTERN]: 'may hold only the letters A-Z and a-z, digits, and _ . -',
  [EMAIL_PATTERN]: 'must be an email address, such as alice@example.com',
  [E164_PATTERN]: 'must be a phone number in E.164: + and up to 15 digits, such as +79161234567',
  [LOCALE_PATTERN]: 'must be a BCP 47 language tag, such as en or ru-RU',
  [TIME_ZONE_PATTERN]: 'must be an IANA time zone, such as Europe/Moscow or UTC',
}

/**
 * Free text that reaches the store (shared/text.ts): plain, normalised to NFC so that one name is
 * stored one way, its `maxLength` counted after NFC (the raw text may be RAW_LENGTH_FACTOR times
 * longer), and, when it may not be empty (`minLength`), with something visible in it. `field`
 * names it in the 422.
 */
export const Text = (options: Parameters<typeof t.String>[0] = {}, field = '/') => {
  const { maxLength, minLength } = options
  const visible = (minLength ?? 0) > 0
  const described = maxLength === undefined ? options.description : [options.description, `at most ${maxLength} characters after NFC`].filter(Boolean).join('; ')
  const pattern = visible ? VISIBLE_TEXT_PATTERN : PLAIN_TEXT_PATTERN
  // The limit after NFC, for machines too: a specification extension, as JSON Schema has no word for it.
  const limit = maxLength === undefined ? {} : { 'x-nfc-max-length': maxLength }
  return t
    .Transform(t.String({ pattern, ...options, maxLength: maxLength && maxLength * RAW_LENGTH_FACTOR, description: described, ...limit }))
    .Decode((value) => plainText(value, { field, maxLength, visible }))
    .Encode((value) => value)
}

export const Uuid = t.String({ format: 'uuid', examples: ['01936b2e-7c4a-7f3e-9b1d-2f5c8a9e4d10'] })
/** An id in a path, its example one of the demo data's (shared/demo.ts): Try it out works as it is on a demo database. */
export const DemoId = (example: string) => t.String({ format: 'uuid', examples: [example] })
export const Timestamp = t.String({ format: 'date-time', examples: ['2026-11-22T13:04:05.123Z'] })

// Closed sets of strings are unions of literals: Elysia's t.UnionEnum would also make the first value the default.

/** `true`/`false`, also `1`/`0`, as query strings carry them. */
export const QueryBoolean = t
  .Transform(t.Union([t.Literal('true'), t.Literal('false'), t.Literal('1'), t.Literal('0')], { error: 'must be true, false, 1 or 0' }))
  .Decode((value) => value === 'true' || value === '1')
  .Encode((value) => (value ? 'true' : 'false'))

export const PAGE_SIZE = 50
/** Deep pages cost a walk over every row before them; past a million, narrow the filters instead. */
export const MAX_OFFSET = 1_000_000

export const Pagination = {
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: PAGE_SIZE, description: 'page size' })),
  offset: t.Optional(t.Integer({ minimum: 0, maximum: MAX_OFFSET, default: 0, description: `rows to skip, at most ${MAX_OFFSET}` })),
}

export const SuccessResponse = t.Object(
  { success: t.Boolean(), message: t.String(), timestamp: Timestamp },
  { $id: componentId('SuccessResponse') },
)

/** The envelope's `reason` (and a realtime error frame's): the REASONS, each with its meaning. */
export const ErrorReason = Type.String({
  enum: Object.keys(REASONS),
  description: `On a 403 or a 409: what exactly was refused.\n${Object.entries(REASONS).map(([reason, meaning]) => `- ${reason}: ${meaning}`).join('\n')}`,
})

export const ErrorResponse = t.Object({
  success: t.Literal(false),
  message: t.String(),
  timestamp: Timestamp,
  error: t.String({ examples: ['validation_error'] }),
  reason: t.Optional(ErrorReason),
  details: t.Optional(t.Array(t.Object({ field: t.String(), message: t.String() }))),
}, { $id: componentId('ErrorResponse') })

export const sharedModels = new Elysia({ name: 'models.shared' }).model({ SuccessResponse, ErrorResponse })

/**
 * What a route's answers mean where it says more than the status does in general (the document
 * names each status's codes otherwise): `detail: { responses: answers({ 409: '...' }) }`.
 */
export function answers(descriptions: Record<number, string>): Record<string, { description: string }> {
  return Object.fromEntries(Object.entries(descriptions).map(([status, description]) => [status, { description }]))
}

/** The error statuses a route can answer, each documented with the envelope schema. */
export function errors<Status extends number>(...statuses: Status[]) {
  return Object.fromEntries(statuses.map((status) => [status, 'ErrorResponse'])) as Record<Status, 'ErrorResponse'>
}

/**
 * The schema of a list answer, registered as component `name`: `success`, `timestamp`, the page of
 * `item`s under `key` and the `total_count` of what the filters match (see listAnswer below).
 */
export function ListResponse<Key extends string, Item extends TSchema>(name: string, key: Key, item: Item) {
  const properties = {
    success: t.Boolean(),
    timestamp: Timestamp,
    [key]: t.Array(t.Ref(item)),
    total_count: Count(`${key} matching the filters, ignoring limit and offset`),
  } as { success: TBoolean; timestamp: TString; total_count: TInteger } & Record<Key, TArray<TRefUnsafe<Item>>>
  return t.Object(properties, { $id: componentId(name) })
}

/** The answer of every list route: `success`, `timestamp`, the page under its own name, and `total_count`. */
export function listAnswer<Key extends string, Item>(key: Key, items: Item[], total: number) {
  return { success: true, timestamp: new Date().toISOString(), [key]: items, total_count: total } as {
    success: boolean
    timestamp: string
    total_count: number
  } & Record<Key, Item[]>
}

export function success(message: string) {
  return { success: true, message, timestamp: new Date().toISOString() }
}
