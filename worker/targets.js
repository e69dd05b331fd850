// Service target overrides (docs/abi.md, "Policies, targets and secrets"):
// the var DAMPER_TARGETS points services of the agents' policies elsewhere
// (tests point them at loopback fakes) without changing the module.
//
// No cloudflare: imports here, so Node can load it.

import { SERVICE_NAME, canonicalTarget } from "./secrets.js";

/** The var that holds the overrides. */
export const TARGETS_VAR = "DAMPER_TARGETS";

/**
 * Parses `name=scheme://host[:port]` pairs separated by commas (spaces
 * around a pair are ignored) into service name → canonical origin.
 * @param {string} text
 * @returns {Map<string, string>}
 * @throws {Error} naming the pair at fault
 */
export function parseTargets(text) {
  const targets = new Map();
  if (text.trim() === "") return targets;
  for (const [i, raw] of text.split(",").entries()) {
    const pair = raw.trim();
    const eq = pair.indexOf("=");
    if (eq < 0) throw new Error(`pair ${i + 1} ${JSON.stringify(pair)}: want name=scheme://host[:port]`);
    const name = pair.slice(0, eq);
    if (!SERVICE_NAME.test(name)) {
      throw new Error(`pair ${i + 1}: service name ${JSON.stringify(name)}: want [a-z][a-z0-9-]{0,63}`);
    }
    if (targets.has(name)) throw new Error(`pair ${i + 1}: service ${name} is given twice`);
    try {
      targets.set(name, canonicalTarget(pair.slice(eq + 1)));
    } catch (e) {
      throw new Error(`pair ${i + 1} (${name}): ${e.message}`);
    }
  }
  return targets;
}

/** The last DAMPER_TARGETS text read in this isolate, and what it gave. */
let cached = null;

/**
 * The target overrides of a Worker env, parsed once per isolate (and again
 * only if the text changes), each logged once. A bad value is logged as an
 * error and returned as `problem`: runs are refused, never run with the
 * override silently ignored.
 * @param {Record<string, unknown>} env
 * @param {{manifest?: any}} [opts] with the manifest, an override that names
 *   no service of any agent's policy is warned about (a typo, most likely)
 * @returns {{targets: Map<string, string>, problem: string|null}}
 */
export function targetsFromEnv(env, { manifest } = {}) {
  const value = env?.[TARGETS_VAR];
  const text = value === undefined || value === null ? "" : value;
  if (cached && cached.text === text) return cached.result;
  let result;
  if (typeof text !== "string") {
    result = { targets: new Map(), problem: `${TARGETS_VAR} must be a string of name=scheme://host[:port] pairs` };
  } else {
    try {
      result = { targets: parseTargets(text), problem: null };
    } catch (e) {
      result = { targets: new Map(), problem: `${TARGETS_VAR} is malformed: ${e.message}` };
    }
  }
  if (result.problem) {
    console.error(result.problem);
  } else {
    const known = new Set((manifest?.agents ?? []).flatMap((a) => (a.policy?.services ?? []).map((s) => s?.name)));
    for (const [service, target] of result.targets) {
      console.log(`target override service=${service} target=${target}`);
      if (manifest && !known.has(service)) {
        console.warn(`target override service=${service}: no agent's policy has a service of that name`);
      }
    }
  }
  cached = { text, result };
  return result;
}
