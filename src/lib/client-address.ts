import type { Server } from 'bun'
import type { Caller } from './password'

/**
 * The client as limits count it: the socket peer, or with a trusted proxy in front, the hop that
 * proxy appended last to X-Forwarded-For (earlier entries are whatever the client chose to send).
 * An IPv6 host usually holds a whole /64, so there the /64 is the client (see networkOf).
 */
export function clientAddress(request: Request, server: Server<unknown> | null, trustProxy: boolean): string {
  if (trustProxy) {
    const lastHop = request.headers.get('x-forwarded-for')?.split(',').at(-1)?.trim()
    if (lastHop) return networkOf(lastHop)
  }
  const peer = server?.requestIP(request)?.address
  return peer === undefined ? 'unknown' : networkOf(peer)
}

/** The caller of a request, for the password hasher: its address, and the signal that says it went away. */
export function callerOf(request: Request, server: Server<unknown> | null, trustProxy: boolean): Caller {
  return { address: clientAddress(request, server, trustProxy), signal: request.signal }
}

/**
 * An IPv4 address as it is (also when written IPv4-mapped, ::ffff:192.0.2.1); an IPv6 address as
 * its /64, such as 2001:db8:1:2::/64: one host can take any of 2^64 addresses there, and would
 * otherwise get a fresh set of limits with each. Anything else is returned unchanged.
 */
export function networkOf(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  if (mapped) return mapped[1]!
  if (!address.includes(':')) return address
  const groups = ipv6Groups(address)
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : address
}

/** The eight groups of an IPv6 address, without leading zeros; undefined when it is not one. */
function ipv6Groups(address: string): string[] | undefined {
  const [text = ''] = address.toLowerCase().split('%')
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const split = (half: string | undefined) => (half ? half.split(':') : [])
  const [left, right] = [split(halves[0]), split(halves[1])]
  const missing = 8 - left.length - right.length
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right]
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return undefined
  return groups.map((group) => group.replace(/^0+(?=.)/, ''))
}

/** The service's origin as the client reached it: with a trusted proxy in front, the scheme and host the proxy forwarded. */
export function publicOrigin(request: Request, trustProxy: boolean): string {
  const url = new URL(request.url)
  if (!trustProxy) return url.origin
  const scheme = request.headers.get('x-forwarded-proto')?.split(',')[0]?.trim()
  const host = request.headers.get('x-forwarded-host')?.split(',')[0]?.trim()
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') return url.origin
  // Whatever a client put in X-Forwarded-Host that is no host leaves the origin as it was reached.
  return URL.parse(`${scheme ?? url.protocol.slice(0, -1)}://${host || url.host}`)?.origin ?? url.origin
}
