import { invalidField } from '../../shared/errors'

/**
 * The networks an account can be linked to, each with the hosts its profile pages live on (and
 * their www. twins), its own first: a link on another is stored on it, so that one page cannot
 * pass for two. A further network is one more line here.
 */
export const NETWORKS = {
  vk: ['vk.com', 'vk.ru', 'm.vk.com'],
  telegram: ['t.me', 'telegram.me'],
  yandex: ['yandex.ru', 'ya.ru'],
  github: ['github.com'],
  ok: ['ok.ru'],
  discord: ['discord.com'],
  steam: ['steamcommunity.com'],
  twitch: ['twitch.tv'],
  youtube: ['youtube.com'],
} as const

export type SocialNetwork = keyof typeof NETWORKS
export const NETWORK_NAMES = ['vk', 'telegram', 'yandex', 'github', 'ok', 'discord', 'steam', 'twitch', 'youtube'] as const satisfies readonly SocialNetwork[]

/** Networks whose page names differ by case (YouTube channel ids); elsewhere names are kept in lower case. */
const CASE_SENSITIVE = new Set<SocialNetwork>(['youtube'])

/**
 * A link to a profile on `network`, as it is stored (and compared): https on one of the network's
 * hosts (no credentials, no other port), a path beyond the root; stored on the network's own host,
 * its path's escapes decoded and empty segments dropped, in lower case where the network ignores
 * case, without query or fragment.
 */
export function canonicalLink(network: SocialNetwork, link: string): string {
  const hosts: readonly string[] = NETWORKS[network]
  const refused = () => invalidField('/connection_link', `must be an https link to a page on ${hosts.join(', ')}`)
  let url: URL
  try {
    url = new URL(link.trim())
  } catch {
    throw refused()
  }
  const host = url.hostname.toLowerCase().replace(/\.$/, '').replace(/^www\./, '')
  if (url.protocol !== 'https:' || url.username || url.password || url.port || !hosts.includes(host)) throw refused()
  const segments = url.pathname.split('/').filter(Boolean).map((segment) => {
    let decoded: string
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      throw refused()
    }
    return encodeURIComponent(CASE_SENSITIVE.has(network) ? decoded : decoded.toLowerCase())
  })
  if (segments.length === 0) throw refused()
  return `https://${hosts[0]}/${segments.join('/')}`
}
