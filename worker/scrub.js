// Scrubbing secret values out of what the host hands back to a task
// (docs/abi.md, "Policies, targets and secrets"): policy.Scrubber
// transcribed to bytes, since bodies may be binary. tests/scrubdiff_test.go
// holds this file and the Go package to the same output.
//
// No cloudflare: imports here: Node loads this file in that test.

const encoder = new TextEncoder();
const decoder = new TextDecoder(); // not fatal: what is handed back was text already

const EMPTY = new Uint8Array(0);

/**
 * The UTF-8 bytes of `s`.
 * @param {string} s
 * @returns {Uint8Array}
 */
export function utf8(s) {
  return encoder.encode(s);
}

/**
 * The characters common percent-encoders leave alone besides the unreserved
 * ones (policy's escapeStyles); "+" alone means a space is written '+'.
 */
const ESCAPE_STYLES = [
  "", // RFC 3986 strict
  "+", // forms, Go's url.QueryEscape
  "$&+,:;=@", // Go's url.PathEscape
  "!'()*", // JavaScript's encodeURIComponent
];

/**
 * The fewest characters of a base64 core that a Scrubber looks for
 * (policy.MinBase64Core): 12 characters are 72 bits of the value, which
 * ordinary text does not hold by chance.
 */
export const MIN_BASE64_CORE = 12;

/**
 * Replaces secret values with "[REDACTED:NAME]", finding each raw,
 * percent-encoded (each style of ESCAPE_STYLES), JSON-escaped, base64
 * (standard, and unpadded URL-safe) and, for each Basic user, as standard
 * base64 of "USER:value". Like Go's strings.Replacer it scans left to right,
 * and at each position replaces the longest text found there.
 *
 * It also finds the value, its JSON-escaped form, and for each Basic user
 * "USER:value" and its base64, base64-encoded inside a longer text (an
 * endpoint echoing the Authorization header it received, in base64): at
 * each of the three byte offsets in a base64 group, it replaces the core
 * (see base64Core) in both alphabets, when the core has at least
 * MIN_BASE64_CORE characters.
 */
export class Scrubber {
  /**
   * @param {{name: string, value: string, basicUsers?: string[]}[]} secrets
   *   empty values are ignored
   */
  constructor(secrets = []) {
    /** @type {{find: Uint8Array, name: string}[]} */
    const pairs = [];
    const seen = new Set();
    const add = (find, name) => {
      const key = binary(find);
      if (find.length > 0 && !seen.has(key)) {
        seen.add(key);
        pairs.push({ find, name });
      }
    };
    for (const s of secrets) {
      if (!s.value) continue;
      const v = utf8(s.value);
      add(v, s.name);
      for (const keep of ESCAPE_STYLES) add(percentEncode(v, keep), s.name);
      add(jsonEscape(v), s.name);
      add(utf8(base64(v)), s.name);
      add(utf8(base64(v).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")), s.name);
      for (const u of s.basicUsers ?? []) add(utf8(base64(utf8(u + ":" + s.value))), s.name);
      // The texts a request carries that a response may hold inside a
      // longer base64 text (policy's NewScrubber, same order).
      const inner = [v, jsonEscape(v)];
      for (const u of s.basicUsers ?? []) {
        const basic = utf8(u + ":" + s.value);
        inner.push(basic, utf8(base64(basic)));
      }
      for (const t of inner) {
        for (const urlSafe of [false, true]) {
          for (let k = 0; k < 3; k++) add(base64Core(t, k, urlSafe), s.name);
        }
      }
    }
    // Longest first (sort is stable), so that at one position the longest
    // text wins, as it does in Go where earlier pairs have priority.
    pairs.sort((a, b) => b.find.length - a.find.length);
    /** The length in bytes of the longest text looked for; 0 when there is none. */
    this.maxLen = pairs.length > 0 ? pairs[0].find.length : 0;
    /** @type {({find: Uint8Array, repl: Uint8Array}[]|undefined)[]} candidates by first byte */
    this.byFirst = new Array(256);
    for (const p of pairs) {
      (this.byFirst[p.find[0]] ??= []).push({ find: p.find, repl: utf8(`[REDACTED:${p.name}]`) });
    }
  }

  /** Whether there is anything to look for. */
  get empty() {
    return this.maxLen === 0;
  }

  /**
   * `b` with every secret replaced (`b` itself when nothing was found).
   * @param {Uint8Array} b
   * @returns {Uint8Array}
   */
  bytes(b) {
    if (this.empty) return b;
    return this.scan(b, true).out;
  }

  /**
   * `s` with every secret replaced, looked for in its UTF-8 bytes (what the
   * guest receives, and what workerd reads off the wire).
   * @param {string} s
   * @returns {string}
   */
  string(s) {
    if (this.empty) return s;
    const b = utf8(s);
    const out = this.scan(b, true).out;
    return out === b ? s : decoder.decode(out);
  }

  /**
   * A copy of `headers` with every secret replaced in names and values.
   * @param {[string, string][]} headers
   * @returns {[string, string][]}
   */
  headers(headers) {
    return headers.map(([k, v]) => [this.string(k), this.string(v)]);
  }

  /**
   * A scrubber for one stream of chunks.
   * @returns {ScrubStream}
   */
  stream() {
    return new ScrubStream(this);
  }

  /**
   * Replaces what is found in `buf`, left to right. Unless `final` (the
   * data ends with buf), the scan stops at the first position whose outcome
   * more data could change: where the rest of buf begins a text looked for
   * that does not fit in it. Returns the output and the position reached.
   * @param {Uint8Array} buf
   * @param {boolean} final
   * @returns {{out: Uint8Array, pos: number}}
   */
  scan(buf, final) {
    const parts = [];
    let last = 0;
    let i = 0;
    const sure = final ? buf.length : buf.length - this.maxLen; // from here on, a text may not fit
    while (i < buf.length) {
      if (i > sure && this.mayContinue(buf, i)) break;
      const m = this.matchAt(buf, i);
      if (m === null) {
        i++;
        continue;
      }
      parts.push(buf.subarray(last, i), m.repl);
      i += m.find.length;
      last = i;
    }
    if (parts.length === 0) return { out: i === buf.length ? buf : buf.subarray(0, i), pos: i };
    parts.push(buf.subarray(last, i));
    return { out: concat(parts), pos: i };
  }

  /** @private whether buf[i:] is the beginning of a text longer than it */
  mayContinue(buf, i) {
    const rest = buf.length - i;
    outer: for (const c of this.byFirst[buf[i]] ?? []) {
      const f = c.find;
      if (f.length <= rest) break; // longest first: the others fit
      for (let k = 1; k < rest; k++) if (buf[i + k] !== f[k]) continue outer;
      return true;
    }
    return false;
  }

  /** @private the longest text found at buf[i], or null */
  matchAt(buf, i) {
    const candidates = this.byFirst[buf[i]];
    if (!candidates) return null;
    outer: for (const c of candidates) {
      const f = c.find;
      if (i + f.length > buf.length) continue;
      for (let k = 1; k < f.length; k++) if (buf[i + k] !== f[k]) continue outer;
      return c;
    }
    return null;
  }
}

/**
 * Scrubs a body that arrives in chunks, with the same output as scrubbing it
 * whole. It holds back the tail of what it has seen while that tail may be
 * the beginning of a secret that ends in the next chunk: at most maxLen−1
 * bytes, and none when the tail cannot begin one (so a stream of events is
 * not delayed by a chunk for nothing).
 */
export class ScrubStream {
  /** @param {Scrubber} scrubber */
  constructor(scrubber) {
    this.scrubber = scrubber;
    this.carry = EMPTY;
  }

  /**
   * Takes the next chunk (which the caller must not change afterwards);
   * returns what can be handed on already, maybe nothing.
   * @param {Uint8Array} chunk
   * @returns {Uint8Array}
   */
  push(chunk) {
    const s = this.scrubber;
    if (s.empty) return chunk;
    const buf = this.carry.length === 0 ? chunk : concat([this.carry, chunk]);
    const { out, pos } = s.scan(buf, false);
    this.carry = buf.slice(pos); // a copy: the chunk is not kept alive by its tail
    return out;
  }

  /**
   * At the end of the body: what was held back, scrubbed.
   * @returns {Uint8Array}
   */
  flush() {
    const rest = this.carry;
    this.carry = EMPTY;
    return this.scrubber.bytes(rest);
  }
}

/** percent-encodes v, leaving unreserved bytes and those of `keep` alone (policy's escape). */
function percentEncode(v, keep) {
  const HEX = "0123456789ABCDEF";
  const plusForSpace = keep === "+";
  let s = "";
  for (const c of v) {
    const ch = String.fromCharCode(c);
    if (/[A-Za-z0-9._~-]/.test(ch)) s += ch;
    else if (plusForSpace && c === 0x20) s += "+";
    else if (!plusForSpace && c < 0x80 && keep.includes(ch)) s += ch;
    else s += "%" + HEX[c >> 4] + HEX[c & 15];
  }
  return utf8(s);
}

/** v escaped the way policy's jsonEscape escapes it (as encoding/json does with HTML escaping). */
function jsonEscape(v) {
  const HEX = "0123456789abcdef";
  const out = [];
  for (const c of v) {
    if (c === 0x22 || c === 0x5c) out.push(0x5c, c);
    else if (c === 0x3c || c === 0x3e || c === 0x26 || c < 0x20) {
      out.push(0x5c, 0x75, 0x30, 0x30, HEX.charCodeAt(c >> 4), HEX.charCodeAt(c & 15));
    } else out.push(c);
  }
  return Uint8Array.from(out);
}

/**
 * The characters of the base64 of `v`, after `k` bytes (0 ≤ k < 3) of
 * whatever precedes it in a base64 group, that depend on v's bytes alone;
 * empty when fewer than MIN_BASE64_CORE (policy's base64Core). Character c
 * holds bits [6c, 6c+6) and v bits [8k, 8(k+v.length)).
 * @param {Uint8Array} v
 * @param {number} k
 * @param {boolean} urlSafe
 * @returns {Uint8Array}
 */
function base64Core(v, k, urlSafe) {
  const first = Math.floor((8 * k + 5) / 6);
  const end = Math.floor((8 * (k + v.length)) / 6);
  if (end - first < MIN_BASE64_CORE) return EMPTY;
  const buf = new Uint8Array(k + v.length); // zeros before v: they do not reach the core
  buf.set(v, k);
  const core = base64(buf).slice(first, end);
  return utf8(urlSafe ? core.replaceAll("+", "-").replaceAll("/", "_") : core);
}

/**
 * Standard base64 with padding.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base64(bytes) {
  return btoa(binary(bytes));
}

/** One char per byte: a key for a set, or btoa's input. */
function binary(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return s;
}

/** @param {Uint8Array[]} parts */
function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
