#!/usr/bin/env bash
# Debian packages some tests read (best effort: without them those tests skip, they do not fail).
#   wordnet-base  /usr/share/wordnet: rebuilding the shipped catalogue, the WordNet noun
#                 hierarchies and the WordNet knowledge graph from the source files.
# Runs apt-get directly as root, through `sudo -n` otherwise; does nothing where the
# packages are present or apt-get is absent (not Debian / Ubuntu).
set -u
packages=()
[ -f /usr/share/wordnet/data.noun ] || packages+=(wordnet-base)
[ ${#packages[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: apt-get not found; tests that need ${packages[*]} will skip" >&2
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
        echo "note: not root and no sudo; tests that need ${packages[*]} will skip" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -q >/dev/null 2>&1
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null 2>&1 \
        || echo "note: could not install ${packages[*]}; tests that need them will skip" >&2
fi
exit 0
