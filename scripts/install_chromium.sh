#!/usr/bin/env bash
# Install Debian's headless Chromium (+ chromedriver) for the report's offline browser test.
#
# Idempotent: does nothing when /usr/bin/chromium already exists. Never fails CI: when apt-get is
# missing, not root, or the network/mirror is unavailable, it says why and exits 0, and the
# browser test then skips with that reason.
set -uo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "install_chromium: /usr/bin/chromium déjà présent ($(/usr/bin/chromium --version 2>/dev/null || echo 'version inconnue'))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: apt-get indisponible sur cette machine ; le test navigateur sera ignoré"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_chromium: ni root ni sudo sans mot de passe ; le test navigateur sera ignoré"
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Bounded network waits: an offline CI must not hang here, only skip the browser test.
APT_OPTS=(-o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o Acquire::Retries=1)
if ! $SUDO apt-get "${APT_OPTS[@]}" update -qq >/dev/null; then
    echo "install_chromium: apt-get update a échoué (réseau ou dépôt indisponible) ; le test navigateur sera ignoré"
    exit 0
fi
if ! $SUDO apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null; then
    echo "install_chromium: l'installation de chromium a échoué ; le test navigateur sera ignoré"
    exit 0
fi

if [ -x /usr/bin/chromium ]; then
    echo "install_chromium: installé ($(/usr/bin/chromium --version 2>/dev/null))"
else
    echo "install_chromium: paquet installé mais /usr/bin/chromium absent ; le test navigateur sera ignoré"
fi
exit 0
