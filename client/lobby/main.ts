/**
 * The lobby page: the client package's first user. Typed REST calls and token renewal come from
 * createGatewayClient, live events with exact resume from its realtime connection; this file only
 * draws. Nothing a player types is parsed as HTML (textContent throughout). What it promises:
 * every send is shown pending, then sent or refused with the reason and a retry that reuses the
 * same client_id; the connection's state is always on screen; after any drop every stream resumes
 * where it stopped, and is refetched when the server says it cannot replay; a right lost (kicked,
 * left, closed, logged out elsewhere) changes the view at once.
 */
import { type ConnectionState, createGatewayClient, type QrLogin, type RealtimeConnection, type Tokens } from 'sim-gateway-client'

type Room = { room_id: string; room_name: string; owner_id: string | null; max_players: number; is_ready: boolean; is_closed: boolean; players: Player[] }
type Player = { user_id: string; username: string; display_name: string | null; avatar_url: string | null; game_role: string }
type Message = {
  message_id: string
  seq: number
  author_id: string | null
  body: string
  client_id: string | null
  created_at: string
  edited_at?: string | null
  deleted_at?: string | null
}
type RoomSummary = Pick<Room, 'room_id' | 'room_name' | 'max_players' | 'is_ready' | 'is_closed'> & { players: unknown[] }

const api = document.documentElement.dataset.api ?? ''
const TOKENS = 'sim-gateway.tokens'
const POSITIONS = 'sim-gateway.positions'
const OPEN_ROOM = 'sim-gateway.room'
const SCROLL = 'sim-gateway.scroll'
const UNREAD = 'sim-gateway.unread'

const $ = <Element extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as Element

const stored = (): Tokens | undefined => JSON.parse(localStorage.getItem(TOKENS) ?? 'null') ?? undefined
const gateway = createGatewayClient(new URL(api || '/', location.href).href.replace(/\/$/, ''), {
  tokens: stored(),
  onTokens: (tokens) => (tokens ? localStorage.setItem(TOKENS, JSON.stringify(tokens)) : localStorage.removeItem(TOKENS)),
  // Tabs share one session: one renews at a time, and the others take what it got.
  shared: { read: stored, lock: <Result>(work: () => Promise<Result>) => navigator.locks.request('sim-gateway.refresh', work) as Promise<Result> },
})

let me: { user_id: string; username: string } | undefined
let realtime: RealtimeConnection | undefined
let current: { room: Room; typing: Map<string, number> } | undefined
/** Who is online in each room whose chat is followed: its subscribed frame says, presence frames keep it. */
const online = new Map<string, Set<string>>()
const names = new Map<string, string>()
/** The open room's messages as last drawn, by id: an edit or a deletion changes one of them. */
const roomMessages = new Map<string, Message>()
let myRooms: RoomSummary[] = []
/** Messages from others in rooms not open, by room, since the player last looked. */
const unread = new Map<string, number>(Object.entries(JSON.parse(sessionStorage.getItem(UNREAD) ?? '{}') as Record<string, number>))

/** The server's own words for a refusal, from an Eden error or a failed fetch. */
function reason(error: unknown): string {
  const { status, value } = (error ?? {}) as { status?: unknown; value?: { message?: string; details?: Array<{ field: string; message: string }> } }
  // No answer at all (the fetch failed, which Eden may hand over as an error value): not the server's words.
  if (typeof status !== 'number' || (value as unknown) instanceof Error) return 'The server cannot be reached; check the connection and try again'
  if (value?.details?.length) return value.details.map((detail) => `${detail.field.replace(/^\//, '')} ${detail.message}`).join('; ')
  if (value?.message) return value.message
  return 'The server cannot be reached; check the connection and try again'
}

/** A refusal with the server's reason, and its status (none when no answer came). */
class Refused extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message)
  }
}

/** An API call's data, or a thrown Refused with the server's reason. */
async function call<Data>(answer: Promise<{ data: Data | null; error: unknown }>): Promise<Data> {
  let result: { data: Data | null; error: unknown }
  try {
    result = await answer
  } catch {
    throw new Refused(reason(undefined))
  }
  if (result.error || result.data === null) throw new Refused(reason(result.error), (result.error as { status?: number } | null)?.status)
  return result.data
}

/** Whether a refusal says the thing is gone or no longer ours, rather than that the server could not answer. */
const lost = (error: unknown) => error instanceof Refused && (error.status === 403 || error.status === 404)

/**
 * `load` with only its latest call's answer applied: lists are reloaded on every event, and an
 * older answer arriving last would draw what has changed since.
 */
function latest<Result>(load: () => Promise<Result>, apply: (result: Result) => void): () => Promise<void> {
  let generation = 0
  return async () => {
    const mine = ++generation
    const result = await load()
    if (mine === generation) apply(result)
  }
}

/** Replaces a list's items; the button that had the focus in it, if any, has it again after. */
function redraw(list: HTMLElement, items: HTMLElement[]) {
  const focused = list.contains(document.activeElement) ? (document.activeElement as HTMLElement) : undefined
  const key = focused && (focused.getAttribute('aria-label') ?? focused.textContent)
  list.replaceChildren(...items)
  if (key) [...list.querySelectorAll<HTMLElement>('button')].find((each) => (each.getAttribute('aria-label') ?? each.textContent) === key)?.focus()
}

function showError(id: string, error?: unknown) {
  $(id).textContent = error instanceof Error ? error.message : ''
}

function showNotice(text: string) {
  $('notice').textContent = text
  $('notice').hidden = text === ''
}

function item(text: string, className?: string) {
  const li = document.createElement('li')
  li.textContent = text
  if (className) li.className = className
  return li
}

function button(label: string, onClick: () => unknown) {
  const element = document.createElement('button')
  element.type = 'button'
  element.textContent = label
  element.addEventListener('click', () => void onClick())
  return element
}

const nameOf = (player: Pick<Player, 'display_name' | 'username'>) => player.display_name || player.username

// ——— rooms and invitations

const loadRooms = latest(
  () => call(gateway.api.rooms.my.get({ query: { limit: 50 } })),
  ({ rooms }) => {
    myRooms = rooms
    // Every open room's chat is followed, to tell of new messages where the player is not looking.
    for (const room of myRooms) if (!room.is_closed) realtime?.subscribe(`chat:${room.room_id}`)
    renderRooms()
  },
)

function renderRooms() {
  redraw(
    $('rooms'),
    myRooms.map((room) => {
      const state = room.is_closed ? 'closed' : room.is_ready ? 'full' : 'open'
      const count = unread.get(room.room_id) ?? 0
      const li = item(`${room.room_name} · ${state} · ${room.players.length}/${room.max_players}${count > 0 ? ` · ${count} new` : ''}`)
      if (room.room_id === current?.room.room_id) li.setAttribute('aria-current', 'true')
      const open = button('Open', () => openRoom(room.room_id).catch((error) => showError('create-error', error)))
      open.setAttribute('aria-label', `Open ${room.room_name}`)
      li.append(' ', open)
      return li
    }),
  )
}

function countUnread(roomId: string, count: number) {
  if (count === 0) unread.delete(roomId)
  else unread.set(roomId, count)
  sessionStorage.setItem(UNREAD, JSON.stringify(Object.fromEntries(unread)))
  renderRooms()
}

const loadInvites = latest(async () => {
  const { invitations } = await call(gateway.api.invites.my.get({ query: { limit: 50 } }))
  const pending = invitations.filter((invitation) => invitation.status === 'pending')
  return Promise.all(
    pending.map(async (invitation) => {
      const room = await call(gateway.api.rooms({ room_id: invitation.room_id }).get()).catch(() => undefined)
      const inviter = room?.players.find((player) => player.user_id === invitation.inviter_id)
      const li = item(`${room?.room_name ?? 'A room'} from ${inviter ? nameOf(inviter) : 'an admin'} as ${invitation.player_role}`)
      li.append(
        ' ',
        button('Accept', async () => {
          try {
            await call(gateway.api.rooms({ room_id: invitation.room_id }).join.post({ ct: invitation.ct ?? '' }))
            showError('invites-error')
            await Promise.all([loadRooms(), loadInvites()])
            await openRoom(invitation.room_id)
          } catch (error) {
            showError('invites-error', error)
          }
        }),
        ' ',
        button('Decline', async () => {
          try {
            await call(gateway.api.invites({ invite_id: invitation.invite_id }).decline.post())
            showError('invites-error')
            await loadInvites()
          } catch (error) {
            showError('invites-error', error)
          }
        }),
      )
      return li
    }),
  )
}, (rows) => redraw($('invites'), rows))

/** Whom this tab invited where, by invitation: a decline names only the invitation. */
const INVITED = 'sim-gateway.invited'
function rememberInvitation(inviteId: string, userName: string, roomName: string) {
  const invited = JSON.parse(sessionStorage.getItem(INVITED) ?? '{}') as Record<string, [string, string]>
  invited[inviteId] = [userName, roomName]
  sessionStorage.setItem(INVITED, JSON.stringify(invited))
}

function declinedNotice(inviteId: string): string {
  const [userName, roomName] = (JSON.parse(sessionStorage.getItem(INVITED) ?? '{}') as Record<string, [string, string]>)[inviteId] ?? []
  return userName ? `${userName} declined your invitation to ${roomName}` : 'An invitation you sent was declined'
}

// ——— the open room

async function openRoom(roomId: string) {
  const room = await call(gateway.api.rooms({ room_id: roomId }).get())
  if (current && current.room.room_id !== roomId) realtime?.unsubscribe(`room:${current.room.room_id}`)
  current = { room, typing: new Map() }
  sessionStorage.setItem(OPEN_ROOM, roomId)
  $('room').hidden = false
  $('room-title').textContent = room.room_name
  showError('room-error')
  countUnread(roomId, 0)
  if ($('notice').textContent === `New message in ${room.room_name}`) showNotice('')
  // Live messages from now on are drawn as they come; the history is merged in when it answers.
  roomMessages.clear()
  redraw($('messages'), unsentTo(`room:${roomId}`))
  renderRoom()
  renderTyping()
  $('chat-form').querySelector('input')?.focus()
  await loadMessages()
  realtime?.subscribe(`room:${roomId}`)
  realtime?.subscribe(`chat:${roomId}`)
}

function closeRoom(notice?: string) {
  if (!current) return
  realtime?.unsubscribe(`room:${current.room.room_id}`)
  realtime?.unsubscribe(`chat:${current.room.room_id}`)
  current = undefined
  sessionStorage.removeItem(OPEN_ROOM)
  $('room').hidden = true
  if (notice) showNotice(notice)
  renderRooms()
}

function renderRoom() {
  if (!current || !me) return
  const { room } = current
  const owner = room.owner_id === me.user_id
  $('room-state').textContent = `${room.is_closed ? 'Closed' : room.is_ready ? 'Full' : 'Open'} · ${room.players.length} of ${room.max_players} seats`
  $('invite-form').hidden = !owner || room.is_closed
  $('close-room').hidden = !owner || room.is_closed
  $('leave').hidden = room.is_closed
  for (const control of $('chat-form').querySelectorAll<HTMLInputElement | HTMLButtonElement>('input, button')) control.disabled = room.is_closed
  redraw(
    $('players'),
    room.players.map((player) => {
      names.set(player.user_id, nameOf(player))
      const text = `${player.display_name ? `${player.display_name} · ` : ''}${player.username} (${player.game_role})`
      const here = online.get(room.room_id)?.has(player.user_id) ?? false
      const li = item(text, here ? 'online' : 'offline')
      // The dot is drawn by the stylesheet; a screen reader reads this instead.
      li.append(Object.assign(document.createElement('span'), { className: 'visually-hidden', textContent: here ? ', online' : ', offline' }))
      if (player.avatar_url) {
        const avatar = document.createElement('img')
        Object.assign(avatar, { src: player.avatar_url, alt: '', width: 24, height: 24, className: 'avatar' })
        li.prepend(avatar)
      }
      if (player.user_id !== me!.user_id) li.append(' ', button(`Message ${player.username}`, () => openConversation(player.user_id, nameOf(player)).catch((error) => showError('room-error', error))))
      if (owner && player.user_id !== me!.user_id && !room.is_closed)
        li.append(
          ' ',
          button(`Remove ${player.username}`, () =>
            call(gateway.api.rooms({ room_id: room.room_id }).members({ user_id: player.user_id }).delete()).catch((error) => showError('room-error', error)),
          ),
        )
      return li
    }),
  )
}

async function refreshRoom() {
  if (!current) return
  const roomId = current.room.room_id
  try {
    const room = await call(gateway.api.rooms({ room_id: roomId }).get())
    if (current?.room.room_id === roomId) {
      current.room = room
      renderRoom()
    }
  } catch (error) {
    if (lost(error) && current?.room.room_id === roomId) closeRoom('You can no longer see that room')
  }
}

async function loadMessages() {
  if (!current) return
  const roomId = current.room.room_id
  const { messages } = await call(gateway.api.rooms({ room_id: roomId }).messages.get({ query: { limit: 50 } }))
  if (current?.room.room_id !== roomId) return
  // Merged with what is shown: a live message drawn while the history was on its way stays.
  for (const message of (messages as Message[]).reverse()) showRoomMessage(message)
  // Where the player was reading, after a reload; else the newest.
  const kept = sessionStorage.getItem(SCROLL)
  sessionStorage.removeItem(SCROLL)
  if (kept !== null) $('messages').scrollTop = Number(kept)
  else scrollDown($('messages'))
}

const clock = (date: Date) => date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })

function time(iso: string) {
  const element = document.createElement('time')
  element.dateTime = iso
  element.textContent = clock(new Date(iso))
  return element
}

/**
 * A message from the history or the live stream, in `list`, once (by its id, or taking the place
 * of its pending send), in the conversation's order: by its number, whatever order the answers
 * came in. Sends not yet answered stay last.
 */
function showMessage(list: HTMLElement, message: Message, controls: HTMLElement[] = []) {
  // A client_id is unique per author only, and anyone may send any: only one's own unsent send is replaced.
  const existing =
    list.querySelector<HTMLLIElement>(`[data-id="${CSS.escape(message.message_id)}"]`) ??
    (message.client_id && message.author_id === me?.user_id
      ? list.querySelector<HTMLLIElement>(`:is(li.pending, li.failed)[data-client-id="${CSS.escape(message.client_id)}"]`)
      : null)
  const li = existing ?? document.createElement('li')
  li.className = ''
  li.dataset.id = message.message_id
  li.dataset.seq = String(message.seq)
  if (message.client_id) li.dataset.clientId = message.client_id
  const author = document.createElement('span')
  author.className = 'author'
  author.textContent = `${message.author_id ? (names.get(message.author_id) ?? 'someone') : 'a deleted user'}:`
  const body = document.createElement('span')
  body.className = 'body'
  body.textContent = message.deleted_at ? '(deleted)' : message.body
  li.replaceChildren(time(message.created_at), author, ' ', body)
  if (message.edited_at && !message.deleted_at) li.append(' ', Object.assign(document.createElement('small'), { className: 'edited', textContent: '(edited)' }))
  if (controls.length > 0) li.append(' ', ...controls)
  const later = [...list.querySelectorAll<HTMLLIElement>('li[data-seq], li.pending, li.failed')].find(
    (other) => other !== li && (other.dataset.seq === undefined || Number(other.dataset.seq) > message.seq),
  )
  if (later) list.insertBefore(li, later)
  else if (li.nextSibling || !li.isConnected) list.append(li)
}

/** A room's message, with edit and delete for its author, and delete for the room's owner, while the room is open. */
function showRoomMessage(message: Message) {
  roomMessages.set(message.message_id, message)
  const li = $('messages').querySelector<HTMLLIElement>(`[data-id="${CSS.escape(message.message_id)}"]`)
  // Someone else's edit of a message being edited here waits for the editor to close.
  if (li?.classList.contains('editing') && !message.deleted_at) return
  const open = current && !current.room.is_closed && !message.deleted_at
  const own = open && message.author_id === me?.user_id
  const owner = open && current!.room.owner_id === me?.user_id
  const controls = [...(own ? [button('Edit', () => editMessage(message.message_id))] : []), ...(own || owner ? [button('Delete', () => deleteMessage(message.message_id))] : [])]
  showMessage($('messages'), message, controls)
}

/** The message's text becomes a field: Enter saves, Escape puts it back as it was. */
function editMessage(messageId: string) {
  const li = $('messages').querySelector<HTMLLIElement>(`[data-id="${CSS.escape(messageId)}"]`)
  const message = roomMessages.get(messageId)
  if (!current || !li || !message) return
  const roomId = current.room.room_id
  const input = Object.assign(document.createElement('input'), { value: message.body, required: true, autocomplete: 'off' })
  input.setAttribute('aria-label', 'Edit your message')
  const error = Object.assign(document.createElement('span'), { className: 'error' })
  error.setAttribute('role', 'alert')
  const save = Object.assign(document.createElement('button'), { type: 'submit', textContent: 'Save' })
  const done = () => {
    li.classList.remove('editing')
    showRoomMessage(roomMessages.get(messageId) ?? message)
    li.querySelector('button')?.focus()
  }
  const form = document.createElement('form')
  form.className = 'edit'
  form.append(input, save, button('Cancel', done), error)
  form.addEventListener('submit', async (submitted) => {
    submitted.preventDefault()
    if (input.value === roomMessages.get(messageId)?.body) return done()
    save.disabled = true
    try {
      roomMessages.set(messageId, (await call(gateway.api.rooms({ room_id: roomId }).messages({ message_id: messageId }).patch({ body: input.value }))) as Message)
      done()
    } catch (refused) {
      error.textContent = (refused as Error).message
      save.disabled = false
    }
  })
  input.addEventListener('keydown', (key) => {
    if (key.key === 'Escape') done()
  })
  li.classList.add('editing')
  li.querySelectorAll(':scope > button, :scope > .edited').forEach((control) => control.remove())
  li.querySelector('.body')?.replaceWith(form)
  input.focus()
  input.select()
}

async function deleteMessage(messageId: string) {
  if (!current) return
  const roomId = current.room.room_id
  try {
    await call(gateway.api.rooms({ room_id: roomId }).messages({ message_id: messageId }).delete())
    markDeleted(messageId)
  } catch (error) {
    showError('room-error', error)
  }
}

function markDeleted(messageId: string) {
  const message = roomMessages.get(messageId)
  if (message && !message.deleted_at) showRoomMessage({ ...message, body: '', deleted_at: new Date().toISOString() })
}

/** Read out by screen readers: the lists themselves are not live regions, or a reload would read them whole. */
function announce(text: string) {
  $('announce').textContent = text
}

function addNotice(text: string) {
  $('messages').append(item(text, 'system'))
  scrollDown($('messages'))
}

function scrollDown(list: HTMLElement) {
  list.scrollTop = list.scrollHeight
}

/**
 * Sends a message into `list`: shown pending at once, then sent (`post` answers it), or refused
 * with the reason and a retry with the same client_id, so that the server stores it once.
 */
async function send(
  list: HTMLElement,
  target: string,
  body: string,
  post: (body: string, clientId: string) => Promise<Message>,
  clientId = crypto.randomUUID(),
  li = document.createElement('li'),
) {
  li.className = 'pending'
  li.dataset.clientId = clientId
  li.dataset.target = target
  unsent.add(li)
  li.replaceChildren(`${body} — sending…`)
  if (!li.isConnected) list.append(li)
  scrollDown(list)
  try {
    await post(body, clientId)
    // Shown in its place if its room or conversation is open; else it is in the history there.
    unsent.delete(li)
  } catch (error) {
    li.className = 'failed'
    li.replaceChildren(`${body} — not sent: ${(error as Error).message}`, ' ', button('Retry', () => send(list, target, body, post, clientId, li)))
  }
}

/**
 * Sends not stored yet (pending or refused), each with the room (`room:<id>`) or conversation
 * (`dm:<peer>`) it was written in: it goes back into that list when it is open again, never another.
 */
const unsent = new Set<HTMLLIElement>()
const unsentTo = (target: string) => [...unsent].filter((li) => li.dataset.target === target)

/** A room message posted, and shown if its room is the one open. */
async function postToRoom(roomId: string, body: string, clientId: string): Promise<Message> {
  const message = (await call(gateway.api.rooms({ room_id: roomId }).messages.post({ body, client_id: clientId }))) as Message
  if (current?.room.room_id === roomId) showRoomMessage(message)
  return message
}

// ——— direct messages

/** The conversation open: with whom, and the numbers that make its read receipt. */
let conversation: { peerId: string; name: string; conversationId?: string; lastOwnSeq: number } | undefined

const loadDms = latest(
  () => call(gateway.api.dms.get({ query: { limit: 50 } })),
  ({ conversations }) =>
    redraw(
      $('dms'),
      conversations.map((each) => {
        names.set(each.peer.user_id, nameOf(each.peer))
        const li = item(`${nameOf(each.peer)}${each.unread_count > 0 ? ` (${each.unread_count} new)` : ''}`)
        li.append(' ', button(`Open ${each.peer.username}`, () => openConversation(each.peer.user_id, nameOf(each.peer))))
        return li
      }),
    ),
)

async function openConversation(peerId: string, name: string) {
  conversation = { peerId, name, lastOwnSeq: 0 }
  $('dm').hidden = false
  $('dm-title').textContent = `Direct messages with ${name}`
  $('dm-receipt').textContent = ''
  redraw($('dm-messages'), unsentTo(`dm:${peerId}`))
  const { messages } = await call(gateway.api.dms({ user_id: peerId }).messages.get({ query: { limit: 50 } }))
  if (conversation?.peerId !== peerId) return
  for (const message of (messages as Array<Message & { conversation_id: string }>).reverse()) showDirect(message)
  scrollDown($('dm-messages'))
  $('dm-form').querySelector('input')?.focus()
  await markRead()
}

function showDirect(message: Message & { conversation_id: string }) {
  if (!conversation) return
  conversation.conversationId = message.conversation_id
  // A newer message of one's own is not seen yet.
  if (message.author_id === me?.user_id && message.seq > conversation.lastOwnSeq) {
    conversation.lastOwnSeq = message.seq
    $('dm-receipt').textContent = ''
  }
  showMessage($('dm-messages'), message)
}

/** Everything shown is read: the marker moves to the last message, and the peer gets a receipt. */
async function markRead() {
  if (!conversation) return
  const last = Math.max(0, ...[...$('dm-messages').querySelectorAll<HTMLLIElement>('li[data-seq]')].map((li) => Number(li.dataset.seq)))
  if (last > 0) await call(gateway.api.dms({ user_id: conversation.peerId }).read.post({ last_read_seq: last })).catch(() => {})
  await loadDms().catch(() => {})
}

async function postDirect(peerId: string, body: string, clientId: string): Promise<Message> {
  const message = await call(gateway.api.dms({ user_id: peerId }).messages.post({ body, client_id: clientId }))
  if (conversation?.peerId === peerId) showDirect(message as Message & { conversation_id: string })
  return message as Message
}

function onDirectEvent(event: { type: string; [field: string]: unknown }) {
  if (event.type === 'direct_message') {
    const message = event as unknown as Message & { conversation_id: string; recipient_id: string }
    const peer = message.author_id === me?.user_id ? message.recipient_id : message.author_id
    if (conversation && peer === conversation.peerId) {
      showDirect(message)
      if (message.author_id !== me?.user_id) {
        announce(`${conversation.name}: ${message.body}`)
        void markRead()
      }
      return
    }
    if (message.author_id !== me?.user_id) showNotice(`New message from ${names.get(String(message.author_id)) ?? 'someone'}`)
    void loadDms().catch(() => {})
  }
  if (event.type === 'conversation_read') {
    if (event.user_id === me?.user_id) return void loadDms().catch(() => {})
    if (conversation && event.conversation_id === conversation.conversationId && Number(event.last_read_seq) >= conversation.lastOwnSeq && conversation.lastOwnSeq > 0)
      $('dm-receipt').textContent = `Seen by ${conversation.name}`
  }
}

// ——— signing in with a provider (Yandex ID, ...)

const SIGN_IN = 'sim-gateway.sign-in'

async function showProviders() {
  const answer = await gateway.api.auth.oauth.providers.get().catch(() => undefined)
  const providers = answer?.data?.providers ?? []
  $('providers').replaceChildren(...providers.map((provider) => button(`Log in with ${provider.name}`, () => startSignIn(provider.id))))
}

async function startSignIn(provider: string) {
  try {
    const started = await call(gateway.api.auth.oauth({ provider }).start.post())
    sessionStorage.setItem(SIGN_IN, JSON.stringify({ provider, state: started.state, flowSecret: started.flow_secret }))
    location.assign(started.authorize_url)
  } catch (error) {
    showError('login-error', error)
  }
}

/** Back from the provider with `code` (or `error`) and `state`: checked against the state this page kept, then handed to the service. */
async function finishSignIn(): Promise<void> {
  const query = new URLSearchParams(location.search)
  const state = query.get('state')
  if (state === null || !(query.has('code') || query.has('error'))) return
  history.replaceState(null, '', location.pathname + location.hash)
  const kept = JSON.parse(sessionStorage.getItem(SIGN_IN) ?? 'null') as { provider: string; state: string; flowSecret: string } | null
  sessionStorage.removeItem(SIGN_IN)
  // A sign-in this page did not start (someone else's code, sent here) is not finished.
  if (kept?.state !== state) return showNotice('That sign-in was not started here: start it again')
  const code = query.get('code')
  const error = query.get('error')
  const answer = await gateway
    .finishSignIn(kept.provider, { state, flow_secret: kept.flowSecret, ...(code ? { code } : {}), ...(error ? { error } : {}) })
    .catch(() => undefined)
  if (!answer?.data) return showError('login-error', new Error(reason(answer?.error)))
  await enter()
}

// ——— logging a device in with a phone

const QR_CODE = 'sim-gateway.qr-login'
let qrLogin: QrLogin | undefined

/** This computer, not logged in: a QR for a phone that is, and the wait for its decision. */
async function startQrLogin() {
  qrLogin?.cancel()
  const status = $('qr-status')
  try {
    const login = (qrLogin = await gateway.startQrLogin())
    $<HTMLImageElement>('qr-image').src = `data:image/svg+xml,${encodeURIComponent(login.qrSvg)}`
    $('qr-words').textContent = login.verificationWords.join(' ')
    $('qr-code').textContent = login.code
    $('qr').hidden = false
    status.textContent = `Waiting for your phone until ${clock(login.expiresAt)}…`
    const outcome = await login.outcome
    if (login !== qrLogin) return
    qrLogin = undefined
    $('qr').hidden = true
    status.textContent = outcome === 'denied' ? 'Denied on the phone.' : outcome === 'expired' ? 'The code expired: start again for a new one.' : ''
    if (outcome !== 'logged_in') return
    await enter()
    // Whoever approved is whom this computer is now: someone who saw the code could have approved it as themself.
    if (me) showNotice(`Logged in by a phone as ${me.username}. Not your account? Log out now.`)
  } catch (error) {
    status.textContent = error instanceof Error ? error.message : reason(error)
  }
}

/** A code the camera opened this page with (in the fragment, which no server sees): kept until someone is logged in to decide. */
function takeCodeFromLink() {
  const code = new URLSearchParams(location.hash.slice(1)).get('qr-login')
  if (!code) return
  history.replaceState(null, '', location.pathname + location.search)
  sessionStorage.setItem(QR_CODE, code)
  if (!me) showNotice('Log in to approve the device that asks to log in as you')
}

/** The phone, logged in: where the request comes from, and the choice. */
async function offerApproval() {
  const code = sessionStorage.getItem(QR_CODE)
  if (!code || !me) return
  try {
    const request = await call(gateway.api.auth.qr.inspect.post({ code }))
    const rows = [
      ['Device', request.device],
      ['From address', request.address],
      ['Asked at', clock(new Date(request.created_at))],
      ['Its words', request.verification_words.join(' ')],
    ].flatMap(([term, detail]) => [Object.assign(document.createElement('dt'), { textContent: term }), Object.assign(document.createElement('dd'), { textContent: detail })])
    $('approve-details').replaceChildren(...rows)
    showNotice('')
    showError('approve-error')
    $('approve').hidden = false
    $('approve-title').focus()
  } catch (error) {
    sessionStorage.removeItem(QR_CODE)
    showNotice(lost(error) ? 'That login code has expired or was used: ask the other device for a new one' : (error as Error).message)
  }
}

/** When the account last heard that a device logged in (the notice says more than "approved"). */
let deviceLoggedInAt = 0

async function decide(approved: boolean) {
  const code = sessionStorage.getItem(QR_CODE)
  if (!code) return
  const asked = Date.now()
  try {
    await call(approved ? gateway.api.auth.qr.approve.post({ code }) : gateway.api.auth.qr.deny.post({ code }))
    sessionStorage.removeItem(QR_CODE)
    $('approve').hidden = true
    if (deviceLoggedInAt < asked) showNotice(approved ? 'Approved: the other device is logging in as you' : 'Denied: the other device stays logged out')
  } catch (error) {
    if (lost(error)) sessionStorage.removeItem(QR_CODE)
    showError('approve-error', error)
  }
}

// ——— the live connection

function onEvent({ stream, seq, event }: { stream: string; seq: number; event: { type: string; [field: string]: unknown } }) {
  if (stream.startsWith('user:')) {
    if (event.type === 'direct_message' || event.type === 'conversation_read') return onDirectEvent(event)
    if (event.type.startsWith('invitation_')) {
      if (event.type === 'invitation_received') showNotice('You have a new invitation')
      if (event.type === 'invitation_declined' && event.receiver_id !== me?.user_id) showNotice(declinedNotice(String(event.invite_id)))
      void loadInvites().catch(() => {})
    }
    if (event.type === 'device_logged_in') {
      deviceLoggedInAt = Date.now()
      showNotice(`A new device logged in as you: ${event.device}, from ${event.address}`)
    }
    if (['removed_from_room', 'invitation_accepted', 'member_joined', 'room_closed'].includes(event.type)) void loadRooms().catch(() => {})
    if (event.type === 'removed_from_room' && event.room_id === current?.room.room_id) closeRoom(`You were removed from ${current?.room.room_name}`)
    return
  }
  if (stream.startsWith('chat:') && event.room_id !== current?.room.room_id) {
    // Counted by the room's id: after a reload the resume may replay before the room list has answered.
    const roomId = String(event.room_id)
    if (event.type === 'message_posted' && event.author_id !== me?.user_id) {
      countUnread(roomId, (unread.get(roomId) ?? 0) + 1)
      const room = myRooms.find((each) => each.room_id === roomId)
      showNotice(room ? `New message in ${room.room_name}` : 'New message in one of your rooms')
    }
    return
  }
  if (!current || event.room_id !== current.room.room_id) return
  if (stream.startsWith('chat:')) {
    if (event.type === 'message_posted') {
      current.typing.delete(String(event.author_id))
      renderTyping()
      showRoomMessage({ ...(event as unknown as Message), seq })
      if (event.author_id !== me?.user_id) announce(`${names.get(String(event.author_id)) ?? 'someone'}: ${event.body}`)
    }
    const shown = roomMessages.get(String(event.message_id))
    if (event.type === 'message_edited' && shown) showRoomMessage({ ...shown, body: String(event.body), edited_at: String(event.edited_at) })
    if (event.type === 'message_deleted') markDeleted(String(event.message_id))
    return
  }
  // The room as it now is first: a player who just joined has a name only then.
  void refreshRoom().then(() => {
    const who = names.get(String(event.user_id)) ?? 'someone'
    if (event.type === 'member_joined') addNotice(`${who} joined`)
    if (event.type === 'member_left') addNotice(`${who} left`)
    if (event.type === 'member_kicked') addNotice(`${who} was removed`)
    if (event.type === 'room_closed') addNotice('The room was closed')
  })
  void loadRooms().catch(() => {})
}

function onFrame(frame: { op: string; stream?: string; [field: string]: unknown }) {
  if (frame.op === 'subscribed' && frame.stream?.startsWith('chat:') && Array.isArray(frame.online)) {
    online.set(frame.stream.slice('chat:'.length), new Set(frame.online as string[]))
    return renderRoom()
  }
  if (frame.op === 'presence') {
    const room = online.get(String(frame.room_id)) ?? new Set<string>()
    if (frame.online) room.add(String(frame.user_id))
    else room.delete(String(frame.user_id))
    online.set(String(frame.room_id), room)
    return renderRoom()
  }
  if (!current || frame.room_id !== current.room.room_id) return
  if (frame.op === 'typing' && frame.user_id !== me?.user_id) {
    current.typing.set(String(frame.user_id), Date.now() + 3000)
    renderTyping()
    setTimeout(renderTyping, 3100)
  }
}

function renderTyping() {
  if (!current) return
  const now = Date.now()
  const who = [...current.typing].filter(([, until]) => until > now).map(([id]) => names.get(id) ?? 'someone')
  $('typing').textContent = who.length ? `${who.join(', ')} ${who.length > 1 ? 'are' : 'is'} typing…` : ''
}

const STATES: Record<ConnectionState, string> = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', ended: 'Offline' }

function showConnection(state: ConnectionState) {
  $('connection').hidden = false
  $('connection').className = state
  $('connection').textContent = STATES[state]
}

function connect() {
  realtime?.close()
  showConnection('connecting')
  const keepPositions = () => sessionStorage.setItem(POSITIONS, JSON.stringify(realtime!.positions))
  realtime = gateway.realtime({
    resumeFrom: JSON.parse(sessionStorage.getItem(POSITIONS) ?? 'null') ?? undefined,
    onEvent: (event) => {
      onEvent(event)
      keepPositions()
    },
    onReset: (stream) => {
      if (stream === `chat:${current?.room.room_id}`) void loadMessages().catch(() => {})
      else if (stream.startsWith('room:')) void refreshRoom()
      else if (stream.startsWith('chat:')) return
      else void Promise.all([loadRooms(), loadInvites(), loadDms()]).catch(() => {})
    },
    onUnsubscribed: (stream) => {
      if (current && (stream === `room:${current.room.room_id}` || stream === `chat:${current.room.room_id}`))
        closeRoom(`You no longer have access to ${current.room.room_name}`)
    },
    onState: (state) => {
      // Who is online is known again once the chat is followed again (its subscribed frame says).
      if (state !== 'connected') {
        online.clear()
        renderRoom()
      }
      showConnection(state)
    },
    onFrame: (frame) => {
      // A stream followed from now on has a position from its first answer.
      if (frame.op === 'subscribed') keepPositions()
      onFrame(frame)
    },
    onEnd: () => leave('Your session has ended; log in again'),
  })
  realtime.subscribe('user')
}

// ——— session

/** Into the lobby with the session held; a server that cannot answer now is asked again shortly. */
async function enter(): Promise<void> {
  try {
    me = await call(gateway.api.auth.me.get())
  } catch (error) {
    if (error instanceof Refused && error.status === 401) return leave('Your session has ended; log in again')
    showNotice(`${(error as Error).message}; trying again…`)
    await new Promise((resolve) => setTimeout(resolve, 3000))
    return gateway.tokens ? enter() : leave()
  }
  qrLogin?.cancel()
  showNotice('')
  $('whoami').textContent = `Logged in as ${me.username}`
  $('login').hidden = true
  $('lobby').hidden = false
  $('logout').hidden = false
  connect()
  void offerApproval()
  // A list that cannot be read now is read again at the next change (a reset after the reconnect).
  await Promise.all([loadRooms(), loadInvites(), loadDms()]).catch((error) => showNotice((error as Error).message))
  const open = sessionStorage.getItem(OPEN_ROOM)
  if (open) await openRoom(open).catch(() => sessionStorage.removeItem(OPEN_ROOM))
}

/** Back to the login form, with nothing of the session left: the next player of this browser starts clean. */
function leave(notice?: string) {
  realtime?.close()
  realtime = undefined
  current = undefined
  conversation = undefined
  me = undefined
  myRooms = []
  for (const state of [unread, names, roomMessages, unsent, online]) state.clear()
  for (const list of ['rooms', 'invites', 'dms', 'messages', 'dm-messages', 'players']) $(list).replaceChildren()
  localStorage.removeItem(TOKENS)
  sessionStorage.clear()
  $('lobby').hidden = true
  $('room').hidden = true
  $('dm').hidden = true
  $('approve').hidden = true
  $('logout').hidden = true
  $('connection').hidden = true
  $('whoami').textContent = ''
  $('login').hidden = false
  showNotice(notice ?? '')
}

addEventListener('pagehide', () => {
  if (current) sessionStorage.setItem(SCROLL, String($('messages').scrollTop))
})

// Another tab logged out: this one follows.
addEventListener('storage', (change: StorageEvent) => {
  if (change.key === TOKENS && change.newValue === null && me) leave('You logged out in another tab')
})

function onSubmit(id: string, handle: (form: HTMLFormElement, data: FormData) => Promise<void>) {
  $<HTMLFormElement>(id).addEventListener('submit', (submitted) => {
    submitted.preventDefault()
    const form = submitted.target as HTMLFormElement
    void handle(form, new FormData(form))
  })
}

onSubmit('login-form', async (form, data) => {
  const submit = form.querySelector('button')!
  submit.disabled = true
  try {
    const answer = await gateway.login(String(data.get('username')), String(data.get('password'))).catch(() => undefined)
    if (!answer?.data) return showError('login-error', new Error(reason(answer?.error)))
    showError('login-error')
    showNotice('')
    await enter()
  } finally {
    submit.disabled = false
  }
})

onSubmit('create-form', async (form, data) => {
  try {
    const room = await call(gateway.api.rooms.post({ room_name: String(data.get('room_name')) }))
    form.reset()
    showError('create-error')
    await loadRooms()
    await openRoom(room.room_id)
  } catch (error) {
    showError('create-error', error)
  }
})

onSubmit('invite-form', async (form, data) => {
  if (!current) return
  try {
    const userName = String(data.get('user_name'))
    const invitation = await call(gateway.api.rooms({ room_id: current.room.room_id }).invite.post({ user_name: userName, player_role: String(data.get('player_role')) }))
    rememberInvitation(invitation.invite_id, userName, current.room.room_name)
    ;(form.elements.namedItem('user_name') as HTMLInputElement).value = ''
    showError('invite-error')
  } catch (error) {
    showError('invite-error', error)
  }
})

onSubmit('chat-form', async (form, data) => {
  const body = String(data.get('body'))
  ;(form.elements.namedItem('body') as HTMLInputElement).value = ''
  if (!current) return
  const roomId = current.room.room_id
  await send($('messages'), `room:${roomId}`, body, (text, clientId) => postToRoom(roomId, text, clientId))
})

onSubmit('dm-form', async (form, data) => {
  const body = String(data.get('body'))
  ;(form.elements.namedItem('body') as HTMLInputElement).value = ''
  if (!conversation) return
  const { peerId } = conversation
  await send($('dm-messages'), `dm:${peerId}`, body, (text, clientId) => postDirect(peerId, text, clientId))
})

let lastTyping = 0
$('chat-form').addEventListener('input', () => {
  if (!current || Date.now() - lastTyping < 2000) return
  lastTyping = Date.now()
  realtime?.send({ op: 'typing', room_id: current.room.room_id })
})

$('leave').addEventListener('click', async () => {
  if (!current) return
  const room = current.room
  try {
    await call(gateway.api.rooms({ room_id: room.room_id }).members.me.delete())
    closeRoom(`You left ${room.room_name}`)
    await loadRooms()
  } catch (error) {
    showError('room-error', error)
  }
})

$('close-room').addEventListener('click', async () => {
  if (!current) return
  await call(gateway.api.rooms({ room_id: current.room.room_id }).close.post()).catch((error) => showError('room-error', error))
})

$('logout').addEventListener('click', async () => {
  await gateway.logout().catch(() => {})
  leave()
})

onSubmit('device-form', async (form, data) => {
  sessionStorage.setItem(QR_CODE, String(data.get('code')).trim())
  form.reset()
  await offerApproval()
})

$('qr-start').addEventListener('click', () => void startQrLogin())
$('approve-yes').addEventListener('click', () => void decide(true))
$('approve-no').addEventListener('click', () => void decide(false))
addEventListener('hashchange', () => {
  takeCodeFromLink()
  void offerApproval()
})

takeCodeFromLink()
void showProviders()
if (gateway.tokens) void enter()
else void finishSignIn()
