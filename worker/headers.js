// The request headers the host owns, and the response codings it accepts
// (docs/abi.md, "Policies, targets and secrets").
//
// HOST_OWNED_HEADERS and HOST_OWNED_PREFIXES are the same data as
// policy/headers.go (hostOwnedHeaders, hostOwnedPrefixes), which the engine
// never lets through; policy's TestHostOwnedHeadersMatchTheWorker reads
// them from here with Node and fails when the two differ. The host checks
// them again because a module that bypasses the engine could otherwise
// address or frame the request itself.
//
// No cloudflare: imports here: Node loads this file in that test.

/** Lower-case names of headers only the host may set. */
export const HOST_OWNED_HEADERS = Object.freeze([
  "accept-encoding", "connection", "content-length", "expect", "forwarded",
  "host", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "via",
]);

/** Lower-case prefixes of header names only the host may set. */
export const HOST_OWNED_PREFIXES = Object.freeze(["proxy-", "x-forwarded-"]);

/**
 * Whether `name` (any case) is a header only the host may set
 * (policy.HostOwnedHeader).
 * @param {string} name
 */
export function hostOwnedHeader(name) {
  const l = name.toLowerCase();
  return HOST_OWNED_HEADERS.includes(l) || HOST_OWNED_PREFIXES.some((p) => l.startsWith(p));
}

/**
 * The Accept-Encoding the host sends with every request
 * (internal/codings.AcceptEncoding): only identity is acceptable.
 */
export const ACCEPT_ENCODING = "identity";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The content codings a Content-Encoding value lists (internal/codings.Parse),
 * in the order applied, lower-cased, without identity; null when a member is
 * not a token (such as "gzip;q=1"). Headers.get joins several field lines
 * with ", ", which is one list. Only blanks and tabs around members are
 * skipped, as in Go (String.prototype.trim would skip more).
 * @param {string} value
 * @returns {string[]|null}
 */
export function contentCodings(value) {
  const out = [];
  for (const raw of value.split(",")) {
    const m = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (m === "") continue;
    if (!TOKEN.test(m)) return null;
    const c = m.toLowerCase();
    if (c !== "identity") out.push(c);
  }
  return out;
}

/**
 * Whether a response whose Content-Encoding is `value` (Headers.get's
 * value, or null) has its body as sent (internal/codings.Check): no field,
 * or only identity. Any other coding, in any letter case, is refused before
 * the body is read: secrets are scrubbed from the body as the guest gets
 * it, so an encoded body would carry them past the scrubber, and the host
 * never decodes (workerd's own decoders included).
 * @param {string|null} value
 */
export function bodyAsSent(value) {
  if (value === null) return true;
  const codings = contentCodings(value);
  return codings !== null && codings.length === 0;
}
