#!/bin/sh
# Trust Cloudflare's interception CA when the platform provides it, then
# serve /workspace as the unprivileged sandbox user.
set -e
if [ -f "$DAMPER_CF_CA" ]; then
	cp "$DAMPER_CF_CA" /usr/local/share/ca-certificates/cloudflare-containers-ca.crt
	update-ca-certificates >/dev/null 2>&1 || echo "damper: update-ca-certificates failed" >&2
fi
exec /usr/local/bin/sandboxd --root /workspace --listen :8080 --user 1000 "$@"
