// Secrets at send time (docs/abi.md, "Policies, targets and secrets"): which
// origin owns which secret in an agent's policy, and the substitution of
// `${secret:NAME}` / `${basic:USER:NAME}` placeholders in request headers.
// It mirrors internal/placeholder (the grammar), internal/host (Substitute),
// policy/glob.go (host globs) and Engine.Owns; tests/scrubdiff_test.go holds
// this file and the Go package to the same answers.
//
// No cloudflare: imports here: Node loads this file in that test.

import { Scrubber, base64, utf8 } from "./scrub.js";

const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
const BASIC_USER = /^[A-Za-z0-9._-]{1,64}$/;
/** A service name of a policy (policy.validServiceName). */
export const SERVICE_NAME = /^[a-z][a-z0-9-]{0,63}$/;

/**
 * Why a substitution was refused: `not_owned` (the origin does not own the
 * secret), `not_configured` (the secret is not set), `malformed` (a "${"
 * that is not a placeholder) or `control` (a secret holds a control
 * character). The message names the secret, never its value.
 */
export class SubstituteError extends Error {
  /**
   * @param {"not_owned"|"not_configured"|"malformed"|"control"} kind
   * @param {string} message
   */
  constructor(kind, message) {
    super(message);
    this.name = "SubstituteError";
    this.kind = kind;
  }
}

/**
 * Calls `fn` for each placeholder of `v`, in order. Any "${" that does not
 * begin a well-formed placeholder is an error, as in Go, so no text can be a
 * placeholder to one host and plain text to the other.
 * @param {string} v a header value
 * @param {(p: {start: number, end: number, basic: boolean, user: string, name: string}) => void} fn
 * @throws {SubstituteError} kind `malformed`
 */
export function parsePlaceholders(v, fn) {
  for (let i = 0; i < v.length;) {
    const start = v.indexOf("${", i);
    if (start < 0) return;
    const close = v.indexOf("}", start);
    if (close < 0) {
      throw new SubstituteError("malformed", `unterminated placeholder at byte ${utf8(v.slice(0, start)).length}`);
    }
    const end = close + 1;
    const text = v.slice(start, end);
    const body = v.slice(start + 2, close);
    const p = { start, end, basic: false, user: "", name: "" };
    if (body.startsWith("secret:")) {
      p.name = body.slice("secret:".length);
    } else if (body.startsWith("basic:")) {
      const rest = body.slice("basic:".length);
      const k = rest.indexOf(":");
      if (k < 0) throw malformed(`placeholder ${goQuote(text)}: want \${basic:USER:NAME}`);
      p.basic = true;
      p.user = rest.slice(0, k);
      p.name = rest.slice(k + 1);
      if (!BASIC_USER.test(p.user)) throw malformed(`placeholder ${goQuote(text)}: user must be [A-Za-z0-9._-]{1,64}`);
    } else {
      throw malformed(`placeholder ${goQuote(text)}: want \${secret:NAME} or \${basic:USER:NAME}`);
    }
    if (!SECRET_NAME.test(p.name)) {
      throw malformed(`placeholder ${goQuote(text)}: secret name must be [A-Z][A-Z0-9_]{0,63}`);
    }
    fn(p);
    i = end;
  }
}

function malformed(message) {
  return new SubstituteError("malformed", message);
}

/**
 * Returns `headers` with every placeholder replaced by its secret, as
 * internal/host.Substitute does: "${secret:NAME}" by the value, "${basic:USER:NAME}"
 * by "Basic " + base64(USER + ":" + value).
 * @param {[string, string][]} headers
 * @param {string} origin the origin of the URL about to be sent, "scheme://host[:port]"
 * @param {(origin: string, name: string) => boolean} owns whether origin may carry secret name
 * @param {(name: string) => string|undefined} lookup the secret's value, undefined when not set
 * @returns {[string, string][]}
 * @throws {SubstituteError} for a secret the origin does not own, one that is
 *   not set, a malformed placeholder, or a result holding a control character
 */
export function substitute(headers, origin, owns, lookup) {
  return headers.map(([name, value]) => {
    let out = "";
    let last = 0;
    try {
      parsePlaceholders(value, (p) => {
        if (!owns(origin, p.name)) {
          throw new SubstituteError("not_owned", `secret ${p.name} for ${origin}: secret not owned by the origin`);
        }
        const secret = lookup(p.name);
        if (secret === undefined) throw new SubstituteError("not_configured", `secret ${p.name} is not configured`);
        out += value.slice(last, p.start);
        out += p.basic ? "Basic " + base64(utf8(p.user + ":" + secret)) : secret;
        last = p.end;
      });
    } catch (e) {
      if (e instanceof SubstituteError) throw new SubstituteError(e.kind, `substitute header ${name}: ${e.message}`);
      throw e;
    }
    out += value.slice(last);
    if (!validHeaderValue(out)) {
      throw new SubstituteError("control", `substitute header ${name}: a secret holds a control character`);
    }
    return [name, out];
  });
}

/** Go's validHeaderValue: no control character but tab. */
function validHeaderValue(v) {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/**
 * The canonical origin of a service target, "scheme://host[:port]" (one
 * trailing "/" allowed), as policy.SetTarget canonicalizes it. What Go would
 * refuse, and WHATWG would quietly repair, is refused.
 * @param {string} target
 * @returns {string}
 * @throws {Error} saying what is wrong
 */
export function canonicalTarget(target) {
  const i = target.indexOf("://");
  if (i < 0) throw new Error(`target ${JSON.stringify(target)}: want scheme://host[:port]`);
  const rest = target.slice(i + 3).replace(/\/$/, "");
  if (/[/?#]/.test(rest)) {
    throw new Error(`target ${JSON.stringify(target)}: want scheme://host[:port] with no path, query or fragment`);
  }
  // WHATWG strips or decodes these where Go's canonicalization refuses them.
  if (/[\x00-\x20\x7f\\%@]/.test(target)) {
    throw new Error(`target ${JSON.stringify(target)}: no spaces, control characters, "\\", "%" or userinfo`);
  }
  const scheme = target.slice(0, i).toLowerCase();
  if (scheme !== "http" && scheme !== "https") {
    throw new Error(`target ${JSON.stringify(target)}: the scheme must be http or https`);
  }
  let u;
  try {
    u = new URL(`${scheme}://${rest}/`);
  } catch {
    throw new Error(`target ${JSON.stringify(target)}: not a valid URL`);
  }
  // Go drops one trailing dot, which WHATWG keeps; a host that still ends
  // in one (or is empty) is refused.
  if (u.hostname.endsWith(".")) u.hostname = u.hostname.slice(0, -1);
  if (u.hostname === "" || u.hostname.endsWith(".")) {
    throw new Error(`target ${JSON.stringify(target)}: the host is empty or ends in ".."`);
  }
  return u.origin;
}

/**
 * A host glob of policy/glob.go: labels separated by ".", "*" one non-empty
 * label, "**" any number of labels (none included), "*" inside a label any
 * run of characters; matched without ASCII case.
 */
export class HostGlob {
  /**
   * @param {string} pattern
   * @throws {Error} for a pattern Go's compileHostGlob refuses
   */
  constructor(pattern) {
    if (pattern === "") throw new Error("empty host pattern");
    this.segs = pattern.split(".").map((s) => {
      const seg = compileSeg(s);
      if (seg.kind === LITERAL && seg.lit === "") throw new Error("empty label");
      return seg;
    });
  }

  /**
   * Whether the canonical host `s` matches (Go's glob.match, transcribed:
   * one backtracking point, the last "**").
   * @param {string} s
   */
  match(s) {
    const segs = this.segs;
    const end = s.length + 1; // a label starts before end
    const next = (i) => {
      const j = s.indexOf(".", i);
      return j >= 0 ? j + 1 : end;
    };
    const label = (i) => {
      const j = s.indexOf(".", i);
      return j >= 0 ? s.slice(i, j) : s.slice(i);
    };
    let pi = 0;
    let si = 0;
    let starP = -1;
    let starS = 0;
    while (si < end || pi < segs.length) {
      if (pi < segs.length) {
        if (segs[pi].kind === ANY) {
          starP = pi;
          starS = si;
          pi++;
          continue;
        }
        if (si < end && matchSeg(segs[pi], label(si))) {
          pi++;
          si = next(si);
          continue;
        }
      }
      if (starP >= 0 && starS < end) {
        starS = next(starS);
        si = starS;
        pi = starP + 1;
        continue;
      }
      return false;
    }
    return true;
  }
}

const LITERAL = 0;
const STAR = 1; // "*": one non-empty label
const ANY = 2; // "**": any number of labels
const WILD = 3; // '*' inside a label

function compileSeg(s) {
  if (s === "*") return { kind: STAR };
  if (s === "**") return { kind: ANY };
  if (s.includes("**")) throw new Error(`${JSON.stringify(s)}: ** must be a whole segment`);
  if (s.includes("*")) return { kind: WILD, pieces: s.split("*").map((p) => hostLiteral(s, p)) };
  return { kind: LITERAL, lit: hostLiteral(s, s) };
}

function hostLiteral(seg, lit) {
  if (!/^[A-Za-z0-9_-]*$/.test(lit)) {
    throw new Error(`${JSON.stringify(seg)}: only letters, digits, "-" and "_" (write IDNs in punycode)`);
  }
  return lit.toLowerCase();
}

function matchSeg(seg, v) {
  switch (seg.kind) {
    case LITERAL: return asciiEqualFold(seg.lit, v);
    case STAR: return v !== "";
    default: return v !== "" && wildMatch(seg.pieces, v);
  }
}

/** Matches v against pieces that were separated by '*'. */
function wildMatch(pieces, v) {
  const first = pieces[0];
  const last = pieces[pieces.length - 1];
  if (v.length < first.length || !asciiEqualFold(v.slice(0, first.length), first)) return false;
  v = v.slice(first.length);
  for (const p of pieces.slice(1, -1)) {
    const i = indexFold(v, p);
    if (i < 0) return false;
    v = v.slice(i + p.length);
  }
  return v.length >= last.length && asciiEqualFold(v.slice(v.length - last.length), last);
}

function indexFold(s, sub) {
  for (let i = 0; i + sub.length <= s.length; i++) {
    if (asciiEqualFold(s.slice(i, i + sub.length), sub)) return i;
  }
  return -1;
}

/** Equality ignoring ASCII case only, as Go's asciiEqualFold. */
function asciiEqualFold(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}

/**
 * The secret-owning part of one agent's policy (the manifest's
 * `agents[].policy`), with target overrides applied: which origin owns which
 * secret, and the Basic user names each secret is sent with. A policy this
 * host cannot read owns nothing, so every placeholder is refused.
 */
export class Owners {
  /**
   * @param {any} policy the policy JSON, or null/undefined for none
   * @param {Map<string, string>} [targets] service name to origin overrides
   */
  constructor(policy, targets = new Map()) {
    /** @type {{name: string, origin: string, https: boolean, port: string, globs: HostGlob[], secrets: string[]}[]} https and port: where the globs match */
    this.services = [];
    /** @type {Map<string, string[]>} secret name to Basic user names */
    this.basicUsers = new Map();
    /** Why the policy could not be read; null when it could. */
    this.problem = null;
    if (policy == null) return;
    try {
      this.read(policy, targets);
    } catch (e) {
      this.services = [];
      this.problem = e instanceof Error ? e.message : String(e);
    }
  }

  /** @private */
  read(policy, targets) {
    if (!Array.isArray(policy.services)) throw new Error("policy: services is not a list");
    const byOrigin = new Map();
    for (const [i, s] of policy.services.entries()) {
      const where = `policy: services[${i}]`;
      if (typeof s?.name !== "string" || !SERVICE_NAME.test(s.name)) throw new Error(`${where}: bad name`);
      if (this.services.some((o) => o.name === s.name)) throw new Error(`${where}: name ${s.name} is used twice`);
      const origin = canonicalTarget(targets.get(s.name) ?? String(s.target));
      if (byOrigin.has(origin)) {
        throw new Error(`${where} (${s.name}): target ${origin} is already the target of ${byOrigin.get(origin)}`);
      }
      byOrigin.set(origin, s.name);
      // Host globs match on the declared target's scheme and port, not an
      // override's: an override moves exactly one origin.
      const declared = new URL(canonicalTarget(String(s.target)));
      const secrets = s.secrets ?? [];
      if (!Array.isArray(secrets) || !secrets.every((n) => typeof n === "string" && SECRET_NAME.test(n))) {
        throw new Error(`${where} (${s.name}): bad secrets`);
      }
      const svc = {
        name: s.name,
        origin,
        https: declared.protocol === "https:",
        port: declared.port,
        globs: (s.hosts ?? []).map((h) => new HostGlob(h)),
        secrets: [...new Set(secrets)],
      };
      if (svc.globs.length > 0 && !svc.https && svc.secrets.length > 0) {
        throw new Error(`${where} (${s.name}): hosts: a service whose target is http cannot span hosts and own secrets`);
      }
      for (const c of s.credentials ?? []) {
        parsePlaceholders(String(c?.value), (p) => {
          if (!svc.secrets.includes(p.name)) throw new Error(`${where} (${s.name}): secret ${p.name} is not in the service's secrets`);
          if (!p.basic) return;
          const users = this.basicUsers.get(p.name) ?? [];
          if (!users.includes(p.user)) users.push(p.user);
          this.basicUsers.set(p.name, users);
        });
      }
      this.services.push(svc);
    }
  }

  /**
   * Whether a request to `origin` may carry secret `name`: the origin
   * belongs to a service that owns it (Engine.Owns). The origin is the
   * service's target origin, or a host matching one of its host globs on the
   * declared target's scheme and port; the first service that claims the origin
   * decides, as in Go.
   * @param {string} origin "scheme://host[:port]", canonical
   * @param {string} name
   */
  owns(origin, name) {
    const s = this.service(origin);
    return s !== null && s.secrets.includes(name);
  }

  /** @private the service `origin` belongs to, or null */
  service(origin) {
    let u;
    try {
      u = new URL(origin + "/");
    } catch {
      return null;
    }
    if (u.origin !== origin || (u.protocol !== "http:" && u.protocol !== "https:")) return null;
    for (const s of this.services) if (s.origin === origin) return s;
    // Host globs never match an IP address (WHATWG writes IPv4 dotted decimal).
    if (u.hostname.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(u.hostname)) return null;
    const https = u.protocol === "https:";
    for (const s of this.services) {
      if (s.https !== https || s.port !== u.port) continue;
      if (s.globs.some((g) => g.match(u.hostname))) return s;
    }
    return null;
  }
}

/**
 * What the host needs about one agent's secrets: who owns them, their values
 * (read from `env` by the names the policy lists, and no other), and the
 * scrubber for everything handed back to its tasks.
 */
export class AgentSecrets {
  /**
   * @param {any} policy the agent's policy JSON from the manifest, if any
   * @param {Map<string, string>} targets service target overrides
   * @param {Record<string, unknown>} env the Worker's env (secrets and vars)
   */
  constructor(policy, targets, env) {
    this.owners = new Owners(policy, targets);
    /** @type {Map<string, string>} */
    this.values = new Map();
    // Read the names of the policy as written, even if it could not be read
    // whole, so that the scrubber still covers them.
    for (const name of policyNames(policy)) {
      const v = env?.[name];
      // An empty value is no secret: `wrangler secret put` cannot set one,
      // and substituting "" would send a request that looks authenticated.
      if (typeof v === "string" && v !== "") this.values.set(name, v);
    }
    this.scrubber = new Scrubber([...this.values].map(([name, value]) => ({
      name, value, basicUsers: this.owners.basicUsers.get(name) ?? [],
    })));
  }

  /**
   * The headers to send to `origin`, placeholders substituted.
   * @param {[string, string][]} headers
   * @param {string} origin the origin of the URL about to be sent
   * @returns {[string, string][]}
   * @throws {SubstituteError} naming the secret, never its value
   */
  substitute(headers, origin) {
    return substitute(headers, origin, (o, n) => this.owners.owns(o, n), (n) => this.values.get(n));
  }
}

/** The secret names a policy JSON lists, in order, without reading anything else. */
function policyNames(policy) {
  const names = new Set();
  for (const s of Array.isArray(policy?.services) ? policy.services : []) {
    for (const n of Array.isArray(s?.secrets) ? s.secrets : []) {
      if (typeof n === "string" && SECRET_NAME.test(n)) names.add(n);
    }
  }
  return names;
}

/**
 * Every agent's secrets for one Worker env: built once per agent on first use.
 */
export class HostSecrets {
  /**
   * @param {any} manifest the module's manifest (agents[].policy)
   * @param {Map<string, string>} targets service target overrides
   * @param {Record<string, unknown>} env
   */
  constructor(manifest, targets, env) {
    this.policies = new Map((manifest?.agents ?? []).map((a) => [a.name, a.policy]));
    this.targets = targets;
    this.env = env;
    /** @type {Map<string, AgentSecrets>} */
    this.agents = new Map();
  }

  /**
   * @param {string} agent
   * @returns {AgentSecrets}
   */
  agent(agent) {
    let a = this.agents.get(agent);
    if (!a) {
      a = new AgentSecrets(this.policies.get(agent), this.targets, this.env);
      if (a.owners.problem) console.error(`agent ${agent}: its policy owns no secret: ${a.owners.problem}`);
      this.agents.set(agent, a);
    }
    return a;
  }
}

/**
 * Go's strconv.Quote for the text of a placeholder, so that messages read
 * the same on both hosts: ASCII control characters are escaped the way Go
 * escapes them. (Go also escapes non-printable non-ASCII runes; those are
 * left as they are here.)
 */
function goQuote(s) {
  const named = { "\x07": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v" };
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (named[ch]) out += named[ch];
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

