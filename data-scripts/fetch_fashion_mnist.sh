#!/usr/bin/env bash
# Fetch Fashion-MNIST (Debian package dataset-fashion-mnist, MIT) and write a small labelled
# classification set from it into data/samples/fashion-mnist/ (gitignored): VOC layout and
# Places205-style list files, see make_fashion_voc.py for the exact contents.
#
# The .deb is downloaded, never installed (apt-get download; no root needed unless the apt
# lists must be updated first), kept in data/samples/downloads/ and verified by SHA-256.
# Idempotent: the output is rebuilt only when its stamp (the .deb's and the generator's
# SHA-256) differs. Needs apt-get, dpkg-deb, sha256sum and python3 with numpy and Pillow
# (data-scripts/requirements.txt).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=data/samples/fashion-mnist
DL=data/samples/downloads
mkdir -p "$DL"

PKG=dataset-fashion-mnist
VERSION=0.0~git20200523.55506a9-1 # Debian 12 bookworm
DEB=${PKG}_${VERSION}_all.deb
DEB_SHA=39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0
MAKE=data-scripts/make_fashion_voc.py

stamp="$DEB_SHA $(sha256sum "$MAKE" | cut -d' ' -f1)"
if [[ -f $OUT/.stamp && $(cat "$OUT/.stamp") == "$stamp" ]]; then
    echo "fashion-mnist: up to date ($OUT)"
    exit 0
fi

if [[ ! -f $DL/$DEB ]]; then
    if ! (cd "$DL" && apt-get download -q "$PKG=$VERSION"); then
        # A fresh machine may have empty apt lists: update them (as root, or through sudo).
        sudo=""
        [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq
        (cd "$DL" && apt-get download -q "$PKG=$VERSION") || {
            echo "error: apt cannot download $PKG=$VERSION (Debian 12 bookworm main has it);" \
                "put $DEB from a Debian mirror into $DL and run again" >&2
            exit 1
        }
    fi
fi
echo "$DEB_SHA  $DL/$DEB" | sha256sum --check --quiet || {
    echo "error: $DL/$DEB does not match its pinned SHA-256; delete it and run again" >&2
    exit 1
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
dpkg-deb -x "$DL/$DEB" "$TMP/deb"
python3 "$MAKE" "$TMP/deb/usr/share/datasets/fashion-mnist" "$TMP/out"
echo "$stamp" >"$TMP/out/.stamp"
rm -rf "$OUT"
mv "$TMP/out" "$OUT"
echo "fashion-mnist: $(ls "$OUT/JPEGImages" | wc -l) images in $OUT"
