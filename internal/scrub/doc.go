// Package scrub removes secret values from what a host hands back to the
// module (response headers, bodies whole or streamed, error messages),
// replacing each span that holds one with "[REDACTED:NAME]". Both Go hosts
// use it; worker/scrub.js is its transcription for the Workers host, held
// to the same bytes by tests/scrubdiff_test.go.
//
// # What it finds
//
// Rather than list every encoding of a value as a literal (an encoder may
// escape any subset of a value's bytes: 2^n texts), it reads the text
// through five decoding views and looks for the values in what each
// decodes, keeping for every decoded byte the source span it came from:
//
//   - the text itself;
//   - percent-decoded: %XX for any byte in either case, '+' kept;
//   - percent-decoded with '+' for a space (forms);
//   - JSON-unescaped: \" \\ \/ \b \f \n \r \t and \uXXXX for any character,
//     either case, surrogate pairs joined;
//   - HTML-unescaped: &#DDD; &#xHH; &#XHH; with up to 8 digits (leading
//     zeros included; the ';' optional, as HTML reads it, &#128;-&#159; as
//     windows-1252), and the named references of every ASCII character,
//     &nbsp; &copy; &reg; &euro; (with the ';').
//
// In each view it finds the value and its JSON-escaped forms, as
// encoding/json writes them with and without HTML escaping and with "/"
// as "\/" (so a value escaped and then percent-encoded or HTML-escaped is
// found), and in runs
// of base64 characters (both alphabets at once, padded or not, with up to
// two line-break bytes between any two characters: MIME and PEM wrapping)
// the value, its JSON-escaped forms, and for each Basic user "USER:value"
// and its base64, decoded at every bit offset, so a value inside a longer
// base64 text (an endpoint echoing the Authorization header it received,
// in base64) is found wherever it starts. In the text itself it also finds
// the value in runs of hex digits, in any case, at either nibble offset.
// A text shorter than MinEncodedLen is found hex or base64 encoded only as
// a whole run, since it would match unrelated text by chance.
//
// A decoding view reads escapes from left to right, so text before a value
// can swallow its first characters into an escape ("%4" before "A%42"
// reads "%4A"); a reader starting after that text would still see the
// value, so inside each escape decoded the view also starts reading anew,
// looking for values that begin there.
//
// # What it replaces
//
// The span replaced is every source byte that carries a bit of the value:
// in base64, the characters shared with the text around it go too. Where
// spans overlap, the one that begins first wins, then the longest, then
// the secret listed first; a span that overlaps a redaction of the same
// secret extends it, and one of another secret is replaced from where the
// redaction ends, so no part of either is left.
//
// # Streams and cost
//
// NewReader scrubs a stream read by read with the same output as scrubbing
// it whole. After each read it hands out everything but the run of bytes a
// match could be made of that ends what it has read: letters, digits,
// base64's other symbols, the views' escape characters, the bytes of the
// values, and up to two line breaks after them; never more than HoldBack
// bytes. Every match that may still begin lies in that run, but the run is
// held back whether or not one does: had the stream held back only where a
// match of these secrets may begin, a hostile origin that sends a guess and
// pauses would learn, from what the guest gets before the pause, whether
// the guess begins a secret, and so the secret a byte at a time. What a
// stream hands out depends on the bytes read, on the secrets' lengths
// (HoldBack) and on which bytes outside that fixed set they hold, never on
// their values otherwise. A chunk that ends in punctuation or a blank line
// after it (the end of a JSON event) is handed out whole. The work is
// linear in the text: a fixed number of automaton steps per byte and view,
// whatever the input (TestAdversarialBodiesCostLinearWork counts them).
//
// # What it cannot find
//
// A value the service transforms otherwise: reversed, truncated, re-cased
// (except hex digits), hashed, encrypted, split by other text, encoded
// twice in a way not listed above, or compressed (a host must refuse a
// body it cannot read as it is handed back). Scrubbing is the second line:
// the guarantee rests on the host substituting a secret only into requests
// to an origin that owns it.
package scrub
