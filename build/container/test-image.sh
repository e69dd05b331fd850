#!/bin/sh
# Builds the container kind's image with podman and runs the sandbox
# conformance suite against its sandboxd. Where podman can build but not
# run containers (an OCI runtime that may not set rlimits, as in this
# project's VMs), the image's file system is run by hand: exported, then
# its entrypoint started under chroot on loopback. BASE overrides the
# image's base (default: debian:bookworm-slim from the registry).
set -eu
cd "$(dirname "$0")/../.."
GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -o build/container/sandboxd ./cmd/sandboxd
podman build --isolation chroot ${BASE:+--build-arg BASE="$BASE"} -t damper-sandbox build/container
root=$(mktemp -d)
chmod 755 "$root" # the image's /, which its unprivileged user must enter
trap 'kill -KILL "$pid" 2>/dev/null || true; rm -rf "$root" "$root.log"' EXIT
cid=$(podman create damper-sandbox)
podman export "$cid" | tar -C "$root" -x
podman rm "$cid" >/dev/null
port=${PORT:-18080}
# The entrypoint's own flags, then a loopback address (the last --listen wins).
# Mount and PID namespaces of its own give it /proc and /dev, as a runtime
# would, and an end: the trap kills unshare, whose child (the namespace's
# init, a shell that waits) dies with it and takes the namespace along.
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/sandbox LANG=C.UTF-8 \
	DAMPER_CF_CA=/etc/cloudflare/certs/cloudflare-containers-ca.crt ROOT="$root" PORT="$port" \
	unshare --mount --pid --fork --kill-child sh -c 'mount -t proc proc "$ROOT/proc" && mount --rbind /dev "$ROOT/dev" &&
		chroot "$ROOT" /usr/local/bin/damper-sandbox-entrypoint --listen "127.0.0.1:$PORT"; exit $?' >"$root.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
DAMPER_SANDBOXD_URL="http://127.0.0.1:$port" go test -count=1 -tags imagetest -run TestImage ./sandbox/sandboxd "$@"
