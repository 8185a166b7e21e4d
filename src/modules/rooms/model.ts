import { Type } from '@sinclair/typebox'
import { Elysia, t } from 'elysia'
import { DEMO_IDS } from '../../shared/demo'
import { componentId, Count, DemoId, ListResponse, Pagination, QueryBoolean, sharedModels, Text, Timestamp, Uuid } from '../../shared/model'
import { PublicProfile } from '../users/model'


export const Player = t.Object(
  {
    ...PublicProfile,
    game_role: t.String(),
    joined_at: Timestamp,
  },
  { $id: componentId('Player') },
)

export const Room = t.Object(
  {
    room_id: Uuid,
    room_name: t.String(),
    owner_id: t.Union([Uuid, t.Null()], { description: 'null only for a closed, empty room whose last owner was deleted' }),
    max_players: Count('seats'),
    created_at: Timestamp,
    updated_at: Timestamp,
    is_closed: t.Boolean({ description: 'closed by its owner or an admin, or emptied by the last player leaving' }),
    is_ready: t.Boolean({ description: 'every seat is taken' }),
    players: t.Array(t.Ref(Player), { description: 'in the order they joined' }),
  },
  { $id: componentId('Room') },
)

export const GetAllRoomsRequest = t.Object(
  { is_closed: t.Optional(QueryBoolean), is_ready: t.Optional(QueryBoolean), ...Pagination },
  { additionalProperties: false, $id: componentId('GetAllRoomsRequest') },
)

export const GetAllRoomsResponse = ListResponse('GetAllRoomsResponse', 'rooms', Room)

export const CreateRoomRequest = t.Object(
  {
    room_name: Text({ minLength: 1, maxLength: 100, examples: ['Evening shift: pump station'] }, '/room_name'),
    // typebox's Integer: Elysia's t.Integer carries a default of 0 that an optional field would pick up.
    max_players: t.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'default ROOM_MAX_PLAYERS, at most ROOM_MAX_PLAYERS_LIMIT' })),
    game_role: t.Optional(Text({ minLength: 1, maxLength: 64, description: "the creator's own role, default host", examples: ['shift lead'] }, '/game_role')),
  },
  { additionalProperties: false, $id: componentId('CreateRoomRequest') },
)

export const InviteToRoomRequest = t.Object(
  { user_name: Text({ minLength: 1, maxLength: 32, examples: ['dave'] }, '/user_name'), player_role: Text({ minLength: 1, maxLength: 64, examples: ['operator'] }, '/player_role') },
  { additionalProperties: false, $id: componentId('InviteToRoomRequest') },
)

export const JoinToRoomRequest = t.Object(
  { ct: Text({ minLength: 1, maxLength: 256, description: 'the invitation token' }, '/ct') },
  { additionalProperties: false, $id: componentId('JoinToRoomRequest') },
)

export const RoomIdParams = t.Object({ room_id: DemoId(DEMO_IDS.rooms.morning) })
export const MemberParams = t.Object({ room_id: DemoId(DEMO_IDS.rooms.morning), user_id: DemoId(DEMO_IDS.users.bob) })

/** A seat of one user, as the export of their data lists it: open rooms and closed. */
export const Seat = t.Object(
  {
    room_id: Uuid,
    room_name: t.String(),
    is_closed: t.Boolean(),
    is_owner: t.Boolean({ description: 'the user owns the room' }),
    game_role: t.String(),
    joined_at: Timestamp,
  },
  { $id: componentId('Seat') },
)

export type Player = typeof Player.static
export type Seat = typeof Seat.static
export type Room = typeof Room.static
export type RoomFilter = typeof GetAllRoomsRequest.static
export type CreateRoomRequest = typeof CreateRoomRequest.static

export const roomsModels = new Elysia({ name: 'models.rooms' })
  .use(sharedModels)
  .model({ Player, Room, GetAllRoomsRequest, GetAllRoomsResponse, CreateRoomRequest, InviteToRoomRequest, JoinToRoomRequest })
