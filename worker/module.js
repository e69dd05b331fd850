// One instantiated copy of the damper module, and the export calls of the
// ABI (docs/abi.md): alloc + write the input, call, unpack the i64 into
// (ptr, len), copy the output out, parse it.
//
// No cloudflare: imports here: build/bench-worker.mjs loads this file in Node.

import { ABI_VERSION, MAX_OUTPUT, MAX_REUSED_BUFFER, MIN_INPUT_BUFFER } from "./abi.js";
import { WASI } from "./wasi.js";

export { ABI_VERSION, MAX_OUTPUT };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Input buffers (docs/abi.md): a small one is reused for every input that
// fits; a larger input gets a buffer of its own size, which the next small
// input's damper_alloc releases, so a large batch is not kept alive for good.
// What one export call may return is capped (MAX_OUTPUT): a guest that
// returns more is broken, and the host treats it as a trap.

/**
 * An exception from an export call (unreachable, out of bounds, proc_exit, a
 * Go fatal error, or output that is not the ABI's JSON). The instance that
 * threw it is dead; the host drops it and answers `500 module_trap`.
 */
export class ModuleTrap extends Error {
  /**
   * @param {string} message
   * @param {unknown} [cause]
   */
  constructor(message, cause) {
    super(message, { cause });
    this.name = "ModuleTrap";
  }
}

/**
 * Checks a manifest (from the module or from build/manifest.json): it must
 * name the ABI version this host speaks.
 * @param {any} manifest
 * @throws {Error} naming both versions when they differ
 */
export function checkManifest(manifest) {
  if (manifest === null || typeof manifest !== "object" || !Number.isInteger(manifest.abi)) {
    throw new Error("not a damper module: its manifest has no abi version");
  }
  if (manifest.abi !== ABI_VERSION) {
    throw new Error(`the module speaks damper ABI version ${manifest.abi}, ` +
      `this host speaks version ${ABI_VERSION}`);
  }
}

/** One module instance. Create with `GuestModule.instantiate`. */
export class GuestModule {
  /**
   * Instantiates `wasm`, runs `_initialize` and reads the manifest.
   * @param {WebAssembly.Module} wasm the module, compiled at deploy (workerd
   *   refuses to compile wasm at run time)
   * @param {object} [opts]
   * @param {string} [opts.label] prefix of the module's console lines
   * @returns {Promise<GuestModule>}
   * @throws {ModuleTrap} when `_initialize` or `damper_manifest` traps
   * @throws {Error} when it is not a damper module or speaks another ABI
   */
  static async instantiate(wasm, { label } = {}) {
    const exports = new Set(WebAssembly.Module.exports(wasm).map((e) => e.name));
    for (const name of ["damper_manifest", "damper_alloc", "damper_start", "damper_resume", "damper_cancel", "memory"]) {
      if (!exports.has(name)) throw new Error(`not a damper module: it has no ${name} export`);
    }
    const wasi = new WASI({ label });
    const instance = await WebAssembly.instantiate(wasm, wasi.imports(wasm));
    const mod = new GuestModule(instance, wasi);
    try {
      wasi.initialize(instance);
    } catch (e) {
      mod.kill();
      throw new ModuleTrap(`_initialize trapped: ${errorMessage(e)}`, e);
    }
    mod.manifest = mod.call("damper_manifest");
    checkManifest(mod.manifest);
    return mod;
  }

  /** @private use GuestModule.instantiate */
  constructor(instance, wasi) {
    this.exports = instance.exports;
    this.wasi = wasi;
    /** Set once an export call trapped; a dead instance takes no more calls. */
    this.dead = false;
    /** @type {any} the module's own manifest */
    this.manifest = null;
    /** The input buffer damper_alloc handed out last, reused while inputs fit. */
    this.inPtr = 0;
    this.inCap = 0;
  }

  /**
   * Calls an export: `damper_manifest` with no input, the others with `input`
   * (an object, or a string that already holds its JSON) written into the
   * buffer from `damper_alloc`, reused while inputs fit in it.
   * @param {string} name the export
   * @param {object|string} [input]
   * @returns {{value: any, text: string}} the parsed output and its JSON text
   * @throws {ModuleTrap} on any exception; the instance is dead afterwards
   */
  callRaw(name, input) {
    if (this.dead) throw new ModuleTrap(`${name}: the module instance already trapped`);
    try {
      let r;
      if (input === undefined) {
        r = this.exports[name]();
      } else {
        const bytes = encoder.encode(typeof input === "string" ? input : JSON.stringify(input));
        const n = bytes.length;
        if (this.inCap === 0 || n > this.inCap || (this.inCap > MAX_REUSED_BUFFER && n <= MAX_REUSED_BUFFER)) {
          const size = n > MAX_REUSED_BUFFER ? n : Math.max(n, MIN_INPUT_BUFFER);
          this.inPtr = this.exports.damper_alloc(size) >>> 0;
          this.inCap = size;
        }
        new Uint8Array(this.exports.memory.buffer, this.inPtr, n).set(bytes);
        r = this.exports[name](this.inPtr, n);
      }
      const ptr = Number(BigInt.asUintN(64, r) >> 32n);
      const len = Number(r & 0xffffffffn);
      if (len > MAX_OUTPUT) throw new Error(`${name} returned ${len} bytes, over the ${MAX_OUTPUT} limit`);
      // The call may have grown memory: take the buffer after it, and copy
      // out now, since the output lives only until the next call.
      const text = decoder.decode(new Uint8Array(this.exports.memory.buffer, ptr, len));
      return { value: JSON.parse(text), text };
    } catch (e) {
      this.kill();
      throw new ModuleTrap(`${name} trapped: ${errorMessage(e)}`, e);
    }
  }

  /**
   * Like callRaw, returning only the parsed output.
   * @param {string} name
   * @param {object|string} [input]
   * @returns {any}
   */
  call(name, input) {
    return this.callRaw(name, input).value;
  }

  /** Marks the instance dead (it trapped, or its output broke the ABI). */
  kill() {
    this.dead = true;
    this.wasi.flush();
  }
}

/**
 * The message of anything thrown.
 * @param {unknown} e
 * @returns {string}
 */
export function errorMessage(e) {
  return e instanceof Error ? e.message : String(e);
}
