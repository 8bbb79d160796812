#!/usr/bin/env bash
# Builds the runtime image of deploy/container/Containerfile, tagged power-revenue:dev,
# without any network: FROM scratch with this checkout's binary, the shared libraries `ldd`
# names for it, the CA certificates and a passwd entry for the user 65532.
#
#   deploy/container/build-offline.sh [BINARY]
#
# BINARY defaults to this checkout's release build (run `cargo build --release --locked`
# first). Environment: IMAGE_TAG (default power-revenue:dev); CONTAINER_BUILDER = buildah
# (default), podman or docker. buildah's usual settings apply (STORAGE_DRIVER,
# CONTAINERS_STORAGE_CONF, ...). Debian: apt-get install buildah fuse-overlayfs uidmap.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
binary=${1:-$root/target/release/power-revenue}
tag=${IMAGE_TAG:-power-revenue:dev}
builder=${CONTAINER_BUILDER:-buildah}

if [ ! -x "$binary" ]; then
    echo "build-offline.sh: no executable at $binary; run \`cargo build --release --locked\` first, or pass the binary's path" >&2
    exit 2
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
rootfs=$context/rootfs

# Without its line tables (the release profile keeps them: 85 of its 108 MB), as the
# Containerfile builds it; the symbols stay, so a backtrace still names its functions.
install -d -m 0755 "$rootfs/usr/local/bin"
if command -v objcopy >/dev/null; then
    objcopy --strip-debug "$binary" "$rootfs/usr/local/bin/power-revenue"
    chmod 0755 "$rootfs/usr/local/bin/power-revenue"
else
    echo "build-offline.sh: objcopy (binutils) not found; the binary keeps its debug info" >&2
    install -m 0755 "$binary" "$rootfs/usr/local/bin/power-revenue"
fi

# Every shared object the binary loads, the dynamic loader included, at the path ldd names
# (the loader's path is written in the binary; the libraries are found in the default
# directories). `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and
# "/lib64/ld-linux-x86-64.so.2 (0x…)"; "linux-vdso.so.1 (0x…)" is the kernel's.
libraries=$(ldd "$binary" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u)
if [ -z "$libraries" ]; then
    echo "build-offline.sh: ldd names no library for $binary (a static binary needs none; nothing to do)" >&2
fi
for library in $libraries; do
    install -D -m 0755 "$(readlink -f "$library")" "$rootfs$library"
done

# CA certificates, for the TLS connections to MongoDB and Slack (the binary carries its own
# roots too; this file is what SSL_CERT_FILE-aware tools and a custom CA bundle use).
for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -f "$bundle" ]; then
        install -D -m 0644 "$bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
        break
    fi
done

# The users the image knows: root and the service's user, 65532 ("nonroot", as in distroless).
install -d -m 0755 "$rootfs/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
install -d -m 1777 "$rootfs/tmp"
# /var/lib as root's own: the next COPY then only adds power-revenue/ to it.
install -d -m 0755 "$rootfs/var/lib"

# The state directory, 0700, as the contents of state/ (see Containerfile.offline).
install -d -m 0700 "$context/state/power-revenue"

cp "$here/Containerfile.offline" "$context/Containerfile"
case "$builder" in
    buildah) build=(buildah bud --format docker) ;;
    podman) build=(podman build --format docker) ;;
    docker) build=(docker build) ;;
    *)
        echo "build-offline.sh: CONTAINER_BUILDER must be buildah, podman or docker, not $builder" >&2
        exit 2
        ;;
esac
"${build[@]}" --file "$context/Containerfile" --tag "$tag" "$context"
echo "build-offline.sh: built $tag from $binary" >&2
