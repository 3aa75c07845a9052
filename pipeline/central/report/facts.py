"""The `facts` dict that `render_report` turns into report.html + report.json.

The integrator (pipeline/central) fills it from the stages' own outputs; every key is optional:
a missing or malformed section is shown as « non disponible », never a crash. Only aggregate
figures, hashes, fingerprints and statuses belong here: never a raw identifier (the renderer
refuses NIR- or phone-looking strings anyway).

Shapes below are TypedDicts (documentation + type checking); plain dicts are accepted. Where a
stage already produces a dict (trust's `GateResult.to_dict()`, `AuditStatus.to_dict()`,
`ValidationOutcome.as_facts()`, link_stats.json, detect_stats.json) it can be passed as is: the
renderer reads the field names documented here and tolerates extra ones.
"""

from __future__ import annotations

from typing import Any, TypedDict


class RunFacts(TypedDict, total=False):
    run_id: str                 # e.g. pipeline.central.run.run_id_for(...)
    created_at: str             # ISO timestamp (given by the caller: keeps outputs reproducible)
    reference_date: str         # date_reference of the extracts, ISO
    territory: str              # free text, e.g. "Flers (Orne) — démonstration"
    tool_version: str


class ManifestFacts(TypedDict, total=False):
    agency: str                 # caf / cpam
    file: str                   # caf.pseudo.parquet
    sha256: str
    rows: int
    key_fingerprint: str
    schema_version: str
    created_at: str
    tool_version: str
    signature: str              # valide / invalide / absente


class GateFacts(TypedDict, total=False):
    """`pipeline.trust.gate.GateResult.to_dict()` fits as is."""

    convention_id: str
    convention: dict[str, Any]  # Convention.summary(): title, demo, valid_from, valid_until,
                                # legal_basis, purpose, parties, signatures, rules, ...
    parties: dict[str, dict[str, Any]]   # party id -> {name, roles, key_id}
    signatures: dict[str, str]           # party id -> valide / invalide / absente
    manifests: dict[str, ManifestFacts]  # agency -> manifest (or a list of ManifestFacts)
    key_fingerprint: str
    rules: list[str]
    columns: dict[str, list[str]]        # agency -> columns received
    verdict: str                          # accepte / refuse


class ValidationFacts(TypedDict, total=False):
    """`ValidationOutcome.as_facts()`."""

    stage: str
    success: bool
    critical_failures: list[str]
    warnings: list[str]
    evaluated: int
    passed: int
    skipped: int
    results_path: str


class FunnelStep(TypedDict, total=False):
    pass_: str                  # JSON key "pass": nir / enfant / nom_dob / probabiliste
    links: int                  # links made by this pass
    candidates: int             # optional: pairs considered


class HistogramFacts(TypedDict, total=False):
    bins: list[float]           # bin edges (len = len(counts) + 1), match weight (log2 BF)
    counts: list[int]


class MUFacts(TypedDict, total=False):
    comparison: str
    level: str
    m: float
    u: float


class LinkFacts(TypedDict, total=False):
    """link_stats.json of pipeline/central/match."""

    caf_rows: int
    cpam_rows: int
    funnel: list[dict[str, Any]]        # FunnelStep items, in pass order
    histogram: HistogramFacts
    threshold_link: float               # match weight at/above which a pair is linked
    threshold_review: float             # lower bound of the clerical band
    clerical_size: int
    links_total: int
    m_u: list[MUFacts]
    prior: float                        # lambda (prior match probability)
    # Drill-down (pipeline/central/report/drilldown.py): model_facts() and waterfalls() keys.
    blocking_rules: list[dict[str, Any]]  # rule, on, pairs, new_pairs
    em: dict[str, Any]                  # iterations, converged, in_block_match_share, ...
    sample: list[dict[str, Any]]        # waterfalls: ref, pass, prior, match_weight, steps
    clerical: list[dict[str, Any]]      # every pair of the review band, same shape
    by_pass: dict[str, HistogramFacts]  # match-weight histogram per pass


class DetectCell(TypedDict, total=False):
    tableau: str                # non_recours / a_verifier
    regle: str
    quartier: str
    count: int | None           # None when suppressed
    label: str                  # as published: "12", "< 11", "s"
    suppressed: bool


class DetectFacts(TypedDict, total=False):
    """detect_stats.json + aggregates.csv (pass the CSV path as `aggregates_csv` or the cells)."""

    targets: int                # households in liste cible
    a_verifier: int
    by_rule: dict[str, int]
    cells: list[DetectCell]
    aggregates_csv: str         # path of aggregates.csv; read when `cells` is absent
    excluded_opposition: int
    warnings: list[str]


class LeakageFacts(TypedDict, total=False):
    agency: str
    scan_ok: bool               # leak scan: no identifier-looking value in the export
    findings: int               # number of suspicious cells (never the values)
    frequency_leakage: float    # share of values recovered by the rank-alignment attack (0..1)
    frequency_threshold: float  # alert threshold (e.g. 0.05)
    details: dict[str, float]   # optional per-token recovered shares


class AuditFacts(TypedDict, total=False):
    """`pipeline.trust.audit.AuditStatus.to_dict()` fits as is."""

    ok: bool
    entries: int
    head: str
    broken_line: int | None
    reason: str | None


class ParametersFacts(TypedDict, total=False):
    """The CSS table used (one period of pipeline/shared/parameters/css.yaml)."""

    reference_date: str
    period_from: str
    period_to: str
    confirmed: bool             # False or absent table -> loud warning
    source: str
    gratuite: dict[str, float]  # "1".."4", "extra"
    participation: dict[str, float]
    overseas_uplift: float
    housing_forfait_monthly: dict[str, float]


class ReportFacts(TypedDict, total=False):
    run: RunFacts
    gate: GateFacts
    validations: list[ValidationFacts]
    linkage: LinkFacts
    detection: DetectFacts
    leakage: list[LeakageFacts] | dict[str, LeakageFacts]
    audit: AuditFacts
    parameters: ParametersFacts
    versions: dict[str, str]    # package -> version (see `collect_versions`)
    warnings: list[str]         # loud warnings from the stages, shown at the top
    # validations[i]["checks"]: the per-check records of validation/<stage>.json
    ingestion: dict[str, dict[str, Any]]  # agency -> manifest extra "ingestion" (counts by motif)
    quartiers: dict[str, str]   # quartier code -> public name (CAF manifest extra)
    rules: list[dict[str, Any]]  # id, titre, source, liste, agence, priorite, limites
    reconciliation: dict[str, Any]  # drilldown.reconciliation(): totals that must agree


SECTION_IDS = (
    "alertes", "convention", "manifestes", "ingestion", "qualite", "attentes", "appariement",
    "modele", "liens", "revue", "detection", "regles", "rapprochement", "confidentialite",
    "audit", "parametres", "versions",
)

# Under the separated detection (docs/SEPARATION.md) each central operator reports on what it
# did: the linking operator on the exports and the links, the detecting operator on the rules
# and the targets. A run's facts name its `role`; the sections of the other role say where they
# are instead of « not available ». Without a role (one operator does both), every section.
ROLE_SECTIONS = {
    "appariement": ("convention", "manifestes", "ingestion", "qualite", "attentes",
                    "appariement", "modele", "liens", "revue", "confidentialite", "audit",
                    "versions"),
    "detection": ("convention", "manifestes", "qualite", "detection", "regles",
                  "rapprochement", "confidentialite", "audit", "parametres", "versions"),
}
OTHER_REPORT = {
    "appariement": "calculé par l'opérateur de détection : voir son rapport",
    "detection": "calculé par l'opérateur d'appariement : voir son rapport",
}


def collect_versions() -> dict[str, str]:
    """Versions of the tool and the libraries whose behaviour shapes the results."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("nonrecours", "polars", "duckdb", "pandas", "pyarrow", "great-expectations",
                 "cryptography", "jinja2"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "non installé"
    import platform

    out["python"] = platform.python_version()
    return out
