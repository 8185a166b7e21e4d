import { Elysia } from 'elysia'
import type { UserGuard } from '../users/model'
import { answers, errors, listAnswer, success } from '../../shared/model'
import { invitesModels } from './invitation-model'
import { MemberParams, type Room, RoomIdParams, roomsModels } from './model'
import type { RoomService } from './service'
import type { InvitationService } from './invitation-service'

const roomPage = ({ rooms, total }: { rooms: Room[]; total: number }) => listAnswer('rooms', rooms, total)

export const roomsRoutes = ({ rooms, invites }: { rooms: RoomService; invites: InvitationService }, guard: UserGuard) =>
  new Elysia({ prefix: '/rooms', detail: { tags: ['rooms'] } })
    .use(guard)
    .use(roomsModels)
    .use(invitesModels)
    .get('', async ({ query }) => roomPage(await rooms.listAll(query)), {
      auth: 'admin',
      query: 'GetAllRoomsRequest',
      response: { 200: 'GetAllRoomsResponse', ...errors(401, 403, 422) },
      detail: { summary: 'All rooms, newest first (admins)', description: 'Admins only. Filters by is_closed and is_ready.' },
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
        response: { 201: 'Room', ...errors(400, 401, 403, 409, 413, 415, 422, 429) },
        detail: {
          summary: 'Create a room: you become its owner and first player',
          description:
            '`max_players` defaults to ROOM_MAX_PLAYERS and may be up to ROOM_MAX_PLAYERS_LIMIT; `game_role` is your own role, `host` by default.',
          responses: answers({
            409: '`conflict`: you already own ROOM_QUOTA open rooms, or play in ROOM_SEAT_QUOTA; close or leave one first.',
            422: '`validation_error`: a field is missing, unknown or out of its limits (max_players above ROOM_MAX_PLAYERS_LIMIT too).',
            429: '`rate_limited`: you created ROOM_RATE_LIMIT rooms within USER_RATE_WINDOW.',
          }),
        },
      },
    )
    .get('/my', async ({ user, query }) => roomPage(await rooms.listMine(user, query)), {
      auth: 'user',
      query: 'GetAllRoomsRequest',
      response: { 200: 'GetAllRoomsResponse', ...errors(401, 403, 422) },
      detail: { summary: 'Rooms you play in, newest first', description: 'Filters by is_closed and is_ready; pages of at most 200.' },
    })
    .post('/my', async ({ user, query }) => roomPage(await rooms.listMine(user, query)), {
      auth: 'user',
      query: 'GetAllRoomsRequest',
      response: { 200: 'GetAllRoomsResponse', ...errors(401, 403, 422) },
      detail: {
        summary: 'The rooms you play in, as GET /rooms/my',
        description: 'The same answer as GET /rooms/my, for clients that POST: pages of at most 200, `total_count` says how many in all.',
      },
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
            response: { 201: 'Invitation', ...errors(400, 401, 403, 404, 409, 413, 415, 422, 429) },
            detail: {
              summary: 'Invite an active user by name (owner or admin); the answer carries the ct to hand over',
              description: 'The invitee redeems the `ct` at POST /rooms/{room_id}/join within INVITE_TTL, once.',
              responses: answers({
                403: '`forbidden`: only the owner or an admin may invite.',
                404: '`not_found`: no such room, or one you may not see.',
                409: '`conflict`: the room is closed; there is no active user with that name; they are in the room already, or already invited; the room has INVITE_PENDING_LIMIT pending invitations.',
                429: '`rate_limited`: you sent (or tried) INVITE_RATE_LIMIT invitations within USER_RATE_WINDOW.',
              }),
            },
          },
        )
        .post('/:room_id/join', ({ user, params, body }) => invites.join(user, params.room_id, body.ct), {
          auth: 'user',
          body: 'JoinToRoomRequest',
          parse: 'json',
          response: { 200: 'Room', ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
          detail: {
            summary: 'Join with your invitation token (ct): once, before it expires, while a seat is free',
            description: 'Seats you with the invitation’s player_role. Under any concurrency the room never passes max_players.',
            responses: answers({
              403: '`forbidden`: the ct is not valid for you in this room.',
              404: '`not_found`: no such room, or one you may not see.',
              409: '`conflict`: you are in the room already; the invitation was accepted, declined or has expired; the room is closed or full; you play in ROOM_SEAT_QUOTA open rooms already.',
            }),
          },
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
            detail: {
              summary: 'Leave; an owner hands the room to the earliest-joined player; the last one out closes it',
              description: 'A room emptied this way is closed, and its pending invitations are withdrawn.',
              responses: answers({ 404: '`not_found`: no such room, or you are not in it.' }),
            },
          },
        )
        .post('/:room_id/close', ({ user, params }) => rooms.close(user, params.room_id), {
          auth: 'user',
          response: { 200: 'Room', ...errors(400, 401, 403, 404) },
          detail: {
            summary: 'Close the room (owner or admin): no more invitations or joins',
            description: 'Pending invitations are withdrawn; players stay listed. Closing a closed room answers it as it is.',
            responses: answers({ 403: '`forbidden`: only the owner or an admin may close the room.' }),
          },
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
        detail: {
          summary: 'Remove a player (owner or admin)',
          description: 'The player loses their seat at once.',
          responses: answers({
            403: '`forbidden`: only the owner or an admin may remove players.',
            404: '`not_found`: no such room, one you may not see, or that user is not in it.',
            409: '`conflict`: the owner cannot remove themself; leaving is DELETE /rooms/{room_id}/members/me.',
          }),
        },
      },
    )

// A function, not a shared object: Elysia writes into the hook object of each route it is given.
const roomInfo = () =>
  ({
    auth: 'user',
    response: { 200: 'Room', ...errors(400, 401, 403, 404) },
    detail: {
      summary: 'One room, for its players, its invitees and admins',
      description: 'GET and POST do the same. Anyone else gets 404, as if the room did not exist.',
    },
  }) as const
