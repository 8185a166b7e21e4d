import type { Server } from 'bun'
import type { Caller } from './password'

/**
 * The client's address: the socket peer, or with a trusted proxy in front, the hop that proxy
 * appended last to X-Forwarded-For (earlier entries are whatever the client chose to send).
 */
export function clientAddress(request: Request, server: Server<unknown> | null, trustProxy: boolean): string {
  if (trustProxy) {
    const lastHop = request.headers.get('x-forwarded-for')?.split(',').at(-1)?.trim()
    if (lastHop) return lastHop
  }
  return server?.requestIP(request)?.address ?? 'unknown'
}

/** The caller of a request, for the password hasher: its address, and the signal that says it went away. */
export function callerOf(request: Request, server: Server<unknown> | null, trustProxy: boolean): Caller {
  return { address: clientAddress(request, server, trustProxy), signal: request.signal }
}
