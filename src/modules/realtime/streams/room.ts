import type { RoomService, StreamAccess } from '../../rooms/service'
import type { StreamKind } from './kind'
import { refusedAsUndefined, roomOf } from './rooms'

/**
 * A room's stream (`room:<id>`): what its members see of it. Its players, its invitees (until
 * their invitation ends) and admins follow it; anyone else gets not_found, as over REST.
 */
export const roomStreams = (rooms: Pick<RoomService, 'streamAccess'>): StreamKind<StreamAccess> => ({
  owns: (stream) => roomOf(stream, 'room') !== undefined,

  async right(user, stream) {
    const access = await refusedAsUndefined(rooms.streamAccess(user, roomOf(stream, 'room')!))
    return !access || (access.until !== undefined && access.until <= Date.now()) ? 'not_found' : access
  },

  react({ stream, seq, event }, hub) {
    switch (event.type) {
      case 'member_left':
      case 'member_kicked':
        // They see their own removal, and nothing after it; an admin keeps the room.
        return hub.withdraw(event.user_id, stream, (right) => right === 'admin', seq)
      case 'member_joined':
        // An invitee who joins is a player now: their invitation's expiry no longer ends their view.
        return hub.settle(event.user_id, stream, 'member')
    }
  },
})
