/**
 * Opens what POST /auth/qr/token answers: the TokenResponse sealed to this page's ECDH key
 * (src/modules/credentials/sealed.ts seals it): ECDH with the service's one-time key, HKDF-SHA-256
 * salted with the request id over both public keys, AES-256-GCM with the request id as additional data.
 */
export interface SealedTokens {
  alg: 'ECDH-ES+HKDF-SHA256+A256GCM'
  epk: { kty: 'EC'; crv: 'P-256'; x: string; y: string }
  iv: string
  ciphertext: string
}

const SEAL_INFO = 'sim-gateway qr-login tokens'
const utf8 = (text: string) => new TextEncoder().encode(text)

/** `keys` is this page's ECDH key pair, whose public half the request was started with. */
export async function unseal<Tokens>(sealed: SealedTokens, keys: CryptoKeyPair, requestId: string): Promise<Tokens> {
  const sender = await crypto.subtle.importKey('jwk', sealed.epk, { name: 'ECDH', namedCurve: 'P-256' }, false, [])
  const shared = await crypto.subtle.deriveBits({ name: 'ECDH', public: sender }, keys.privateKey, 256)
  const own = await crypto.subtle.exportKey('jwk', keys.publicKey)
  const info = utf8([SEAL_INFO, sealed.epk.x, sealed.epk.y, own.x, own.y].join('.'))
  const secret = await crypto.subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey'])
  const key = await crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: utf8(requestId), info }, secret, { name: 'AES-GCM', length: 256 }, false, ['decrypt'])
  const plaintext = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: fromBase64url(sealed.iv), additionalData: utf8(requestId) }, key, fromBase64url(sealed.ciphertext))
  return JSON.parse(new TextDecoder().decode(plaintext)) as Tokens
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replaceAll('-', '+').replaceAll('_', '/'))
  return Uint8Array.from(binary, (char) => char.charCodeAt(0))
}
