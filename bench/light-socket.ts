import type { Socket } from 'bun'

/**
 * A websocket client for load generators, on Bun's raw TCP sockets: the handshake, text frames
 * both ways, pings answered, and nothing else. Bun's WebSocket costs a player process several
 * times the server's CPU per connection once it holds thousands (a storm of 20,000 took 8 s of the
 * players' CPU against 6 s of the server's), which would measure the load generator, not the
 * service. Frames out are masked with a zero key: the protocol requires a mask, the server cannot
 * tell one key from another, and XOR with zero leaves the text as it is.
 */
export class LightSocket {
  onopen?: () => void
  onmessage?: (text: string) => void
  onclose?: (code: number, reason: string) => void
  #socket?: Socket<undefined>
  #buffer: Buffer = Buffer.alloc(0)
  #upgraded = false
  #closed = false

  constructor(host: string, port: number, path: string) {
    Bun.connect({
      hostname: host,
      port,
      socket: {
        open: (socket) => {
          this.#socket = socket
          socket.write(
            `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          )
        },
        data: (_, data) => this.#received(data),
        close: () => this.#ended(1006, 'connection lost'),
        error: () => this.#ended(1006, 'connection failed'),
        connectError: () => this.#ended(1006, 'could not connect'),
      },
    }).catch(() => this.#ended(1006, 'could not connect'))
  }

  send(text: string): void {
    const payload = Buffer.from(text)
    const length = payload.length
    const header = length < 126 ? Buffer.alloc(6) : length < 65_536 ? Buffer.alloc(8) : Buffer.alloc(14)
    header[0] = 0x81
    if (length < 126) header[1] = 0x80 | length
    else if (length < 65_536) {
      header[1] = 0x80 | 126
      header.writeUInt16BE(length, 2)
    } else {
      header[1] = 0x80 | 127
      header.writeBigUInt64BE(BigInt(length), 2)
    }
    // The last four bytes of the header are the (zero) mask key.
    this.#socket?.write(Buffer.concat([header, payload]))
  }

  close(): void {
    this.#socket?.end()
    this.#ended(1000, 'closed by the client')
  }

  #received(data: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? data : Buffer.concat([this.#buffer, data])
    this.#frames()
    // What is left of a frame is kept past this call: a copy, since Bun may reuse `data`.
    if (this.#buffer.length > 0) this.#buffer = Buffer.from(this.#buffer)
  }

  #frames(): void {
    if (!this.#upgraded) {
      const end = this.#buffer.indexOf('\r\n\r\n')
      if (end === -1) return
      const status = this.#buffer.subarray(0, end).toString().split(' ')[1]
      this.#buffer = this.#buffer.subarray(end + 4)
      if (status !== '101') return this.#ended(1006, `upgrade answered ${status}`)
      this.#upgraded = true
      this.onopen?.()
    }
    while (this.#buffer.length >= 2) {
      const opcode = this.#buffer[0]! & 0x0f
      let length = this.#buffer[1]! & 0x7f
      let offset = 2
      if (length === 126) {
        if (this.#buffer.length < 4) return
        length = this.#buffer.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (this.#buffer.length < 10) return
        length = Number(this.#buffer.readBigUInt64BE(2))
        offset = 10
      }
      if (this.#buffer.length < offset + length) return
      const payload = this.#buffer.subarray(offset, offset + length)
      this.#buffer = this.#buffer.subarray(offset + length)
      if (opcode === 0x1) this.onmessage?.(payload.toString())
      else if (opcode === 0x8) return this.#ended(payload.length >= 2 ? payload.readUInt16BE(0) : 1005, payload.subarray(2).toString())
      else if (opcode === 0x9) this.#pong(payload)
    }
  }

  #pong(payload: Buffer): void {
    const header = Buffer.from([0x8a, 0x80 | payload.length, 0, 0, 0, 0])
    this.#socket?.write(Buffer.concat([header, payload]))
  }

  #ended(code: number, reason: string): void {
    if (this.#closed) return
    this.#closed = true
    this.#socket?.end()
    this.onclose?.(code, reason)
  }
}

/** Any 16 bytes in base64: the server only hashes it into its answer. */
const KEY = Buffer.from('sim-gateway-load!').subarray(0, 16).toString('base64')
