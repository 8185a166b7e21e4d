import { invalidField } from '../../shared/errors'
import type { Profile } from './model'

const LANGUAGES = new Intl.DisplayNames(['en'], { type: 'language', fallback: 'none' })
const REGIONS = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' })

/**
 * A profile change as it is stored: the locale and the time zone in their canonical form, checked
 * against the lists the runtime's ICU data knows (CLDR languages and regions, IANA zones), so that
 * a client can hand them to Intl as they are. Fields left out stay undefined; null clears.
 */
export function normaliseProfile<Changes extends Partial<Profile>>(changes: Changes): Changes {
  const normalised = { ...changes }
  if (changes.locale) normalised.locale = canonicalLocale(changes.locale)
  if (changes.time_zone) normalised.time_zone = canonicalTimeZone(changes.time_zone)
  if (changes.email) normalised.email = changes.email.trim()
  return normalised
}

/** What an address is unique by: the whole of it in lower case (the local part too, as most providers treat it). */
export const emailKey = (email: string | null | undefined): string | null => (email ? email.toLowerCase() : null)

/** What a search matches: the name, the address and the names, case folded here so that both stores fold it alike. */
export function searchTextOf(user: Pick<Profile, 'email' | 'display_name' | 'firstname' | 'lastname' | 'middlename'> & { username: string }): string {
  return [user.username, user.email, user.display_name, user.firstname, user.lastname, user.middlename]
    .filter(Boolean)
    .join('\n')
    .toLowerCase()
}

function canonicalLocale(tag: string): string {
  const unknown = () => invalidField('/locale', 'must be a BCP 47 tag of a known language and region, such as en or ru-RU')
  let locale: Intl.Locale
  try {
    locale = new Intl.Locale(Intl.getCanonicalLocales(tag)[0]!)
  } catch {
    throw unknown()
  }
  if (LANGUAGES.of(locale.language) === undefined) throw unknown()
  if (locale.region !== undefined && REGIONS.of(locale.region) === undefined) throw unknown()
  return locale.toString()
}

function canonicalTimeZone(zone: string): string {
  try {
    return new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone
  } catch {
    throw invalidField('/time_zone', 'must be an IANA time zone, such as Europe/Moscow or UTC')
  }
}
