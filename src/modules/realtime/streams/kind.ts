import type { Signal } from '../../events/bus'
import type { StoredEvent } from '../../events/model'
import type { User } from '../../users/model'
import type { ClientFrame, FrameError, ServerFrame } from '../protocol'
import type { Link } from '../transport'

/**
 * Why a socket may follow a stream, in its kind's own words (a room's: member, invitee, admin).
 * A right with `until` runs out then; `ended` says the stream's source has ended (a closed room).
 */
export interface Access {
  right: string
  until?: number
  ended?: boolean
}

/**
 * A kind of stream (a user's own, a room's, a room's chat): who may follow one, and what its
 * events mean for the sockets of this instance. The hub knows none of it; kinds are wired in from
 * outside (context.ts), and a new kind is one more module here.
 */
export interface StreamKind<Right extends Access = Access> {
  /** Whether `stream` is of this kind, for a socket of `userId`. */
  owns(stream: string, userId: string): boolean
  /** Why `user` may follow `stream`, or the error that answers the subscribe; a store that cannot answer throws. */
  right(user: User, stream: string): Promise<Right | FrameError>
  /** Acts on an event of one of its streams followed here, before the next event of that stream goes out. */
  react(stored: StoredEvent, hub: HubControl): void
  /** What its `subscribed` frame adds, read once the socket hears the stream's live frames (a chat: who is online). */
  greet?(access: Right): Promise<Pick<Extract<ServerFrame, { op: 'subscribed' }>, 'online'>>
  /** A signal from any instance (never stored: presence, typing) for the sockets here. */
  signal?(signal: Signal, hub: HubControl): void
}

/** What a kind may do to the sockets of this instance, through the hub. */
export interface HubControl {
  /**
   * Withdraws `stream` from the user's sockets here whose right to it does not `keep`: at once
   * (with `unsubscribed`) when live; a subscribe still checking its right checks it again; one
   * still catching up ends after event `after`.
   */
  withdraw(userId: string, stream: string, keeps: (right: string) => boolean, after: number): void
  /** The streams the user's sockets here follow. */
  streamsOf(userId: string): Iterable<string>
  /** The number of the last event of `stream` handed on here. */
  head(stream: string): number
  /** Closes the user's sockets of a session that ended (4003). */
  endSession(userId: string, sessionId: string, reason: string): void
  /** The user's role or status changed: their account is read again before it is next relied on. */
  rightsChanged(userId: string): void
  /** The user's sockets that follow `stream` by a right that runs out hold `right` now, for good (an invitee who joined). */
  settle(userId: string, stream: string, right: string): void
  /** The stream's source has ended (a closed room): nothing more is written or typed there. */
  end(stream: string): void
  /** Sends `frame` to the sockets live in `topic` here, if any. */
  publish(topic: string, frame: ServerFrame): void
}

/** A socket as the ops of a kind see it (the chat's send and typing). */
export interface Client {
  readonly link: Link
  readonly userId: string
  /** Its account, as of the last change of its user's rights; undefined when its session has ended. */
  account(): Promise<User | undefined>
  /** Its right to `stream`, when it follows it. */
  rightTo(stream: string): string | undefined
  /** Whether the source of `stream` has ended (a closed room). */
  ended(stream: string): boolean
}

/** The client frames a kind handles beyond subscribing: the chat's send and typing. */
export type Ops = {
  [Op in 'send' | 'typing']: (frame: Extract<ClientFrame, { op: Op }>, client: Client) => Promise<void> | void
}
