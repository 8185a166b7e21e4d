/** An unguessable token of `bytes` random bytes, URL-safe. */
export function randomToken(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('base64url')
}

/** Tokens are high-entropy already, so a fast hash is the right way to store them (unlike passwords). */
export function sha256(value: string): string {
  return new Bun.CryptoHasher('sha256').update(value).digest('hex')
}
