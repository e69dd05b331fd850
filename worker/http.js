// The front door's pieces (docs/http.md): JSON responses, the name grammar,
// bearer-token auth in constant time, and a request body read no further
// than its limit.

import { MAX_PAYLOAD } from "./abi.js";

/** Request bodies are limited to 1 MiB. */
export const BODY_LIMIT = MAX_PAYLOAD;

const NAME = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Whether `s` is a valid agent name or instance id: 1 to 128 of
 * `A-Z a-z 0-9 . _ -`, and neither `.` nor `..`.
 * @param {string} s
 */
export function validName(s) {
  return NAME.test(s) && s !== "." && s !== "..";
}

/**
 * A JSON response.
 * @param {number} status
 * @param {string} body JSON text
 * @param {Record<string, string>} [headers]
 */
export function jsonResponse(status, body, headers = {}) {
  return new Response(body, {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/**
 * An error response: `{"error":{"type","message"}}`.
 * @param {number} status
 * @param {string} type
 * @param {string} message
 * @param {Record<string, string>} [headers]
 */
export function errorResponse(status, type, message, headers) {
  return jsonResponse(status, JSON.stringify({ error: { type, message } }), headers);
}

const encoder = new TextEncoder();

/**
 * Whether the Authorization header carries `Bearer <token>`. Both sides are
 * hashed first so the comparison takes the same time whatever the lengths,
 * then compared without an early exit.
 * @param {string|null} header the Authorization header
 * @param {string} token the configured token
 * @returns {Promise<boolean>}
 */
export async function bearerMatches(header, token) {
  const m = /^Bearer +(.*)$/i.exec(header ?? "");
  const given = m ? m[1].trim() : "";
  const [a, b] = await Promise.all([given, token].map((s) =>
    crypto.subtle.digest("SHA-256", encoder.encode(s))));
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  let diff = m ? 0 : 1;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

/**
 * Reads a request body as text, stopping as soon as it passes `limit`
 * bytes (a Content-Length over the limit is refused before reading).
 * @param {Request} request
 * @param {number} limit
 * @returns {Promise<{text: string}|{tooLarge: true}|{invalid: true}>}
 *   `invalid` when the bytes are not UTF-8
 */
export async function readBody(request, limit) {
  const declared = request.headers.get("Content-Length");
  if (declared !== null && Number(declared) > limit) return { tooLarge: true };
  const bytes = await readBounded(request.body, limit);
  if (bytes === null) return { tooLarge: true };
  try {
    // fatal: bad UTF-8 is not JSON; ignoreBOM keeps a BOM, which JSON.parse refuses.
    return { text: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes) };
  } catch {
    return { invalid: true };
  }
}

/**
 * Reads a whole body into one array, reading no further than one chunk past
 * `limit` bytes: over the limit it cancels the body and returns null.
 * @param {ReadableStream<Uint8Array>|null} body
 * @param {number} limit
 * @returns {Promise<Uint8Array|null>}
 */
export async function readBounded(body, limit) {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return bytes;
}
