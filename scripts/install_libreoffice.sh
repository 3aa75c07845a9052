#!/usr/bin/env bash
# Install Debian's LibreOffice Calc (headless) + poppler-utils for the lists' rendering test
# (XLSX -> PDF by soffice, PDF -> PNG/text by pdftoppm/pdftotext).
#
# Idempotent: does nothing when soffice, pdftoppm and pdftotext are already present. Never fails CI:
# when apt-get is missing, not root, or the network/mirror is unavailable, it says why and exits 0,
# and the rendering test then skips with that reason.
set -uo pipefail

if command -v soffice >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 \
        && command -v pdftotext >/dev/null 2>&1; then
    echo "install_libreoffice: soffice et poppler-utils déjà présents"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_libreoffice: apt-get indisponible sur cette machine ; le test de rendu des listes sera ignoré"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_libreoffice: ni root ni sudo sans mot de passe ; le test de rendu des listes sera ignoré"
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Bounded network waits: an offline CI must not hang here, only skip the rendering test.
APT_OPTS=(-o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o Acquire::Retries=1)
if ! $SUDO apt-get "${APT_OPTS[@]}" update -qq >/dev/null; then
    echo "install_libreoffice: apt-get update a échoué (réseau ou dépôt indisponible) ; le test de rendu des listes sera ignoré"
    exit 0
fi
if ! $SUDO apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends \
        libreoffice-calc poppler-utils >/dev/null; then
    echo "install_libreoffice: l'installation de libreoffice-calc a échoué ; le test de rendu des listes sera ignoré"
    exit 0
fi

if command -v soffice >/dev/null 2>&1; then
    echo "install_libreoffice: installé ($(soffice --version 2>/dev/null | head -n 1))"
else
    echo "install_libreoffice: paquet installé mais soffice absent ; le test de rendu des listes sera ignoré"
fi
exit 0
