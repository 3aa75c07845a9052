"""What an agency checks before anything leaves its premises.

The central gate refuses a bad convention too, but only after the data has left: the agency must
refuse first. Before writing an export it verifies the convention exactly as the gate does (every
party's signature, validity dates, no published demo material outside a demo convention, an
allow-list under which the central step can run), that it is one of its data providers, that its
own signing key is the one the convention declares, and that the files deciding what runs are the
ones the convention pins (pipeline.trust.reference).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from pipeline.common.errors import RefusalError
from pipeline.trust.canonical import public_key_b64
from pipeline.trust.convention import Convention, verify_convention
from pipeline.trust.reference import apply_parameter_table, check_reference_files


@dataclasses.dataclass(frozen=True)
class AgencyCheck:
    """The verified facts the agency signs into its manifest."""

    reference_files: dict[str, str]
    parameter_table: dict[str, Any]

    def as_manifest(self) -> dict[str, Any]:
        """The signed manifest fields (pipeline.trust.manifest.write_manifest `reference`)."""
        return {"fichiers_reference": dict(self.reference_files),
                "table_parametres": dict(self.parameter_table)}


def verify_for_agency(conv: Convention, agency: str, keys_dir: Path,
                      today: dt.date) -> AgencyCheck:
    """Refuse (French) unless `agency` may export under `conv` today with the keys of `keys_dir`."""
    from pipeline.trust.keys import load_public_ed25519

    verify_convention(conv, today)
    if agency not in conv.data_providers:
        raise RefusalError(f"{conv.path} : « {agency} » n'est pas fournisseur de données de la "
                           f"convention « {conv.id} » ; aucun export possible")
    own = public_key_b64(load_public_ed25519(Path(keys_dir), agency))
    if own != conv.parties[agency].ed25519:
        raise RefusalError(
            f"{conv.path} : la clé de signature de {keys_dir} n'est pas celle déclarée pour "
            f"« {agency} » dans la convention « {conv.id} » ; son manifeste serait refusé")
    return AgencyCheck(check_reference_files(conv), apply_parameter_table(conv))
