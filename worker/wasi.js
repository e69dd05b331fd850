// A WASI preview1 shim for a Go wasip1 reactor, just large enough for the Go
// runtime: no arguments, no environment, no preopened directories (nothing
// secret ever enters the module), stdout/stderr to the console, randomness
// from crypto.getRandomValues, and a virtual clock.
//
// Why a virtual clock: the Go runtime sleeps in poll_oneoff when every
// goroutine waits on a timer. A Worker must never block (and freezes
// Date.now() while JS runs), so a clock subscription advances this
// instance's monotonic clock to the earliest deadline and returns at once.
// Guests wait for real with the `sleep` effect (docs/abi.md).
//
// No cloudflare: imports here: build/bench-worker.mjs loads this file in Node.

/** WASI errno values this shim returns. */
export const Errno = Object.freeze({
  SUCCESS: 0,
  BADF: 8,
  INVAL: 28,
  NOSYS: 52,
  SPIPE: 70,
});

const CLOCK_REALTIME = 0;
const SUBCLOCKFLAG_ABSTIME = 1;
const EVENTTYPE_CLOCK = 0;
const FILETYPE_CHARACTER_DEVICE = 2;
const RIGHT_FD_READ = 1n << 1n;
const RIGHT_FD_WRITE = 1n << 6n;
const RIGHT_POLL_FD_READWRITE = 1n << 27n;
const RANDOM_CHUNK = 65536; // crypto.getRandomValues refuses more at once
const LINE_LIMIT = 64 * 1024; // flush a line that never ends at this size

/** Thrown by proc_exit: the module asked to end, so the instance is over. */
export class ProcExit extends Error {
  /** @param {number} code the exit code the module passed */
  constructor(code) {
    super(`module called proc_exit(${code})`);
    this.name = "ProcExit";
    this.code = code;
  }
}

/**
 * One WASI environment for one module instance. Create it, pass
 * `imports(module)` to WebAssembly.instantiate, then call `initialize`.
 */
export class WASI {
  /**
   * @param {object} [opts]
   * @param {string} [opts.label] prefix of the module's console lines
   * @param {(stream: "stdout"|"stderr", line: string) => void} [opts.write]
   *   where complete output lines go (default: console.log / console.error)
   */
  constructor({ label = "guest", write } = {}) {
    this.label = label;
    this.write = write ?? ((stream, line) =>
      (stream === "stderr" ? console.error : console.log)(`[${this.label} ${stream}] ${line}`));
    /** @type {WebAssembly.Memory|null} */
    this.memory = null;
    this.offset = 0n; // ns the virtual clock is ahead of the host's monotonic clock
    this.lastMono = 0n;
    this.lines = { 1: new LineBuffer("stdout"), 2: new LineBuffer("stderr") };
  }

  /**
   * The import object for `module`: every wasi_snapshot_preview1 function it
   * imports, the ones this shim does not implement answering ENOSYS.
   * @param {WebAssembly.Module} module
   * @returns {WebAssembly.Imports}
   */
  imports(module) {
    const impl = this.functions();
    const wasi = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.module !== "wasi_snapshot_preview1" || imp.kind !== "function") {
        throw new Error(`not a damper module: it imports ${imp.module}.${imp.name}, ` +
          "and a damper host provides only wasi_snapshot_preview1 functions");
      }
      wasi[imp.name] = impl[imp.name] ?? (() => Errno.NOSYS);
    }
    return { wasi_snapshot_preview1: wasi };
  }

  /**
   * Binds the instance's memory and runs the reactor's `_initialize` (Go's
   * package init functions, where agents register).
   * @param {WebAssembly.Instance} instance
   */
  initialize(instance) {
    this.memory = /** @type {WebAssembly.Memory} */ (instance.exports.memory);
    const init = instance.exports._initialize;
    if (typeof init === "function") init();
  }

  /** Writes out any partial output lines (e.g. a panic message before a trap). */
  flush() {
    for (const buf of Object.values(this.lines)) buf.flush(this.write);
  }

  /** The host's monotonic time plus the virtual offset, in ns, never decreasing. */
  monotonic() {
    const real = BigInt(Math.floor(performance.now() * 1e6));
    const now = real + this.offset;
    if (now > this.lastMono) this.lastMono = now;
    return this.lastMono;
  }

  /** Wall-clock time in ns. The virtual offset stays out of it: dates are honest. */
  realtime() {
    return BigInt(Date.now()) * 1_000_000n;
  }

  /** The implemented functions, bound to this environment. */
  functions() {
    const view = () => new DataView(this.memory.buffer); // memory may have grown
    const bytes = (ptr, len) => new Uint8Array(this.memory.buffer, ptr, len);
    const isStdio = (fd) => fd === 0 || fd === 1 || fd === 2;
    const zeroSizes = (countPtr, sizePtr) => {
      const v = view();
      v.setUint32(countPtr, 0, true);
      v.setUint32(sizePtr, 0, true);
      return Errno.SUCCESS;
    };

    return {
      args_sizes_get: zeroSizes,
      args_get: () => Errno.SUCCESS,
      environ_sizes_get: zeroSizes,
      environ_get: () => Errno.SUCCESS,

      clock_res_get: (id, resPtr) => {
        view().setBigUint64(resPtr, 1_000_000n, true); // Workers' clocks tick in ms
        return Errno.SUCCESS;
      },
      clock_time_get: (id, _precision, timePtr) => {
        const t = id === CLOCK_REALTIME ? this.realtime() : this.monotonic();
        view().setBigUint64(timePtr, t, true);
        return Errno.SUCCESS;
      },
      poll_oneoff: (inPtr, outPtr, nsubs, neventsPtr) => this.pollOneoff(inPtr, outPtr, nsubs, neventsPtr),

      random_get: (ptr, len) => {
        for (let off = 0; off < len; off += RANDOM_CHUNK) {
          crypto.getRandomValues(bytes(ptr + off, Math.min(RANDOM_CHUNK, len - off)));
        }
        return Errno.SUCCESS;
      },

      fd_write: (fd, iovs, iovsLen, nwrittenPtr) => {
        const buf = this.lines[fd];
        if (!buf) return Errno.BADF;
        const v = view();
        let n = 0;
        for (let i = 0; i < iovsLen; i++) {
          const ptr = v.getUint32(iovs + i * 8, true);
          const len = v.getUint32(iovs + i * 8 + 4, true);
          buf.append(bytes(ptr, len), this.write);
          n += len;
        }
        v.setUint32(nwrittenPtr, n, true);
        return Errno.SUCCESS;
      },
      fd_read: (fd, _iovs, _iovsLen, nreadPtr) => {
        if (fd !== 0) return Errno.BADF;
        view().setUint32(nreadPtr, 0, true); // stdin is empty: EOF
        return Errno.SUCCESS;
      },
      fd_close: (fd) => (isStdio(fd) ? Errno.SUCCESS : Errno.BADF),
      fd_seek: (fd) => (isStdio(fd) ? Errno.SPIPE : Errno.BADF),
      fd_fdstat_get: (fd, ptr) => {
        if (!isStdio(fd)) return Errno.BADF;
        const v = view();
        v.setUint8(ptr, FILETYPE_CHARACTER_DEVICE);
        v.setUint16(ptr + 2, 0, true); // fs_flags
        const rights = (fd === 0 ? RIGHT_FD_READ : RIGHT_FD_WRITE) | RIGHT_POLL_FD_READWRITE;
        v.setBigUint64(ptr + 8, rights, true);
        v.setBigUint64(ptr + 16, 0n, true);
        return Errno.SUCCESS;
      },
      fd_fdstat_set_flags: (fd) => (isStdio(fd) ? Errno.SUCCESS : Errno.BADF),
      fd_filestat_get: (fd, ptr) => {
        if (!isStdio(fd)) return Errno.BADF;
        bytes(ptr, 64).fill(0);
        view().setUint8(ptr + 16, FILETYPE_CHARACTER_DEVICE);
        return Errno.SUCCESS;
      },
      // No preopened directories: Go's runtime probes fds from 3 up until EBADF.
      fd_prestat_get: () => Errno.BADF,
      fd_prestat_dir_name: () => Errno.BADF,

      sched_yield: () => Errno.SUCCESS,
      proc_exit: (code) => {
        this.flush();
        throw new ProcExit(code);
      },
    };
  }

  /**
   * poll_oneoff with a virtual clock. File descriptor subscriptions are
   * reported ready at once (stdio never blocks here). Otherwise the clock
   * jumps to the earliest deadline and every clock subscription due by then
   * fires. Never blocks.
   */
  pollOneoff(inPtr, outPtr, nsubs, neventsPtr) {
    if (nsubs === 0) return Errno.INVAL;
    const v = new DataView(this.memory.buffer);
    const subs = [];
    for (let i = 0; i < nsubs; i++) {
      const p = inPtr + i * 48; // subscription: userdata u64, tag u8, union at 8
      const sub = { userdata: v.getBigUint64(p, true), tag: v.getUint8(p + 8) };
      if (sub.tag === EVENTTYPE_CLOCK) {
        const clock = v.getUint32(p + 16, true);
        const timeout = v.getBigUint64(p + 24, true);
        const abs = (v.getUint16(p + 40, true) & SUBCLOCKFLAG_ABSTIME) !== 0;
        const now = clock === CLOCK_REALTIME ? this.realtime() : this.monotonic();
        sub.wait = abs ? (timeout > now ? timeout - now : 0n) : timeout;
      } else {
        sub.fd = v.getUint32(p + 16, true);
      }
      subs.push(sub);
    }

    let fired = subs.filter((s) => s.tag !== EVENTTYPE_CLOCK);
    if (fired.length === 0) {
      const wait = subs.reduce((min, s) => (s.wait < min ? s.wait : min), subs[0].wait);
      this.offset += wait;
      fired = subs.filter((s) => s.wait <= wait);
    }
    fired.forEach((s, i) => {
      const p = outPtr + i * 32; // event: userdata u64, error u16, type u8, fd_readwrite at 16
      v.setBigUint64(p, s.userdata, true);
      const bad = s.tag !== EVENTTYPE_CLOCK && !(s.fd >= 0 && s.fd <= 2);
      v.setUint16(p + 8, bad ? Errno.BADF : Errno.SUCCESS, true);
      v.setUint8(p + 10, s.tag);
      v.setBigUint64(p + 16, 0n, true);
      v.setUint16(p + 24, 0, true);
    });
    v.setUint32(neventsPtr, fired.length, true);
    return Errno.SUCCESS;
  }
}

/** Buffers one output stream and hands it on a line at a time. */
class LineBuffer {
  constructor(stream) {
    this.stream = stream;
    this.decoder = new TextDecoder(); // stream mode keeps split UTF-8 sequences whole
    this.pending = "";
  }

  append(chunk, write) {
    this.pending += this.decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = this.pending.indexOf("\n")) >= 0) {
      write(this.stream, this.pending.slice(0, nl));
      this.pending = this.pending.slice(nl + 1);
    }
    if (this.pending.length >= LINE_LIMIT) this.flush(write);
  }

  flush(write) {
    this.pending += this.decoder.decode();
    if (this.pending !== "") write(this.stream, this.pending);
    this.pending = "";
  }
}
