// The request headers the host owns, and the response encodings it can
// scrub (docs/abi.md, "Policies, targets and secrets").
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
 * What to do with a response's Content-Encoding (the header's value, as
 * Headers.get joins repeated fields, or null): "identity" when the body is
 * as sent, "decoded" when workerd's fetch has already decoded it (one gzip
 * or br coding; workerd keeps the header on the decoded body), or "refuse"
 * for any other coding, which would reach the guest undecoded and so
 * unscrubbed (deflate, zstd, "gzip, gzip", x-gzip, ...).
 * @param {string|null} value
 * @returns {"identity"|"decoded"|"refuse"}
 */
export function contentEncoding(value) {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "" || v === "identity") return "identity";
  if (v === "gzip" || v === "br") return "decoded";
  return "refuse";
}
