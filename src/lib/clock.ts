/** Timestamps as the store keeps them: ISO-8601 UTC with milliseconds, which sort and compare as text. */

export function nowIso(): string {
  return new Date().toISOString()
}

export function isoAfter(seconds: number, from = Date.now()): string {
  return new Date(from + seconds * 1000).toISOString()
}
