#!/usr/bin/env bash
# The libsrtp anchor for `cargo bench -p pbx-srtp --bench srtp`: builds
# libsrtp 2.5.0 (Debian's source package) with OpenSSL, as the issue's
# reference figures were taken, and runs anchor.c, which measures libsrtp
# the way the Rust bench measures pbx-srtp. Run both on a quiet machine
# and compare line by line (the Rust `_single` lines are the like-for-like
# ones; the plain lines are the batch API the relay uses).
#
#   bash host/srtp/benches/libsrtp/run.sh [SUITE-SUBSTRING...]
#
# Needs gcc, libssl-dev and a deb-src entry
# for `apt-get source` (or LIBSRTP_SRC=/path/to/libsrtp-2.5.0).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${TMPDIR:-/tmp}/pbx-libsrtp-anchor"
mkdir -p "$work"
src="${LIBSRTP_SRC:-}"
if [ -z "$src" ]; then
    if ! ls -d "$work"/libsrtp2-2.5.0 >/dev/null 2>&1; then
        (cd "$work" && apt-get source -qq libsrtp2=2.5.0-3)
    fi
    src="$work/libsrtp2-2.5.0"
fi
if [ ! -f "$src/libsrtp2.a" ] || ! grep -q '^#define OPENSSL 1' "$src/crypto/include/config.h"; then
    (cd "$src" && ./configure -q --enable-openssl CFLAGS=-O2 && make -s -j2 libsrtp2.a)
fi
gcc -O2 -Wall -I "$src/include" -I "$src/crypto/include" -I "$src" \
    "$here/anchor.c" "$src/libsrtp2.a" -lcrypto -o "$work/anchor"
exec "$work/anchor" "$@"
