#!/usr/bin/env bash
# Unpacks Debian's rustc/cargo 1.85 (the `rustc-web` packages of bookworm)
# into a directory of its own, without installing them: the rustup
# toolchain stays the only `cargo`/`rustc` on PATH. chatd's test
# `chatd/tests/plugin_abi_compat.rs` builds a plugin with it, to show that a
# plugin built by another compiler loads (docs/plugins.md, "The ABI").
#
# Usage: .ci/rust-1.85.sh DIR   (prints nothing else; idempotent)
# Then DIR/bin/cargo and DIR/bin/rustc run with LD_LIBRARY_PATH=DIR/lib.
set -euo pipefail
dir="$(realpath -m "${1:?usage: $0 DIR}")"
if [ -x "$dir/bin/cargo" ] && [ -x "$dir/bin/rustc" ]; then
    exit 0
fi
version="1.85.0+dfsg3-1~deb12u3"
packages=(
    "rustc-web=$version" "cargo-web=$version"
    "libstd-rust-web-1.85=$version" "libstd-rust-web-dev=$version"
    # rustc's and cargo's shared libraries that a bare Debian image lacks.
    libllvm19 libhttp-parser2.9 libpcre3 libcurl4 libz3-4 libedit2 libxml2 libicu72 libbsd0 libmd0 libnghttp2-14 librtmp1 libpsl5 libldap-2.5-0 libsasl2-2 libssh2-1 libbrotli1 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1
)
download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT
if ! (cd "$download" && apt-get download "${packages[@]}" >/dev/null 2>&1); then
    apt-get update >/dev/null
    (cd "$download" && apt-get download "${packages[@]}" >/dev/null)
fi
staging="$dir.partial"
rm -rf "$staging"
mkdir -p "$staging"
for deb in "$download"/*.deb; do
    dpkg -x "$deb" "$staging/root"
done
mkdir -p "$staging/bin" "$staging/lib"
# The libraries all in one directory, for LD_LIBRARY_PATH.
find "$staging/root/usr/lib" "$staging/root/lib" -maxdepth 2 -name '*.so*' \
    -exec cp -a {} "$staging/lib/" \; 2>/dev/null || true
cat >"$staging/bin/rustc" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$dir/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dir/root/usr/bin/rustc" --sysroot "$dir/root/usr" "\$@"
WRAP
cat >"$staging/bin/cargo" <<WRAP
#!/bin/sh
RUSTC="$dir/bin/rustc" LD_LIBRARY_PATH="$dir/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dir/root/usr/bin/cargo" "\$@"
WRAP
chmod +x "$staging/bin/rustc" "$staging/bin/cargo"
rm -rf "$dir"
mv "$staging" "$dir"
