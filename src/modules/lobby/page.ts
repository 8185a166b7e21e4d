/**
 * The lobby page: plain HTML, CSS and JavaScript, served from the binary (no CDN, no framework).
 * Everything a player types is shown with textContent, never parsed as HTML.
 */

export const LOBBY_HTML = (apiPrefix: string) => `<!doctype html>
<html lang="en" data-api="${apiPrefix}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Lobby · Simulator Gateway</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/lobby/lobby.css">
  <script src="/lobby/lobby.js" defer></script>
</head>
<body>
  <header><h1>Simulator lobby</h1><p id="whoami" aria-live="polite"></p><button id="logout" hidden>Log out</button></header>
  <main>
    <section id="login" aria-labelledby="login-title">
      <h2 id="login-title">Log in</h2>
      <form id="login-form">
        <label>Username <input name="username" autocomplete="username" required></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
        <button type="submit">Log in</button>
        <p class="error" role="alert" id="login-error"></p>
      </form>
    </section>
    <section id="lobby" hidden>
      <div class="column">
        <h2>My rooms</h2>
        <ul id="rooms" aria-label="My rooms"></ul>
        <form id="create-form">
          <label>New room <input name="room_name" maxlength="100" required placeholder="Morning shift"></label>
          <button type="submit">Create</button>
        </form>
        <h2>Invitations</h2>
        <ul id="invites" aria-label="Invitations" aria-live="polite"></ul>
        <p class="error" role="alert" id="lobby-error"></p>
      </div>
      <div class="column wide" id="room" hidden>
        <h2 id="room-title"></h2>
        <ul id="players" aria-label="Players"></ul>
        <form id="invite-form">
          <label>Invite <input name="user_name" required placeholder="username"></label>
          <label>as <input name="player_role" required value="operator"></label>
          <button type="submit">Invite</button>
        </form>
        <ol id="messages" aria-label="Chat" aria-live="polite"></ol>
        <p id="typing" aria-live="polite"></p>
        <form id="chat-form">
          <label class="grow">Message <input name="body" autocomplete="off" required maxlength="2000"></label>
          <button type="submit">Send</button>
        </form>
      </div>
    </section>
  </main>
</body>
</html>
`

export const LOBBY_CSS = `:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 0; }
header { display: flex; gap: 1rem; align-items: baseline; padding: .5rem 1rem; border-bottom: 1px solid #8884; }
header h1 { font-size: 1.2rem; margin: 0; }
main { padding: 1rem; }
#lobby { display: flex; gap: 2rem; flex-wrap: wrap; }
.column { min-width: 16rem; }
.wide { flex: 1; }
ul, ol { padding-left: 1.2rem; }
#messages { list-style: none; padding: .5rem; border: 1px solid #8884; height: 22rem; overflow-y: auto; margin: .5rem 0; }
#messages li { margin: .2rem 0; }
#messages .system { color: #888; font-style: italic; }
.author { font-weight: 600; }
.online::before { content: "● "; color: #2a2; }
.offline::before { content: "○ "; color: #888; }
.avatar { border-radius: 50%; vertical-align: middle; margin-right: .4rem; object-fit: cover; }
.error { color: #c33; min-height: 1.2em; }
form { display: flex; gap: .5rem; align-items: end; flex-wrap: wrap; margin: .5rem 0; }
label { display: flex; flex-direction: column; font-size: .9rem; gap: .2rem; }
.grow { flex: 1; }
input, button { font: inherit; padding: .3rem .5rem; }
#typing { min-height: 1.2em; color: #888; margin: 0; }
`

export const LOBBY_JS = `'use strict'
const api = document.documentElement.dataset.api
const $ = (id) => document.getElementById(id)
let token = sessionStorage.getItem('token')
let me = null
let socket = null
let current = null // { room, online: Set, typing: Map }
const names = new Map()

async function call(method, path, body) {
  const response = await fetch(api + path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: 'Bearer ' + token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const data = await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(data.message || response.statusText)
  return data
}

function item(text, className) {
  const li = document.createElement('li')
  li.textContent = text
  if (className) li.className = className
  return li
}

function button(label, onClick) {
  const b = document.createElement('button')
  b.type = 'button'
  b.textContent = label
  b.addEventListener('click', onClick)
  return b
}

function showError(where, error) { $(where).textContent = error ? String(error.message || error) : '' }

async function loadRooms() {
  const { rooms } = await call('GET', '/rooms/my?limit=100')
  const list = $('rooms')
  list.replaceChildren(...rooms.map((room) => {
    const li = item(room.room_name + (room.is_closed ? ' (closed)' : ''))
    li.append(' ', button('Open', () => openRoom(room.room_id)))
    return li
  }))
}

async function loadInvites() {
  const { invitations } = await call('GET', '/invites/my?status=pending&limit=100')
  $('invites').replaceChildren(...invitations.map((invitation) => {
    const li = item('Room ' + invitation.room_id.slice(0, 8) + ' as ' + invitation.player_role)
    li.append(' ', button('Accept', async () => {
      try {
        await call('POST', '/rooms/' + invitation.room_id + '/join', { ct: invitation.ct })
        await Promise.all([loadRooms(), loadInvites()])
        await openRoom(invitation.room_id)
      } catch (error) { showError('lobby-error', error) }
    }))
    return li
  }))
}

function renderPlayers() {
  $('players').replaceChildren(...current.room.players.map((player) => {
    names.set(player.user_id, player.display_name || player.username)
    const li = item((player.display_name ? player.display_name + ' · ' : '') + player.username + ' (' + player.game_role + ')', current.online.has(player.user_id) ? 'online' : 'offline')
    if (player.avatar_url) {
      const avatar = document.createElement('img')
      Object.assign(avatar, { src: player.avatar_url, alt: '', width: 24, height: 24, className: 'avatar' })
      li.prepend(avatar)
    }
    return li
  }))
}

function renderTyping() {
  const now = Date.now()
  const who = [...current.typing].filter(([id, until]) => until > now && id !== me.user_id).map(([id]) => names.get(id) || 'someone')
  $('typing').textContent = who.length ? who.join(', ') + (who.length > 1 ? ' are typing…' : ' is typing…') : ''
}

function addMessage(message) {
  if (document.querySelector('[data-id="' + message.message_id + '"]')) return
  const li = document.createElement('li')
  li.dataset.id = message.message_id
  const author = document.createElement('span')
  author.className = 'author'
  author.textContent = (message.author_name || names.get(message.author_id) || 'someone') + ':'
  li.append(author, ' ', document.createTextNode(message.deleted_at ? '(deleted)' : message.body))
  $('messages').append(li)
  $('messages').scrollTop = $('messages').scrollHeight
}

function addNotice(text) {
  $('messages').append(item(text, 'system'))
}

async function openRoom(roomId) {
  const room = await call('GET', '/rooms/' + roomId)
  if (current) {
    send({ op: 'unsubscribe', stream: 'room:' + current.room.room_id })
    send({ op: 'unsubscribe', stream: 'chat:' + current.room.room_id })
  }
  current = { room, online: new Set(), typing: new Map() }
  $('room').hidden = false
  $('room-title').textContent = room.room_name
  renderPlayers()
  const { messages } = await call('GET', '/rooms/' + roomId + '/messages?limit=50')
  $('messages').replaceChildren()
  for (const message of messages.reverse()) addMessage(message)
  send({ op: 'subscribe', stream: 'room:' + roomId })
  send({ op: 'subscribe', stream: 'chat:' + roomId })
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame))
}

function connect() {
  const url = new URL(api + '/realtime', location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  socket = new WebSocket(url)
  socket.onmessage = async ({ data }) => {
    const frame = JSON.parse(data)
    if (frame.op === 'hello') return socket.send(JSON.stringify({ op: 'auth', token }))
    if (frame.op === 'ready') {
      send({ op: 'subscribe', stream: 'user' })
      if (current) { send({ op: 'subscribe', stream: 'room:' + current.room.room_id }); send({ op: 'subscribe', stream: 'chat:' + current.room.room_id }) }
      return
    }
    if (frame.op === 'subscribed' && current && frame.stream === 'chat:' + current.room.room_id && frame.online) {
      current.online = new Set(frame.online)
      return renderPlayers()
    }
    if (!current && frame.op !== 'event') return
    if (frame.op === 'presence' && current && frame.room_id === current.room.room_id) {
      frame.online ? current.online.add(frame.user_id) : current.online.delete(frame.user_id)
      return renderPlayers()
    }
    if (frame.op === 'typing' && current && frame.room_id === current.room.room_id) {
      current.typing.set(frame.user_id, Date.now() + 3000)
      renderTyping()
      return setTimeout(renderTyping, 3100)
    }
    if (frame.op !== 'event') return
    const event = frame.event
    if (frame.stream.startsWith('user:')) {
      if (event.type.startsWith('invitation_')) loadInvites().catch(() => {})
      if (event.type === 'removed_from_room' || event.type === 'invitation_accepted') loadRooms().catch(() => {})
      return
    }
    if (!current || event.room_id !== current.room.room_id) return
    if (event.type === 'message_posted') {
      current.typing.delete(event.author_id)
      renderTyping()
      return addMessage({ ...event, author_name: names.get(event.author_id) })
    }
    if (event.type === 'message_deleted') return document.querySelector('[data-id="' + event.message_id + '"]')?.lastChild?.replaceWith('(deleted)')
    if (event.type === 'message_edited') return document.querySelector('[data-id="' + event.message_id + '"]')?.lastChild?.replaceWith(event.body)
    if (frame.stream.startsWith('room:') && event.type.startsWith('member_') || event.type === 'owner_changed' || event.type === 'room_closed') {
      current.room = await call('GET', '/rooms/' + current.room.room_id).catch(() => current.room)
      renderPlayers()
      const who = names.get(event.user_id) || 'someone'
      if (event.type === 'member_joined') addNotice(who + ' joined')
      if (event.type === 'member_left') addNotice(who + ' left')
      if (event.type === 'member_kicked') addNotice(who + ' was removed')
      if (event.type === 'room_closed') addNotice('The room was closed')
    }
  }
  socket.onclose = ({ code }) => {
    if (code === 4003 || code === 4001 || code === 4002) return logout()
    setTimeout(() => token && connect(), 1000)
  }
}

async function enter() {
  me = await call('GET', '/auth/me')
  $('whoami').textContent = 'Logged in as ' + me.username
  $('login').hidden = true
  $('lobby').hidden = false
  $('logout').hidden = false
  await Promise.all([loadRooms(), loadInvites()])
  connect()
}

function logout() {
  token = null
  sessionStorage.removeItem('token')
  socket?.close()
  location.reload()
}

$('login-form').addEventListener('submit', async (submitted) => {
  submitted.preventDefault()
  const form = new FormData(submitted.target)
  try {
    const answer = await call('POST', '/auth/login', { username: form.get('username'), password: form.get('password') })
    token = answer.access_token.token
    sessionStorage.setItem('token', token)
    showError('login-error')
    await enter()
  } catch (error) { showError('login-error', error) }
})

$('create-form').addEventListener('submit', async (submitted) => {
  submitted.preventDefault()
  const form = new FormData(submitted.target)
  try {
    const room = await call('POST', '/rooms', { room_name: form.get('room_name') })
    submitted.target.reset()
    await loadRooms()
    await openRoom(room.room_id)
  } catch (error) { showError('lobby-error', error) }
})

$('invite-form').addEventListener('submit', async (submitted) => {
  submitted.preventDefault()
  const form = new FormData(submitted.target)
  try {
    await call('POST', '/rooms/' + current.room.room_id + '/invite', { user_name: form.get('user_name'), player_role: form.get('player_role') })
    addNotice(form.get('user_name') + ' was invited')
    submitted.target.elements.user_name.value = ''
  } catch (error) { showError('lobby-error', error) }
})

let typingSent = 0
$('chat-form').elements.body.addEventListener('input', () => {
  if (!current || Date.now() - typingSent < 2000) return
  typingSent = Date.now()
  send({ op: 'typing', room_id: current.room.room_id })
})

$('chat-form').addEventListener('submit', (submitted) => {
  submitted.preventDefault()
  const input = submitted.target.elements.body
  if (!current || !input.value) return
  send({ op: 'send', room_id: current.room.room_id, body: input.value, client_id: 'l-' + Date.now() + '-' + Math.random().toString(36).slice(2, 8) })
  input.value = ''
  typingSent = 0
})

$('logout').addEventListener('click', async () => {
  await call('POST', '/auth/logout').catch(() => {})
  logout()
})

if (token) enter().catch(() => logout())
`
