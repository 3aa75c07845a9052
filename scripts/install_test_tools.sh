#!/usr/bin/env bash
# Install the Debian packages the test suite drives as a user would:
#   chromium + chromium-driver          the report opened offline in a headless browser
#   libreoffice-calc + poppler-utils    the CCAS lists rendered to PDF/PNG (soffice, pdftoppm, pdftotext)
#   openjdk-17-jre-headless             Java for the Spark engine (PySpark, local mode)
#
# Idempotent: installs only what is missing. Never fails CI: when apt-get is missing, not root, or
# the network/mirror is unavailable, it says why and exits 0, and the tests that need the tool then
# skip with that reason.
set -uo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
if ! { command -v soffice && command -v pdftoppm && command -v pdftotext; } >/dev/null 2>&1; then
    missing+=(libreoffice-calc poppler-utils)
fi
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_test_tools: chromium, soffice, poppler-utils et java déjà présents"
    exit 0
fi
skip="les tests qui en ont besoin seront ignorés"

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_tools: apt-get indisponible sur cette machine ; $skip"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_test_tools: ni root ni sudo sans mot de passe ; $skip"
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Bounded network waits: an offline CI must not hang here, only skip the tests concerned.
APT_OPTS=(-o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o Acquire::Retries=1)
if ! $SUDO apt-get "${APT_OPTS[@]}" update -qq >/dev/null; then
    echo "install_test_tools: apt-get update a échoué (réseau ou dépôt indisponible) ; $skip"
    exit 0
fi
if ! $SUDO apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "install_test_tools: l'installation de ${missing[*]} a échoué ; $skip"
    exit 0
fi
echo "install_test_tools: installé : ${missing[*]}"
exit 0
