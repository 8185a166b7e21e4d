// The peer to beat: the same fan-out through Socket.IO 4.8 on Node. Every client joins one room;
// GET /emit?count=N emits N events of the gateway's frame size to it, a hundred per tick.
import { createServer } from 'node:http'
import { Server } from 'socket.io'

const payload = { type: 'account_changed', user_id: '01a20996-3995-7374-a50f-54d9ebff205a', fields: ['username'], padding: 'x'.repeat(80) }
const http = createServer((request, response) => {
  const url = new URL(request.url, 'http://localhost')
  if (url.pathname === '/ready') return response.end('ok')
  if (url.pathname !== '/emit') return response.writeHead(404).end()
  let left = Number(url.searchParams.get('count'))
  const tick = () => {
    for (let i = 0; i < 100 && left > 0; i++, left--) io.to('lobby').emit('account_changed', payload)
    if (left > 0) setImmediate(tick)
    else response.end('done')
  }
  tick()
})
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false })
io.on('connection', (socket) => socket.join('lobby'))
http.listen(Number(process.env.PORT), '127.0.0.1')
