import { Elysia, t } from 'elysia'
import type { AuthGuard } from '../../plugins/auth'
import {
  componentId,
  ListResponse,
  PAIRED_SURROGATES_PATTERN,
  Pagination,
  QueryBoolean,
  sharedModels,
  Text,
  Timestamp,
  USERNAME_PATTERN,
  Uuid,
} from '../../shared/model'

export const Username = t.String({
  minLength: 3,
  maxLength: 32,
  pattern: USERNAME_PATTERN,
  description: '3..32 of A-Z a-z 0-9 _ . -, unique ignoring case',
  examples: ['alice'],
})
export const Password = t.String({
  minLength: 8,
  maxLength: 128,
  pattern: PAIRED_SURROGATES_PATTERN,
  description: '8..128 characters, any (surrogates paired)',
  examples: ['demo-password'],
})
export const UserRole = t.Union([t.Literal('user'), t.Literal('admin')])

export const User = t.Object(
  {
    user_id: Uuid,
    username: t.String(),
    user_role: UserRole,
    is_active: t.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: componentId('User') },
)

export const UserCreateRequest = t.Object(
  {
    username: Username,
    password: Password,
    user_role: t.Optional(UserRole),
    is_active: t.Optional(t.Boolean()),
  },
  { additionalProperties: false, $id: componentId('UserCreateRequest') },
)

export const ChangeUserRequest = t.Object(
  {
    user_id: t.Optional(t.String({ description: "when given, must equal the target user's id" })),
    username: t.Optional(Username),
    user_role: t.Optional(UserRole),
    is_active: t.Optional(t.Boolean()),
  },
  { additionalProperties: false, $id: componentId('ChangeUserRequest') },
)

export const GetAllUsersRequest = t.Object(
  {
    is_active: t.Optional(QueryBoolean),
    role: t.Optional(UserRole),
    search: t.Optional(Text({ maxLength: 32, description: 'case-insensitive part of the username' }, '/search')),
    ...Pagination,
  },
  { additionalProperties: false, $id: componentId('GetAllUsersRequest') },
)

export const GetAllUsersResponse = ListResponse('GetAllUsersResponse', 'users', User)

export const UserIdParams = t.Object({ user_id: Uuid })

export type User = typeof User.static
export type UserRole = typeof UserRole.static
export type UserChanges = Omit<typeof ChangeUserRequest.static, 'user_id'>
export type UserCreateRequest = typeof UserCreateRequest.static
export type UserFilter = typeof GetAllUsersRequest.static

export const usersModels = new Elysia({ name: 'models.users' })
  .use(sharedModels)
  .model({ User, UserCreateRequest, ChangeUserRequest, GetAllUsersRequest, GetAllUsersResponse })

/** The auth macro, as the routes of every domain use it: it resolves the caller's account. */
export type UserGuard = AuthGuard<User>
