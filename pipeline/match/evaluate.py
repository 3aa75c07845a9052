"""Quality against a ground truth (synthetic data only): precision, recall, pair completeness.

The truth file lists the true pairs by handle: columns `caf_handle`, `cpam_handle` (Parquet, or
CSV separated by `;` or `,`). Benches build it from the generator's truth/persons.csv and each
agency's handles.parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from pipeline.common.errors import InputError
from pipeline.common.quality import precision_recall_f1
from pipeline.match.config import Config


def _read_truth_sql(path: Path) -> str:
    p = str(path).replace("'", "''")
    if path.suffix == ".parquet":
        return f"read_parquet('{p}')"
    return f"read_csv('{p}', header = true, all_varchar = true)"


def load_truth(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Truth pairs into table `truth(lid, rid)`; pairs naming an unknown handle are an error."""
    if not path.exists():
        raise InputError(path, "fichier de vérité terrain introuvable")
    try:
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_read_truth_sql(path)}")
                .fetchall()}
    except duckdb.Error as exc:
        raise InputError(path, "fichier de vérité terrain illisible") from exc
    for col in ("caf_handle", "cpam_handle"):
        if col not in cols:
            raise InputError(path, "colonne absente", column=col)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE truth AS
        SELECT DISTINCT l.id AS lid, r.id AS rid
        FROM {_read_truth_sql(path)} t
        JOIN caf_handles l ON l.handle = t.caf_handle
        JOIN cpam_handles r ON r.handle = t.cpam_handle
    """)
    n_file = con.execute(f"SELECT count(*) FROM {_read_truth_sql(path)}").fetchall()[0][0]
    n = con.execute("SELECT count(*) FROM truth").fetchall()[0][0]
    if n != n_file:
        raise InputError(path, f"{n_file - n} paires de la vérité terrain désignent un handle "
                               "absent des exports (ou sont en double)")
    return int(n)


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    return {"true_positives": tp, "false_positives": fp, "false_negatives": fn,
            **precision_recall_f1(tp, tp + fp, tp + fn)}


def evaluate(con: duckdb.DuckDBPyConnection, truth_path: Path, cfg: Config) -> dict[str, Any]:
    """Person-level quality of `links`, per pass, and blocking pair completeness."""
    n_truth = load_truth(con, truth_path)
    tp = con.execute("SELECT count(*) FROM links k SEMI JOIN truth t "
                     "ON k.lid = t.lid AND k.rid = t.rid").fetchall()[0][0]
    n_links = con.execute("SELECT count(*) FROM links").fetchall()[0][0]
    out: dict[str, Any] = {"truth_pairs": n_truth, **_prf(tp, n_links - tp, n_truth - tp)}
    per_pass = con.execute("""
        SELECT k.pass, count(*) AS n, count(t.lid) AS tp
        FROM links k LEFT JOIN truth t ON k.lid = t.lid AND k.rid = t.rid
        GROUP BY k.pass ORDER BY k.pass
    """).fetchall()
    out["precision_by_pass"] = {
        p: {"links": int(n), "true": int(t), "precision": precision_recall_f1(t, n, t)["precision"]}
        for p, n, t in per_pass}
    clerical_true = con.execute("SELECT count(*) FROM clerical c SEMI JOIN truth t "
                                "ON c.lid = t.lid AND c.rid = t.rid").fetchall()[0][0]
    n_clerical = con.execute("SELECT count(*) FROM clerical").fetchall()[0][0]
    out["clerical_review"] = {"pairs": int(n_clerical), "true_pairs": int(clerical_true)}
    # Pair completeness: among true pairs whose two records reached the probabilistic step,
    # the share each blocking rule (and their union) puts among the candidates.
    rules = ",\n".join(
        f"coalesce(({b.on}), FALSE) AS b{i}" for i, b in enumerate(cfg.blocking_rules)
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE truth_rest AS
        SELECT t.lid, t.rid, {rules}
        FROM truth t
        SEMI JOIN caf_rest a ON a.id = t.lid
        SEMI JOIN cpam_rest b ON b.id = t.rid
        JOIN caf l ON l.id = t.lid
        JOIN cpam r ON r.id = t.rid
    """)
    n_rest = con.execute("SELECT count(*) FROM truth_rest").fetchall()[0][0]
    in_cand = con.execute("SELECT count(*) FROM truth_rest t SEMI JOIN cand c "
                          "ON c.lid = t.lid AND c.rid = t.rid").fetchall()[0][0]
    per_rule = {}
    for i, b in enumerate(cfg.blocking_rules):
        k = con.execute(f"SELECT count(*) FROM truth_rest WHERE b{i}").fetchall()[0][0]
        per_rule[b.name] = (k / n_rest) if n_rest else 1.0
    out["blocking_pair_completeness"] = {
        "true_pairs_reaching_probabilistic": int(n_rest),
        "overall": (in_cand / n_rest) if n_rest else 1.0,
        "by_rule": per_rule,
    }
    return out
