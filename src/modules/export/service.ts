import type { UserRateLimiter } from '../../db/rate-limits'
import { nowIso } from '../../lib/clock'
import type { ChatService } from '../chat/service'
import type { OAuthSignIn } from '../credentials/oauth'
import type { DirectMessageService } from '../dms/service'
import type { RoomService } from '../rooms/service'
import type { User } from '../users/model'
import type { LinkedAccountService } from '../users/linked-accounts'
import type { UserService } from '../users/service'

/**
 * The export of a user's data (GET /users/me/export): written as it is read, a page of rows at a
 * time with a turn of the event loop between pages, so that a user with 300,000 messages neither
 * holds the instance nor its memory. Each export counts against EXPORT_RATE_LIMIT.
 */
export class ExportService {
  constructor(
    private readonly deps: {
      users: Pick<UserService, 'get'>
      linkedAccounts: Pick<LinkedAccountService, 'withLinks'>
      identities: Pick<OAuthSignIn, 'identities'>
      rooms: Pick<RoomService, 'seatsOf'>
      chat: Pick<ChatService, 'writtenBy'>
      dms: Pick<DirectMessageService, 'conversationsOf' | 'messagesIn' | 'blocksOf'>
      exports: UserRateLimiter
      onError: (error: unknown) => void
    },
  ) {}

  /** The document, as a stream of JSON text; the account is read (and the limit counted) before it starts. */
  async open(user: User): Promise<ReadableStream<Uint8Array>> {
    await this.deps.exports.consume(user.user_id)
    const account = await this.deps.linkedAccounts.withLinks(await this.deps.users.get(user.user_id))
    const chunks = this.#document(account)
    const encoder = new TextEncoder()
    const onError = this.deps.onError
    return new ReadableStream({
      async pull(controller) {
        try {
          const next = await chunks.next()
          if (next.done) controller.close()
          else controller.enqueue(encoder.encode(next.value))
        } catch (error) {
          // The answer has begun: the client sees the connection fail, not a document cut short and taken as whole.
          onError(error)
          controller.error(error)
        }
      },
      async cancel() {
        await chunks.return(undefined)
      },
    })
  }

  async *#document(account: User): AsyncGenerator<string> {
    const { rooms, chat, dms, identities } = this.deps
    yield `{"exported_at":${JSON.stringify(nowIso())},"account":${JSON.stringify(account)},"identities":${JSON.stringify(await identities.identities(account))},"rooms":[`
    yield* jsonItems(rooms.seatsOf(account.user_id))
    yield '],"room_messages":['
    yield* jsonItems(chat.writtenBy(account.user_id))
    yield '],"conversations":['
    let separator = ''
    for await (const page of dms.conversationsOf(account.user_id))
      for (const { conversation_id, peer } of page) {
        yield `${separator}{"conversation_id":${JSON.stringify(conversation_id)},"peer":${JSON.stringify(peer)},"messages":[`
        yield* jsonItems(dms.messagesIn(conversation_id))
        yield ']}'
        separator = ','
      }
    yield '],"blocked":['
    yield* jsonItems(dms.blocksOf(account.user_id))
    yield ']}'
  }
}

/** The items of pages of rows as the inside of a JSON array, a page per chunk. */
async function* jsonItems(pages: AsyncGenerator<unknown[]>): AsyncGenerator<string> {
  let separator = ''
  for await (const page of pages) {
    yield separator + page.map((row) => JSON.stringify(row)).join(',')
    separator = ','
  }
}
