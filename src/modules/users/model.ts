import type { TLiteral, TSchema } from '@sinclair/typebox'
import { Elysia, t } from 'elysia'
import type { AuthGuard } from '../../plugins/auth'
import { NETWORK_NAMES, NETWORKS } from './networks'
import {
  componentId,
  DemoId,
  E164_PATTERN,
  EMAIL_PATTERN,
  LOCALE_PATTERN,
  PATTERN_MEANINGS,
  ListResponse,
  PAIRED_SURROGATES_PATTERN,
  Pagination,
  QueryBoolean,
  sharedModels,
  Text,
  TIME_ZONE_PATTERN,
  Timestamp,
  USERNAME_PATTERN,
  Uuid,
} from '../../shared/model'
import { DEMO_IDS } from '../../shared/demo'

const usernameRules = { minLength: 3, maxLength: 32, pattern: USERNAME_PATTERN, description: '3..32 of A-Z a-z 0-9 _ . -, unique ignoring case' }
export const Username = t.String({ ...usernameRules, examples: ['alice'] })
/** The name of an account to make: its example is one the demo data does not hold yet. */
export const NewUsername = t.String({ ...usernameRules, examples: ['frank'] })
export const Password = t.String({
  minLength: 8,
  maxLength: 128,
  pattern: PAIRED_SURROGATES_PATTERN,
  description: '8..128 characters, any (surrogates paired)',
  examples: ['demo-password'],
})
export const UserRole = t.Union([t.Literal('user'), t.Literal('admin')])
export const UserStatus = t.Union([t.Literal('active'), t.Literal('inactive'), t.Literal('deleted')], {
  description: 'deleted: by its owner or an admin, restorable until USER_PURGE_AFTER, then erased',
})

/** A field that null clears; `meaning` is what a 422 says it must be (a union's own message would say nothing). */
const Nullable = <Schema extends TSchema>(schema: Schema, meaning: string) => t.Optional(t.Union([schema, t.Null()], { error: `${meaning}, or null` }))
const patterned = (pattern: string, options: Parameters<typeof t.String>[0]) =>
  Nullable(t.String({ ...options, pattern }), `${PATTERN_MEANINGS[pattern]}${options?.maxLength ? ` (at most ${options.maxLength} characters)` : ''}`)
const Name = (field: string, what: string) =>
  Nullable(
    Text({ minLength: 1, maxLength: 64, description: `${what}; null clears it` }, `/${field}`),
    'must be 1..64 characters (after NFC) with something visible, and no control or invisible characters',
  )

/**
 * The profile as its owner (or an admin) sends it: every field optional, null clears one. Its
 * owner and admins see all of it (User); other players see only user_id, username and
 * display_name (a room's players, a conversation's peer).
 */
export const ProfileChanges = {
  display_name: Name('display_name', 'the name other players see'),
  firstname: Name('firstname', 'first name (private)'),
  lastname: Name('lastname', 'last name (private)'),
  middlename: Name('middlename', 'middle name or patronymic (private)'),
  email: patterned(EMAIL_PATTERN, { maxLength: 254, description: 'private; unique ignoring case; null clears it', examples: ['frank@example.com'] }),
  phone: patterned(E164_PATTERN, { description: 'private; E.164 (+ and up to 15 digits); null clears it', examples: ['+79161234567'] }),
  locale: patterned(LOCALE_PATTERN, {
    minLength: 2,
    maxLength: 35,
    description: 'a BCP 47 tag of a known language (and region), such as en or ru-RU, kept in canonical form',
    examples: ['ru-RU'],
  }),
  time_zone: patterned(TIME_ZONE_PATTERN, { maxLength: 64, description: 'an IANA time zone, such as Europe/Moscow, kept in canonical form', examples: ['Europe/Moscow'] }),
}

const networkLiterals = <const Names extends readonly string[]>(names: Names) =>
  names.map((name) => t.Literal(name)) as { -readonly [Index in keyof Names]: TLiteral<Names[Index]> }

export const SocialNetwork = t.Union(networkLiterals(NETWORK_NAMES), {
  description: Object.entries(NETWORKS)
    .map(([network, hosts]) => `${network}: ${hosts.join(', ')}`)
    .join('; '),
})

export const LinkedAccount = t.Object(
  {
    linked_account_id: Uuid,
    social_network: SocialNetwork,
    connection_link: t.String({
      format: 'uri',
      description: 'https, on one of the network’s hosts; kept without www., query or fragment',
      examples: ['https://vk.com/id1'],
    }),
    connected_for: t.String({ description: 'why it is linked, in the user’s words' }),
    connected_at: Timestamp,
  },
  { $id: componentId('LinkedAccount') },
)

const Reason = Text({ maxLength: 200, description: 'why it is linked', examples: ['to find teammates'] }, '/connected_for')

export const LinkAccountRequest = t.Object(
  {
    social_network: SocialNetwork,
    connection_link: t.String({ minLength: 1, maxLength: 512, examples: ['https://vk.com/id1'] }),
    connected_for: t.Optional(Reason),
  },
  { additionalProperties: false, $id: componentId('LinkAccountRequest') },
)

export const ChangeLinkRequest = t.Object({ connected_for: Reason }, { additionalProperties: false, $id: componentId('ChangeLinkRequest') })

export const LinkedAccountParams = t.Object({ linked_account_id: DemoId(DEMO_IDS.linkedAccounts.demo_admin) })
export const UserLinkedAccountParams = t.Object({ user_id: DemoId(DEMO_IDS.users.alice), linked_account_id: DemoId(DEMO_IDS.linkedAccounts.alice) })

export const LinkedAccountsResponse = ListResponse('LinkedAccountsResponse', 'linked_accounts', LinkedAccount)

const NullableString = (description: string) => t.Union([t.String(), t.Null()], { description })

/** What other players see of an account (a room's players, a conversation's peer); nothing private. */
export const PublicProfile = {
  user_id: Uuid,
  username: t.String(),
  display_name: NullableString('the name the user chose to be seen by (their profile)'),
  avatar_url: NullableString('where their avatar is read (null: none)'),
}

export const User = t.Object(
  {
    user_id: Uuid,
    username: t.String(),
    user_role: UserRole,
    is_active: t.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
    status: UserStatus,
    deleted_at: t.Union([Timestamp, t.Null()], { description: 'when it was deleted (status deleted)' }),
    display_name: NullableString('the name other players see'),
    firstname: NullableString('private: the user and admins only'),
    lastname: NullableString('private: the user and admins only'),
    middlename: NullableString('private: the user and admins only'),
    email: NullableString('private: the user and admins only'),
    phone: NullableString('private: the user and admins only; E.164'),
    locale: NullableString('BCP 47, canonical'),
    time_zone: NullableString('IANA'),
    avatar_url: NullableString('where the avatar is read (PUT /users/me/avatar sets it); public, like display_name'),
    linked_accounts: t.Optional(t.Array(t.Ref(LinkedAccount), { description: 'in GET /users/me and GET /users/{user_id}' })),
  },
  { $id: componentId('User'), description: 'An account as its owner and admins see it.' },
)

export const UserCreateRequest = t.Object(
  {
    username: NewUsername,
    password: Password,
    user_role: t.Optional(UserRole),
    is_active: t.Optional(t.Boolean()),
    ...ProfileChanges,
  },
  { additionalProperties: false, $id: componentId('UserCreateRequest') },
)

export const ChangeUserRequest = t.Object(
  {
    user_id: t.Optional(t.String({ description: "when given, must equal the target user's id" })),
    username: t.Optional(Username),
    user_role: t.Optional(UserRole),
    is_active: t.Optional(t.Boolean()),
    ...ProfileChanges,
  },
  { additionalProperties: false, $id: componentId('ChangeUserRequest') },
)

export const GetAllUsersRequest = t.Object(
  {
    is_active: t.Optional(QueryBoolean),
    role: t.Optional(UserRole),
    status: t.Optional(UserStatus),
    search: t.Optional(Text({ maxLength: 64, description: 'case-insensitive part of the username, the email, the display name or a name' }, '/search')),
    ...Pagination,
  },
  { additionalProperties: false, $id: componentId('GetAllUsersRequest') },
)

export const GetAllUsersResponse = ListResponse('GetAllUsersResponse', 'users', User)

export const UserIdParams = t.Object({ user_id: DemoId(DEMO_IDS.users.alice) })

export const DeleteMeRequest = t.Object(
  { password: t.String({ minLength: 1, maxLength: 128, pattern: PAIRED_SURROGATES_PATTERN, description: 'your current password', examples: ['demo-password'] }) },
  { additionalProperties: false, $id: componentId('DeleteMeRequest') },
)

export const DeleteUserQuery = t.Object(
  { permanent: t.Optional(QueryBoolean) },
  { additionalProperties: false, $id: componentId('DeleteUserQuery') },
)

export type User = typeof User.static
export type UserRole = typeof UserRole.static
export type UserChanges = Omit<typeof ChangeUserRequest.static, 'user_id'>
export type UserCreateRequest = typeof UserCreateRequest.static
export type UserFilter = typeof GetAllUsersRequest.static
export type LinkedAccount = typeof LinkedAccount.static
export type LinkAccountRequest = typeof LinkAccountRequest.static
export type Profile = Pick<User, 'display_name' | 'firstname' | 'lastname' | 'middlename' | 'email' | 'phone' | 'locale' | 'time_zone'>
export const PROFILE_FIELDS = Object.keys(ProfileChanges) as (keyof Profile)[]

export const usersModels = new Elysia({ name: 'models.users' })
  .use(sharedModels)
  .model({
    User,
    UserCreateRequest,
    ChangeUserRequest,
    GetAllUsersRequest,
    GetAllUsersResponse,
    DeleteMeRequest,
    LinkedAccount,
    LinkAccountRequest,
    ChangeLinkRequest,
    LinkedAccountsResponse,
  })

/** The auth macro, as the routes of every domain use it: it resolves the caller's account. */
export type UserGuard = AuthGuard<User>
