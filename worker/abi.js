// The module ABI's constants for the Workers host, the same values as
// internal/wire's. Generated: edit internal/wire, then run
//   go test ./internal/wire -run TestWorkerABI -update
// (No cloudflare: imports here: Node loads this file in tests.)

/** The ABI version this host speaks. */
export const ABI_VERSION = 1;
export const EXPORT_ALLOC = "damper_alloc";
export const EXPORT_MANIFEST = "damper_manifest";
export const EXPORT_START = "damper_start";
export const EXPORT_RESUME = "damper_resume";
export const EXPORT_CANCEL = "damper_cancel";
/** The largest request body of a run, in bytes. */
export const MAX_PAYLOAD = 1048576;
/** Runs of one agent instance that may wait behind the running one; more answer 429 busy. */
export const MAX_WAITING = 256;
/** A fetch response body returned whole is capped; larger bodies need stream. */
export const MAX_WHOLE_BODY = 33554432;
/** Whole-body bytes one agent instance's tasks may hold at once. */
export const MAX_BODIES_IN_FLIGHT = 33554432;
/** A fetch response whose head (status line and header fields) is larger is refused. */
export const MAX_RESPONSE_HEAD = 131072;
/** A read effect that names no max returns at most this much. */
export const DEFAULT_READ = 65536;
/** No read effect returns more. */
export const MAX_READ = 16777216;
/** An export call that returns more is treated as a trap. */
export const MAX_OUTPUT = 67108864;
/** Input buffers from damper_alloc are at least this large, and reused while inputs fit; */
export const MIN_INPUT_BUFFER = 4096;
/** an input larger than this gets a buffer of its own, released by the next smaller input. */
export const MAX_REUSED_BUFFER = 65536;
