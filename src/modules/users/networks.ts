import { invalidField } from '../../shared/errors'

/**
 * The networks an account can be linked to, each with the hosts its profile pages live on (and
 * their www. twins). A further network is one more line here.
 */
export const NETWORKS = {
  vk: ['vk.com', 'vk.ru', 'm.vk.com'],
  telegram: ['t.me', 'telegram.me'],
  yandex: ['yandex.ru', 'ya.ru', 'dzen.ru'],
  github: ['github.com'],
  ok: ['ok.ru'],
  discord: ['discord.com'],
  steam: ['steamcommunity.com'],
  twitch: ['twitch.tv'],
  youtube: ['youtube.com'],
} as const

export type SocialNetwork = keyof typeof NETWORKS
export const NETWORK_NAMES = ['vk', 'telegram', 'yandex', 'github', 'ok', 'discord', 'steam', 'twitch', 'youtube'] as const satisfies readonly SocialNetwork[]

/**
 * A link to a profile on `network`, as it is stored (and compared): https, one of the network's
 * hosts in lower case without www., a path beyond the root, no credentials, port, query or fragment.
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
  const path = url.pathname.replace(/\/+$/, '')
  if (url.protocol !== 'https:' || url.username || url.password || url.port || !hosts.includes(host) || path === '') throw refused()
  return `https://${host}${path}`
}
