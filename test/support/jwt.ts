/** Hand-made JWTs, to present the service with tokens it never issued. */
export function craftJwt(header: Record<string, unknown>, payload: Record<string, unknown>, secret?: string, hash: 'sha256' | 'sha512' = 'sha256'): string {
  const encode = (part: Record<string, unknown>) => Buffer.from(JSON.stringify(part)).toString('base64url')
  const signingInput = `${encode(header)}.${encode(payload)}`
  if (secret === undefined) return `${signingInput}.`
  const signature = new Bun.CryptoHasher(hash, secret).update(signingInput).digest('base64url')
  return `${signingInput}.${signature}`
}

export function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())
}
