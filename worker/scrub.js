// Scrubbing secret values out of what the host hands back to a task
// (docs/abi.md, "Policies, targets and secrets"): internal/scrub
// transcribed, byte for byte, since bodies may be binary.
// tests/scrubdiff_test.go holds this file and the Go package to the same
// output. The Go package's documentation says what is found and why; the
// comments here follow its structure.
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
 * The fewest bytes of a text found inside longer hex or base64 text
 * (scrub.MinEncodedLen): 72 bits, which ordinary text does not hold by
 * chance. A shorter one is found hex or base64 encoded only as a whole run.
 */
export const MIN_ENCODED_LEN = 9;

/** Line-break bytes a hex or base64 run may hold between two characters. */
const MAX_GAP = 2;

// The decoding views (scrub's tokenize.go).
const VIEW_RAW = 0;
const VIEW_PERCENT = 1;
const VIEW_FORM = 2;
const VIEW_JSON = 3;
const VIEW_HTML = 4;
const NUM_VIEWS = 5;
/** The most source bytes a view reads for one decoded byte. */
const EXPANSION = [1, 3, 3, 6, 12];
const MAX_REF_DIGITS = 8;
const MAX_NAME_LEN = 7;
const PASS_EVERY = 4096;

const HTML_NAMES = new Map(Object.entries({
  amp: "&", AMP: "&", lt: "<", LT: "<", gt: ">", GT: ">",
  quot: '"', QUOT: '"', apos: "'", nbsp: "\u00a0", Tab: "\t", NewLine: "\n",
  excl: "!", num: "#", dollar: "$", percnt: "%", lpar: "(", rpar: ")",
  ast: "*", midast: "*", plus: "+", comma: ",", period: ".", sol: "/",
  colon: ":", semi: ";", equals: "=", quest: "?", commat: "@",
  lsqb: "[", lbrack: "[", bsol: "\\", rsqb: "]", rbrack: "]", Hat: "^",
  lowbar: "_", grave: "`", lcub: "{", lbrace: "{", verbar: "|", vert: "|",
  rcub: "}", rbrace: "}", copy: "\u00a9", reg: "\u00ae", euro: "\u20ac",
}).map(([k, v]) => [k, utf8(v)]));

const WINDOWS_1252 = [
  0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
  0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
];

/** -1: not a hex digit. */
const HEX_VAL = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VAL[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_VAL[0x61 + i] = HEX_VAL[0x41 + i] = 10 + i;

const SYM_OTHER = -1;
const SYM_GAP = -2;
const SYM_PAD = -3;
const HEX_CLASS = new Int8Array(256).fill(SYM_OTHER);
const B64_CLASS = new Int8Array(256).fill(SYM_OTHER);
for (const c of [HEX_CLASS, B64_CLASS]) c[13] = c[10] = SYM_GAP;
B64_CLASS[0x3d] = SYM_PAD;
for (let i = 0; i < 10; i++) {
  HEX_CLASS[0x30 + i] = i;
  B64_CLASS[0x30 + i] = 52 + i;
}
for (let i = 0; i < 6; i++) HEX_CLASS[0x61 + i] = HEX_CLASS[0x41 + i] = 10 + i;
for (let i = 0; i < 26; i++) {
  B64_CLASS[0x41 + i] = i;
  B64_CLASS[0x61 + i] = 26 + i;
}
B64_CLASS[0x2b] = B64_CLASS[0x2d] = 62;
B64_CLASS[0x2f] = B64_CLASS[0x5f] = 63;

const isAlnum = (b) => (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39);
const isLetter = (b) => (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a);

/** The lesser of two positions, -1 being none. */
const minLive = (a, b) => (a < 0 || (b >= 0 && b < a) ? b : a);

/**
 * A set of patterns and its Aho-Corasick automaton, a dense table over byte
 * classes (scrub's family).
 */
class Family {
  /**
   * @param {Uint8Array[]} texts
   * @param {number[]} secs the secret of each text
   */
  constructor(texts, secs) {
    /** @type {Map<number, number>[]} */
    const next = [new Map()];
    const term = [-1];
    const depth = [0];
    const used = new Uint8Array(256);
    /** @type {{n: number, sec: number}[]} */
    this.pats = [];
    this.maxLen = 0;
    texts.forEach((t, i) => {
      if (t.length === 0) return;
      let s = 0;
      for (const b of t) {
        used[b] = 1;
        let nx = next[s].get(b);
        if (nx === undefined) {
          nx = next.length;
          next.push(new Map());
          term.push(-1);
          depth.push(depth[s] + 1);
          next[s].set(b, nx);
        }
        s = nx;
      }
      if (term[s] < 0) {
        term[s] = this.pats.length;
        this.pats.push({ n: t.length, sec: secs[i] });
        this.maxLen = Math.max(this.maxLen, t.length);
      }
    });
    this.classOf = new Uint16Array(256);
    let nc = 1;
    for (let b = 0; b < 256; b++) if (used[b]) this.classOf[b] = nc++;
    this.nc = nc;
    const n = next.length;
    this.trans = new Int32Array(n * nc);
    this.fail = new Int32Array(n);
    this.best = new Int32Array(n);
    this.term = Int32Array.from(term);
    this.depth = Int32Array.from(depth);
    /** @type {Uint8Array[]} */
    this.kids = new Array(n);
    const queue = [0];
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi];
      const kids = Uint8Array.from([...next[s].keys()]).sort();
      this.kids[s] = kids;
      const row = s * nc;
      if (s !== 0) this.trans.copyWithin(row, this.fail[s] * nc, (this.fail[s] + 1) * nc);
      for (const b of kids) {
        const c = next[s].get(b);
        this.fail[c] = s === 0 ? 0 : this.trans[this.fail[s] * nc + this.classOf[b]];
        this.trans[row + this.classOf[b]] = c;
        queue.push(c);
      }
      this.best[s] = term[s] >= 0 ? term[s] : s === 0 ? -1 : this.best[this.fail[s]];
    }
  }

  step(s, b) {
    return this.trans[s * this.nc + this.classOf[b]];
  }

  /** scrub's liveDepth: how many bytes read a match may still begin with; -1 none. */
  liveDepth(s, pb, nb) {
    for (let q = s; ; q = this.fail[q]) {
      if (q === 0 && nb === 0) return -1;
      for (const c of this.kids[q]) if (nb === 0 || c >> (8 - nb) === pb) return this.depth[q];
      if (q === 0) return -1;
    }
  }
}

/** Where the last decoded bytes began in the source. */
class Ring {
  constructor(n) {
    let size = 1;
    while (size < n + 1) size <<= 1;
    this.at = new Float64Array(size);
    this.mask = size - 1;
  }
}

/** A view's tokenizer: the state of one decoding between two source bytes. */
class Tokenizer {
  constructor(kind) {
    this.kind = kind;
    this.st = 0;
    this.start = 0;
    this.n = 0;
    this.buf = new Uint8Array(16);
    this.val = 0;
    this.hasHi = false;
    this.hi = 0;
    this.hiS = 0;
    this.hiE = 0;
  }

  idle() {
    return this.st === 0 && !this.hasHi;
  }

  pending() {
    if (this.hasHi) return this.hiS;
    if (this.st !== 0) return this.start;
    return -1;
  }

  begin(b, pos, st) {
    this.st = st;
    this.start = pos;
    this.n = 1;
    this.val = 0;
    this.buf[0] = b;
  }

  add(b) {
    this.buf[this.n++] = b;
  }

  literal(out) {
    const n = this.n;
    this.st = 0;
    this.n = 0;
    for (let i = 0; i < n; i++) this.lit(this.buf[i], this.start + i, out);
  }

  lit(b, pos, out) {
    if (this.hasHi) this.flushHi(out);
    out.put(b, pos, pos + 1);
  }

  flushHi(out) {
    this.hasHi = false;
    putRune(0xfffd, this.hiS, this.hiE, out);
  }

  feed(b, pos, out) {
    switch (this.kind) {
      case VIEW_RAW:
        out.put(b, pos, pos + 1);
        return;
      case VIEW_PERCENT:
      case VIEW_FORM:
        this.feedPercent(b, pos, out);
        return;
      case VIEW_JSON:
        this.feedJSON(b, pos, out);
        return;
      case VIEW_HTML:
        this.feedHTML(b, pos, out);
    }
  }

  feedPercent(b, pos, out) {
    for (;;) {
      switch (this.st) {
        case 0:
          if (b === 0x25) this.begin(b, pos, 1);
          else if (b === 0x2b && this.kind === VIEW_FORM) out.put(0x20, pos, pos + 1);
          else out.put(b, pos, pos + 1);
          return;
        case 1:
          if (HEX_VAL[b] >= 0) {
            this.val = HEX_VAL[b];
            this.add(b);
            this.st = 2;
            return;
          }
          break;
        case 2:
          if (HEX_VAL[b] >= 0) {
            this.st = 0;
            this.n = 0;
            out.put((this.val << 4) | HEX_VAL[b], this.start, pos + 1);
            return;
          }
      }
      this.literal(out);
    }
  }

  feedJSON(b, pos, out) {
    for (;;) {
      switch (this.st) {
        case 0:
          if (b === 0x5c) this.begin(b, pos, 1);
          else this.lit(b, pos, out);
          return;
        case 1: {
          let c = 0;
          switch (b) {
            case 0x22: case 0x5c: case 0x2f: c = b; break;
            case 0x62: c = 8; break;
            case 0x66: c = 12; break;
            case 0x6e: c = 10; break;
            case 0x72: c = 13; break;
            case 0x74: c = 9; break;
            case 0x75:
              this.add(b);
              this.st = 2;
              return;
          }
          if (c !== 0) {
            this.st = 0;
            this.n = 0;
            if (this.hasHi) this.flushHi(out);
            out.put(c, this.start, pos + 1);
            return;
          }
          break;
        }
        case 2:
          if (HEX_VAL[b] >= 0) {
            this.val = (this.val << 4) | HEX_VAL[b];
            this.add(b);
            if (this.n === 6) {
              this.st = 0;
              this.n = 0;
              this.code(this.val, this.start, pos + 1, out);
            }
            return;
          }
      }
      this.literal(out);
    }
  }

  code(c, s, e, out) {
    if (c >= 0xd800 && c < 0xdc00) {
      if (this.hasHi) this.flushHi(out);
      this.hasHi = true;
      this.hi = c;
      this.hiS = s;
      this.hiE = e;
    } else if (c >= 0xdc00 && c < 0xe000) {
      if (this.hasHi) {
        this.hasHi = false;
        putRune(0x10000 + ((this.hi - 0xd800) << 10) + (c - 0xdc00), this.hiS, e, out);
      } else putRune(0xfffd, s, e, out);
    } else {
      if (this.hasHi) this.flushHi(out);
      putRune(c, s, e, out);
    }
  }

  feedHTML(b, pos, out) {
    for (;;) {
      switch (this.st) {
        case 0:
          if (b === 0x26) this.begin(b, pos, 1);
          else out.put(b, pos, pos + 1);
          return;
        case 1:
          if (b === 0x23) {
            this.add(b);
            this.st = 2;
            return;
          }
          if (isLetter(b)) {
            this.add(b);
            this.st = 5;
            return;
          }
          break;
        case 2:
          if (b === 0x78 || b === 0x58) {
            this.add(b);
            this.st = 3;
            return;
          }
          if (b >= 0x30 && b <= 0x39) {
            this.add(b);
            this.val = b - 0x30;
            this.st = 4;
            return;
          }
          break;
        case 3:
        case 4: {
          const digits = this.st === 3 ? this.n - 3 : this.n - 2;
          const ok = this.st === 3 ? HEX_VAL[b] >= 0 : b >= 0x30 && b <= 0x39;
          if (ok && digits < MAX_REF_DIGITS) {
            // Below 2^32: at most 8 digits.
            this.val = this.st === 3 ? this.val * 16 + HEX_VAL[b] : this.val * 10 + (b - 0x30);
            this.add(b);
            return;
          }
          if (!ok && digits > 0) {
            this.st = 0;
            this.n = 0;
            if (b === 0x3b) {
              putRune(htmlRune(this.val), this.start, pos + 1, out);
              return;
            }
            putRune(htmlRune(this.val), this.start, pos, out);
            continue;
          }
          break;
        }
        case 5:
          if (isAlnum(b) && this.n - 1 < MAX_NAME_LEN) {
            this.add(b);
            return;
          }
          if (b === 0x3b) {
            const v = HTML_NAMES.get(String.fromCharCode(...this.buf.subarray(1, this.n)));
            if (v) {
              this.st = 0;
              this.n = 0;
              for (const c of v) out.put(c, this.start, pos + 1);
              return;
            }
          }
      }
      this.literal(out);
    }
  }

  finish(end, out) {
    if (this.kind === VIEW_HTML && ((this.st === 3 && this.n > 3) || this.st === 4)) {
      this.st = 0;
      this.n = 0;
      putRune(htmlRune(this.val), this.start, end, out);
    }
    if (this.st !== 0) this.literal(out);
    if (this.hasHi) this.flushHi(out);
  }
}

function htmlRune(c) {
  if (c >= 0x80 && c <= 0x9f) return WINDOWS_1252[c - 0x80];
  if (c === 0 || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff) return 0xfffd;
  return c;
}

/** Writes the UTF-8 bytes of code point r, each spanning [s, e). */
function putRune(r, s, e, out) {
  if (r < 0x80) out.put(r, s, e);
  else if (r < 0x800) {
    out.put(0xc0 | (r >> 6), s, e);
    out.put(0x80 | (r & 0x3f), s, e);
  } else if (r < 0x10000) {
    out.put(0xe0 | (r >> 12), s, e);
    out.put(0x80 | ((r >> 6) & 0x3f), s, e);
    out.put(0x80 | (r & 0x3f), s, e);
  } else {
    out.put(0xf0 | (r >> 18), s, e);
    out.put(0x80 | ((r >> 12) & 0x3f), s, e);
    out.put(0x80 | ((r >> 6) & 0x3f), s, e);
    out.put(0x80 | (r & 0x3f), s, e);
  }
}

/** Finds a family's patterns in a view's decoded bytes. */
class TextMatcher {
  constructor(f) {
    this.f = f;
    this.st = 0;
    this.n = 0;
    this.r = new Ring(f.maxLen);
  }

  put(e, b, s, end) {
    const f = this.f;
    this.st = f.step(this.st, b);
    this.r.at[this.n & this.r.mask] = s;
    this.n++;
    e.ops++;
    const p = f.best[this.st];
    if (p >= 0) {
      const pat = f.pats[p];
      e.report(this.r.at[(this.n - pat.n) & this.r.mask], end, pat.sec);
    }
  }

  live() {
    const d = this.f.liveDepth(this.st, 0, 0);
    return d > 0 ? this.r.at[(this.n - d) & this.r.mask] : -1;
  }
}

class Decoder {
  constructor(maxLen) {
    this.r = new Ring(maxLen);
    this.reset();
  }

  reset() {
    this.st = 0;
    this.acc = 0;
    this.nb = 0;
    this.pend = 0;
    this.n = 0;
  }
}

/** Finds a family's patterns hex or base64 encoded (scrub's symMatcher). */
class SymMatcher {
  constructor(f, hex) {
    this.f = f;
    this.cls = hex ? HEX_CLASS : B64_CLASS;
    this.w = hex ? 4 : 6;
    this.ndec = hex ? 2 : 4;
    this.dec = [];
    for (let i = 0; i < this.ndec; i++) this.dec.push(new Decoder(f.maxLen));
    /** @type {{start: number, end: number, sec: number, whole: boolean, ext: boolean}[]} */
    this.tails = [];
    this.reset();
  }

  reset() {
    this.inRun = false;
    this.nsym = 0;
    this.gap = 0;
    this.pads = 0;
    this.tails.length = 0;
  }

  put(e, b, s, end) {
    const c = this.cls[b];
    if (this.pads > 0) {
      if (c === SYM_PAD && this.pads === 1) {
        this.extend(end);
        this.resolve(e);
        return;
      }
      this.resolve(e);
    }
    if (c >= 0) {
      if (this.inRun) {
        this.tails.length = 0;
        this.gap = 0;
      } else {
        this.inRun = true;
        this.nsym = 0;
        this.gap = 0;
      }
      if (this.nsym < this.ndec) this.dec[this.nsym].reset();
      this.nsym++;
      const k = Math.min(this.nsym, this.ndec);
      for (let r = 0; r < k; r++) this.decode(e, r, c, s, end);
    } else if (c === SYM_GAP) {
      if (this.inRun && ++this.gap > MAX_GAP) this.endRun(e);
    } else if (c === SYM_PAD && this.inRun && this.gap === 0 && this.tails.length > 0) {
      this.inRun = false;
      this.extend(end);
    } else this.endRun(e);
  }

  decode(e, r, v, s, end) {
    const d = this.dec[r];
    d.acc = ((d.acc << this.w) | v) & 0x3fff;
    d.nb += this.w;
    if (d.nb >= 8) {
      d.nb -= 8;
      const b = (d.acc >> d.nb) & 0xff;
      const f = this.f;
      d.st = f.step(d.st, b);
      d.r.at[d.n & d.r.mask] = d.pend;
      d.n++;
      e.ops++;
      const p = f.best[d.st];
      if (p >= 0) {
        const pat = f.pats[p];
        const whole = pat.n < MIN_ENCODED_LEN;
        if (!whole || (r === 0 && d.n === pat.n)) {
          const t = { start: d.r.at[(d.n - pat.n) & d.r.mask], end, sec: pat.sec, whole, ext: false };
          if (!whole) e.report(t.start, t.end, t.sec);
          this.tails.push(t);
        }
      }
    }
    d.pend = s;
  }

  extend(end) {
    this.pads++;
    for (const t of this.tails) {
      t.end = end;
      t.ext = true;
    }
  }

  resolve(e) {
    for (const t of this.tails) if (t.whole || t.ext) e.report(t.start, t.end, t.sec);
    this.tails.length = 0;
    this.pads = 0;
  }

  endRun(e) {
    if (this.inRun) {
      this.inRun = false;
      this.resolve(e);
    }
  }

  finish(e) {
    if (this.pads > 0) this.resolve(e);
    this.endRun(e);
  }

  live() {
    let at = -1;
    for (const t of this.tails) at = minLive(at, t.start);
    if (!this.inRun) return at;
    const k = Math.min(this.nsym, this.ndec);
    for (let r = 0; r < k; r++) {
      const d = this.dec[r];
      const dp = this.f.liveDepth(d.st, d.acc & ((1 << d.nb) - 1), d.nb);
      if (dp > 0) at = minLive(at, d.r.at[(d.n - dp) & d.r.mask]);
      else if (dp === 0) at = minLive(at, d.pend);
    }
    return at;
  }
}

/** Reads the text again from inside a decoded escape (scrub's alt). */
class Alt {
  constructor(start, kind, e) {
    this.start = start;
    this.tok = new Tokenizer(kind);
    this.synced = false;
    this.dead = false;
    this.st = 0;
    this.e = e;
    this.f = e.sc.text;
  }

  put(b, s, end) {
    if (this.dead) return;
    this.e.ops++;
    const f = this.f;
    const nx = f.step(this.st, b);
    if (f.depth[nx] !== f.depth[this.st] + 1) {
      this.dead = true;
      return;
    }
    this.st = nx;
    const p = f.term[nx];
    if (p >= 0) this.e.report(this.start, end, f.pats[p].sec);
    if (f.kids[nx].length === 0) this.dead = true;
  }
}

/** One decoding of the source and the matchers that read it. */
class View {
  constructor(e, kind) {
    this.e = e;
    this.tok = new Tokenizer(kind);
    this.text = new TextMatcher(e.sc.text);
    this.hex = kind === VIEW_RAW ? new SymMatcher(e.sc.hex, true) : null;
    this.b64 = new SymMatcher(e.sc.b64, false);
    /** @type {Alt[]} */
    this.alts = [];
    /** @type {number[]} */
    this.spawns = [];
    this.spawnS = -1;
  }

  reset() {
    this.tok = new Tokenizer(this.tok.kind);
    this.text.st = 0;
    this.text.n = 0;
    this.b64.reset();
    this.hex?.reset();
    this.spawns.length = 0;
    this.spawnS = -1;
    this.alts.length = 0;
  }

  put(b, s, end) {
    const e = this.e;
    this.text.put(e, b, s, end);
    this.hex?.put(e, b, s, end);
    this.b64.put(e, b, s, end);
    for (const a of this.alts) if (a.synced) a.put(b, s, end);
    if (end - s > 1 && s !== this.spawnS) {
      this.spawnS = s;
      this.spawns.push(s, end);
    }
  }

  feed(b, pos) {
    this.tok.feed(b, pos, this);
    if (this.tok.kind === VIEW_RAW) return;
    for (const a of this.alts) {
      if (!a.synced && !a.dead) {
        this.e.ops++;
        a.tok.feed(b, pos, a);
        a.synced = a.tok.idle() && this.tok.idle();
      }
    }
    this.spawn(pos + 1, false);
    if (this.alts.length > 0) this.alts = this.alts.filter((a) => !a.dead);
  }

  /** Starts an alt inside each escape just decoded, reading the source up to end. */
  spawn(end, final) {
    const e = this.e;
    for (let i = 0; i < this.spawns.length; i += 2) {
      for (let p = this.spawns[i] + 1; p < this.spawns[i + 1]; p++) {
        const a = new Alt(p, this.tok.kind, e);
        for (let q = p; q < end && !a.dead; q++) {
          e.ops++;
          a.tok.feed(e.src[q - e.srcBase], q, a);
        }
        if (final) a.tok.finish(end, a);
        else {
          a.synced = a.tok.idle() && this.tok.idle();
          this.alts.push(a);
        }
      }
    }
    this.spawns.length = 0;
  }

  finish(end) {
    this.tok.finish(end, this);
    for (const a of this.alts) if (!a.synced && !a.dead) a.tok.finish(end, a);
    this.spawn(end, true);
    this.hex?.finish(this.e);
    this.b64.finish(this.e);
    this.alts.length = 0;
  }

  live() {
    let at = this.tok.pending();
    for (const a of this.alts) at = minLive(at, a.start);
    at = minLive(at, this.text.live());
    if (this.hex) at = minLive(at, this.hex.live());
    return minLive(at, this.b64.live());
  }
}

/** Output bytes, grown as needed. */
class Out {
  constructor() {
    this.buf = new Uint8Array(256);
    this.len = 0;
  }

  append(b) {
    if (this.len + b.length > this.buf.length) {
      const n = new Uint8Array(Math.max(this.buf.length * 2, this.len + b.length));
      n.set(this.buf.subarray(0, this.len));
      this.buf = n;
    }
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  take() {
    const out = this.buf.slice(0, this.len);
    this.len = 0;
    return out;
  }
}

/** Scrubs one text, whole or as a stream of chunks (scrub's engine). */
class Engine {
  /** @param {Scrubber} sc */
  constructor(sc) {
    this.sc = sc;
    this.views = [];
    for (let k = 0; k < NUM_VIEWS; k++) this.views.push(new View(this, k));
    this.out = new Out();
    this.reset();
  }

  reset() {
    for (const v of this.views) v.reset();
    this.pos = 0;
    this.src = EMPTY;
    this.srcBase = 0;
    this.srcLen = 0;
    this.out.len = 0;
    this.lazy = false;
    this.emitted = 0;
    this.settled = 0;
    this.lastSec = -1;
    /** @type {{start: number, end: number, sec: number}[]} */
    this.cands = [];
    this.late = 0;
    this.ops = 0;
    // The run of bytes a match may hold that ends what was read (scrub's
    // engine.span), and how many gaps end it.
    this.span = 0;
    this.gaps = 0;
  }

  report(start, end, sec) {
    if (start < this.settled) {
      this.late++;
      return;
    }
    this.cands.push({ start, end, sec });
  }

  /** Reads p, which this.src already ends with. */
  write(p) {
    const views = this.views;
    for (let i = 0; i < p.length; i++) {
      const b = p[i];
      const pos = this.pos;
      for (let k = 0; k < NUM_VIEWS; k++) views[k].feed(b, pos);
      this.pos++;
      this.track(b);
      if (this.pos % PASS_EVERY === 0) this.pass(this.handOut());
    }
    this.pass(this.handOut());
  }

  /** Extends or ends the run of bytes a match may hold (scrub's engine.track). */
  track(b) {
    switch (this.sc.span[b]) {
      case SPAN_BYTE:
        this.span++;
        this.gaps = 0;
        break;
      case SPAN_GAP:
        if (this.span > 0 && this.gaps < MAX_GAP) {
          this.span++;
          this.gaps++;
        } else {
          this.span = 0;
          this.gaps = 0;
        }
        break;
      default:
        this.span = 0;
        this.gaps = 0;
    }
    if (this.span > this.sc.holdBack) this.span = this.sc.holdBack;
  }

  /**
   * Where a stream's text may be handed out up to (scrub's engine.handOut):
   * before the run of bytes a match may hold that ends what was read,
   * whether or not a match begins there, so that what is handed out does
   * not tell a hostile origin whether its guess begins a secret.
   */
  handOut() {
    return Math.min(this.live(), this.pos - this.span);
  }

  finish() {
    for (const v of this.views) v.finish(this.pos);
    this.pass(this.pos);
  }

  live() {
    let at = this.pos;
    for (const v of this.views) {
      const l = v.live();
      if (l >= 0 && l < at) at = l;
    }
    return at;
  }

  pass(upTo) {
    const ready = [];
    const rest = [];
    for (const c of this.cands) (c.start < upTo ? ready : rest).push(c);
    this.cands = rest;
    ready.sort((a, b) => a.start - b.start || b.end - a.end || a.sec - b.sec);
    for (const c of ready) {
      if (c.end <= this.emitted) continue;
      if (c.start < this.emitted) {
        if (c.sec === this.lastSec) {
          this.emitted = c.end;
          continue;
        }
      } else this.emitSource(c.start);
      if (this.lazy) {
        this.lazy = false;
        this.out.append(this.src.subarray(0, this.emitted - this.srcBase));
      }
      this.out.append(this.sc.redactions[c.sec]);
      this.emitted = c.end;
      this.lastSec = c.sec;
    }
    if (upTo > this.emitted) this.emitSource(upTo);
    this.settled = Math.max(this.settled, upTo);
  }

  emitSource(to) {
    if (to > this.emitted) {
      if (!this.lazy) this.out.append(this.src.subarray(this.emitted - this.srcBase, to - this.srcBase));
      this.emitted = to;
      this.lastSec = -1;
    }
  }

  /** Appends a chunk to the source kept, dropping what is decided and no alt can read again. */
  keep(chunk) {
    const drop = Math.min(this.emitted, this.settled) - this.srcBase;
    const kept = this.src.subarray(drop, this.srcLen);
    if (kept.length + chunk.length > this.src.length) {
      const n = new Uint8Array(Math.max(2 * (kept.length + chunk.length), 4096));
      n.set(kept);
      this.src = n;
    } else this.src.copyWithin(0, drop, this.srcLen);
    this.src.set(chunk, kept.length);
    this.srcBase += drop;
    this.srcLen = kept.length + chunk.length;
  }
}

/**
 * Replaces secret values with "[REDACTED:NAME]" (internal/scrub's
 * Scrubber): raw; hex in either case; percent-encoded with any bytes
 * escaped in either case, '+' for space or not; JSON-escaped (\/,
 * \uXXXX for any character, surrogate pairs); HTML character references
 * (decimal, hex, named); base64 in both alphabets, padded or not, wrapped
 * across lines, and inside longer base64 text at any offset (texts of
 * MIN_ENCODED_LEN bytes or more); and, for each Basic user, "USER:value"
 * base64-encoded. Where spans overlap the earliest wins, then the longest,
 * then the secret listed first; a secret overlapping another's redaction
 * is replaced from where that one ends, so no part of either is left.
 */
export class Scrubber {
  /**
   * @param {{name: string, value: string, basicUsers?: string[]}[]} secrets
   *   empty values are ignored
   */
  constructor(secrets = []) {
    /** @type {Uint8Array[]} */
    this.redactions = [];
    /** @type {{text: string, sec: number}[]} lower-case encodings that betray a value in a header name */
    this.names = [];
    const text = [], textSec = [], b64 = [], b64Sec = [], hex = [], hexSec = [];
    for (const s of secrets) {
      if (!s.value) continue;
      const i = this.redactions.length;
      this.redactions.push(utf8(`[REDACTED:${s.name}]`));
      const v = utf8(s.value);
      // As encoding/json writes it, with and without HTML escaping, and
      // with "/" as "\/" (PHP's json_encode), as scrub.New.
      for (const f of [v, jsonEscape(v, false), jsonEscape(v, true), escapeSlashes(jsonEscape(v, false))]) {
        text.push(f);
        textSec.push(i);
        b64.push(f);
        b64Sec.push(i);
      }
      for (const u of s.basicUsers ?? []) {
        const basic = utf8(u + ":" + s.value);
        b64.push(basic, utf8(base64(basic)));
        b64Sec.push(i, i);
      }
      hex.push(v);
      hexSec.push(i);
      if (v.length >= MIN_ENCODED_LEN) this.names.push(...foldedForms(i, v, s.basicUsers ?? []));
    }
    /** The most bytes a stream holds back; 0 when there is nothing to find. */
    this.holdBack = 0;
    if (this.redactions.length === 0) return;
    this.text = new Family(text, textSec);
    this.b64 = new Family(b64, b64Sec);
    this.hex = new Family(hex, hexSec);
    this.holdBack = holdBack(this.text.maxLen, this.b64.maxLen, this.hex.maxLen);
    this.span = spanClass(text);
    /** @type {Engine|null} an engine for one whole text at a time */
    this.engine = null;
  }

  /** Whether there is anything to look for. */
  get empty() {
    return this.holdBack === 0;
  }

  /**
   * `b` with every secret replaced (`b` itself when nothing was found).
   * @param {Uint8Array} b
   * @returns {Uint8Array}
   */
  bytes(b) {
    if (this.empty || b.length === 0) return b;
    const e = this.engine ?? new Engine(this);
    this.engine = null; // not reentrant: a nested call builds its own
    e.reset();
    e.src = b;
    e.srcLen = b.length;
    e.lazy = true;
    e.write(b);
    e.finish();
    const out = e.lazy ? b : e.out.take();
    e.src = EMPTY;
    if (b.length <= 1 << 20) this.engine = e;
    return out;
  }

  /**
   * `s` with every secret replaced, looked for in its UTF-8 bytes (what the
   * guest receives, and what workerd reads off the wire).
   * @param {string} s
   * @returns {string}
   */
  string(s) {
    if (this.empty || s === "") return s;
    const b = utf8(s);
    const out = this.bytes(b);
    return out === b ? s : decoder.decode(out);
  }

  /**
   * A copy of `headers` with every secret replaced in names and values.
   * @param {[string, string][]} headers
   * @returns {[string, string][]}
   */
  headers(headers) {
    return headers.map(([k, v]) => [this.name(k), this.string(v)]);
  }

  /**
   * A header name scrubbed as any text, then in lower case (scrub's
   * Scrubber.name): workerd hands names over re-cased, so a value a
   * server put in one, raw or base64 encoded, has lost its case, and the
   * whole name goes.
   * @param {string} n
   */
  name(n) {
    const out = this.string(n);
    if (out !== n || this.empty) return out;
    const lower = n.toLowerCase();
    for (const f of this.names) if (lower.includes(f.text)) return decoder.decode(this.redactions[f.sec]);
    return n;
  }

  /**
   * A scrubber for one stream of chunks.
   * @returns {ScrubStream}
   */
  stream() {
    return new ScrubStream(this);
  }
}

const SPAN_BYTE = 1;
const SPAN_GAP = 2;

/**
 * scrub's spanClass: the bytes a match may hold in the source (letters,
 * digits, base64's other symbols, the views' escape syntax, and every byte
 * of the texts looked for), CR and LF as gaps unless a text holds them.
 * @param {Uint8Array[]} texts
 */
function spanClass(texts) {
  const c = new Uint8Array(256);
  for (let b = 0; b < 128; b++) {
    const ch = String.fromCharCode(b);
    if (/[0-9A-Za-z]/.test(ch) || "+/-_=%&#;\\".includes(ch)) c[b] = SPAN_BYTE;
  }
  c[0x0d] = SPAN_GAP;
  c[0x0a] = SPAN_GAP;
  for (const t of texts) for (const b of t) c[b] = SPAN_BYTE;
  return c;
}

/** scrub's holdBack: the most source bytes a stream's earliest live match can lie back. */
function holdBack(text, b64, hex) {
  let hb = 0;
  const syms = Math.floor((8 * b64 + 4 + 5) / 6) + 1;
  for (let k = 0; k < NUM_VIEWS; k++) {
    const x = EXPANSION[k];
    hb = Math.max(hb, (text + 2) * x, (syms * (1 + MAX_GAP) + 2 + MAX_GAP + 1) * x);
  }
  hb = Math.max(hb, 2 * hex * (1 + MAX_GAP) + MAX_GAP + 1);
  return hb + 2 * EXPANSION[VIEW_HTML];
}

/**
 * Scrubs a body that arrives in chunks, with the same output as scrubbing it
 * whole. It holds back the run of bytes an encoding could be made of that
 * ends what it has seen, at most holdBack bytes, whether or not it begins a
 * secret (so that what it hands out tells a hostile origin nothing about
 * the secrets' values), and nothing after punctuation (a JSON event's end).
 */
export class ScrubStream {
  /** @param {Scrubber} scrubber */
  constructor(scrubber) {
    this.scrubber = scrubber;
    this.engine = scrubber.empty ? null : new Engine(scrubber);
  }

  /**
   * Takes the next chunk; returns what can be handed on already, maybe
   * nothing.
   * @param {Uint8Array} chunk
   * @returns {Uint8Array}
   */
  push(chunk) {
    const e = this.engine;
    if (!e) return chunk;
    e.keep(chunk);
    e.write(chunk);
    return e.out.take();
  }

  /**
   * At the end of the body: what was held back, scrubbed.
   * @returns {Uint8Array}
   */
  flush() {
    const e = this.engine;
    if (!e) return EMPTY;
    e.finish();
    return e.out.take();
  }

  /** How many bytes pushed are not handed on yet. */
  get held() {
    return this.engine ? this.engine.pos - this.engine.emitted : 0;
  }
}

/**
 * scrub's foldedForms: the lower-case texts that betray value v (secret i)
 * in a header name, raw and base64 encoded at each byte offset in both
 * alphabets.
 */
function foldedForms(i, v, users) {
  const texts = [v, jsonEscape(v, false), jsonEscape(v, true)];
  for (const u of users) {
    const basic = utf8(u + ":" + decoder.decode(v));
    texts.push(basic, utf8(base64(basic)));
  }
  const out = [];
  const add = (t) => {
    t = t.toLowerCase();
    if (!out.some((f) => f.text === t)) out.push({ text: t, sec: i });
  };
  for (const t of texts) {
    add(decoder.decode(t));
    for (let k = 0; k < 3; k++) {
      const padded = new Uint8Array(k + t.length);
      padded.set(t, k);
      const core = base64(padded).slice(Math.floor((8 * k + 5) / 6), Math.floor((8 * (k + t.length)) / 6));
      add(core);
      add(core.replaceAll("+", "-").replaceAll("/", "_"));
    }
  }
  return out;
}

/** v with every "/" written "\/". */
function escapeSlashes(v) {
  const out = [];
  for (const c of v) {
    if (c === 0x2f) out.push(0x5c);
    out.push(c);
  }
  return Uint8Array.from(out);
}

/** v escaped as a JSON encoder escapes a string's contents (scrub's jsonEscape). */
function jsonEscape(v, html) {
  const HEX = "0123456789abcdef";
  const out = [];
  for (const c of v) {
    if (c === 0x22 || c === 0x5c) out.push(0x5c, c);
    else if (c === 8) out.push(0x5c, 0x62);
    else if (c === 12) out.push(0x5c, 0x66);
    else if (c === 10) out.push(0x5c, 0x6e);
    else if (c === 13) out.push(0x5c, 0x72);
    else if (c === 9) out.push(0x5c, 0x74);
    else if (c < 0x20 || (html && (c === 0x3c || c === 0x3e || c === 0x26))) {
      out.push(0x5c, 0x75, 0x30, 0x30, HEX.charCodeAt(c >> 4), HEX.charCodeAt(c & 15));
    } else out.push(c);
  }
  return Uint8Array.from(out);
}

/**
 * Standard base64 with padding.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
