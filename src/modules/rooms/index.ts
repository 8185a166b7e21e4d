import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import type { authGuard } from '../../plugins/auth'
import { errors, listAnswer, success } from '../../shared/model'
import { invitesModels } from '../invites/model'
import { MemberParams, type Room, RoomIdParams, roomsModels } from './model'

const roomPage = ({ rooms, total }: { rooms: Room[]; total: number }) => listAnswer('rooms', rooms, total)

export const roomsRoutes = ({ rooms, invites }: AppContext, guard: ReturnType<typeof authGuard>) =>
  new Elysia({ prefix: '/rooms', detail: { tags: ['rooms'] } })
    .use(guard)
    .use(roomsModels)
    .use(invitesModels)
    .get('', async ({ query }) => roomPage(await rooms.listAll(query)), {
      auth: 'admin',
      query: 'GetAllRoomsRequest',
      response: { 200: 'GetAllRoomsResponse', ...errors(401, 403, 422) },
      detail: { summary: 'All rooms, newest first (admins)' },
    })
    .post(
      '',
      async ({ user, body, set }) => {
        set.status = 201
        return rooms.create(user, body)
      },
      {
        auth: 'user',
        body: 'CreateRoomRequest',
        parse: 'json',
        response: { 201: 'Room', ...errors(400, 401, 403, 413, 415, 422) },
        detail: { summary: 'Create a room: you become its owner and first player' },
      },
    )
    .get('/my', async ({ user, query }) => roomPage(await rooms.listMine(user, query)), {
      auth: 'user',
      query: 'GetAllRoomsRequest',
      response: { 200: 'GetAllRoomsResponse', ...errors(401, 403, 422) },
      detail: { summary: 'Rooms you play in, newest first' },
    })
    .post('/my', async ({ user, query }) => roomPage(await rooms.listMine(user, query)), {
      auth: 'user',
      query: 'GetAllRoomsRequest',
      response: { 200: 'GetAllRoomsResponse', ...errors(401, 403, 422) },
      detail: { summary: 'The rooms you play in, as GET /rooms/my: pages of at most 200, total_count says how many in all' },
    })
    .guard({ params: RoomIdParams }, (byId) =>
      byId
        .get('/:room_id', ({ user, params }) => rooms.get(user, params.room_id), roomInfo())
        .post('/:room_id', ({ user, params }) => rooms.get(user, params.room_id), roomInfo())
        .post(
          '/:room_id/invite',
          async ({ user, params, body, set }) => {
            set.status = 201
            return invites.invite(user, params.room_id, body.user_name, body.player_role)
          },
          {
            auth: 'user',
            body: 'InviteToRoomRequest',
            parse: 'json',
            response: { 201: 'Invitation', ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
            detail: { summary: 'Invite an active user by name (owner or admin); the answer carries the ct to hand over' },
          },
        )
        .post('/:room_id/join', ({ user, params, body }) => invites.join(user, params.room_id, body.ct), {
          auth: 'user',
          body: 'JoinToRoomRequest',
          parse: 'json',
          response: { 200: 'Room', ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
          detail: { summary: 'Join with your invitation token (ct): once, before it expires, while a seat is free' },
        })
        .delete(
          '/:room_id/members/me',
          async ({ user, params }) => {
            await rooms.leave(user, params.room_id)
            return success('You left the room')
          },
          {
            auth: 'user',
            response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404) },
            detail: { summary: 'Leave; an owner hands the room to the earliest-joined player; the last one out closes it' },
          },
        )
        .post('/:room_id/close', ({ user, params }) => rooms.close(user, params.room_id), {
          auth: 'user',
          response: { 200: 'Room', ...errors(400, 401, 403, 404) },
          detail: { summary: 'Close the room (owner or admin): no more invitations or joins' },
        }),
    )
    .delete(
      '/:room_id/members/:user_id',
      async ({ user, params }) => {
        await rooms.kick(user, params.room_id, params.user_id)
        return success('Player removed')
      },
      {
        auth: 'user',
        params: MemberParams,
        response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 409) },
        detail: { summary: 'Remove a player (owner or admin)' },
      },
    )

// A function, not a shared object: Elysia writes into the hook object of each route it is given.
const roomInfo = () =>
  ({
    auth: 'user',
    response: { 200: 'Room', ...errors(400, 401, 403, 404) },
    detail: { summary: 'One room, for its players, its invitees and admins' },
  }) as const
