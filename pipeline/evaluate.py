"""`make evaluate`: a fresh synthetic dataset, the real chain, scored against the ground truth.

The evaluator is the only code allowed to look at both sides at once: it reads each agency's
handles table (handle -> raw line) and the generator's truth (which CAF line is which CPAM line,
which household meets which rule). It never feeds anything back into the chain.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
from rich.table import Table

from pipeline.central.facts import K_FILE
from pipeline.central.report.render import fmt_pct
from pipeline.chain import run, stages
from pipeline.common.files import write_text
from pipeline.common.progress import console
from pipeline.common.quality import precision_recall_f1
from pipeline.shared.providers import AGENCIES
from pipeline.shared.separation import DETECTION_OUT

CAF_RULES = (
    "monoparent_sous_plafond_sans_css",
    "rsa_sans_css",
    "css_non_renouvelee",
    "sous_plafond_sans_css",
    "aah_isole",
)
REVERSE_RULE = "css_gratuite_sans_minima"
PARTITION_SHOWN = 0.5  # token columns whose equal values group at least this share of rows


def prf(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Precision, recall and F1 of predicted keys against true keys (1.0 when both empty).

    Both frames hold the same key columns; duplicates are ignored; matching is a join.
    """
    predicted, truth = predicted.unique(), truth.unique()
    tp = predicted.join(truth, on=truth.columns, how="semi", nulls_equal=False).height
    return {
        "predicted": predicted.height,
        "truth": truth.height,
        "true_positives": tp,
        **precision_recall_f1(tp, predicted.height, truth.height, digits=5),
    }


def read_truth(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator=";", infer_schema_length=10000)


def handle_lines(out: Path, agency: str) -> pl.DataFrame:
    """The agency's handle -> raw line map (the evaluator may look at both sides)."""
    return pl.read_parquet(out / agency / "handles.parquet").select(
        pl.col("handle").alias(f"{agency}_handle"),
        pl.col("line").cast(pl.Int64).alias(f"{agency}_line"),
    )


def opposed_lines(out: Path, agency: str) -> pl.DataFrame:
    """Raw lines of the rows the agency exported as part of an opposed household."""
    export = pl.read_parquet(out / agency / "export" / f"{agency}.pseudo.parquet",
                             columns=["handle", "opposition"])
    return (export.filter(pl.col("opposition").fill_null(False))
            .join(handle_lines(out, agency), left_on="handle", right_on=f"{agency}_handle")
            .select(f"{agency}_line"))


def linkage_scores(out: Path, truth_dir: Path) -> dict:
    """Person-level precision/recall of links.parquet against truth/persons.csv."""
    pair = ["caf_line", "cpam_line"]
    true_pairs = (
        read_truth(truth_dir / "persons.csv").drop_nulls(pair).select(pl.col(pair).cast(pl.Int64))
    )
    caf, cpam = handle_lines(out, "caf"), handle_lines(out, "cpam")
    links = (
        pl.read_parquet(out / "central" / "links.parquet")
        .join(caf, on="caf_handle", how="left")
        .join(cpam, on="cpam_handle", how="left")
    )
    # Pairs whose two rows both reached the export (a rejected raw row cannot be linked).
    linkable = true_pairs.join(caf, on="caf_line", how="semi").join(
        cpam, on="cpam_line", how="semi"
    )
    scores = prf(links.select(pair), linkable)
    scores["recall_all_true_pairs"] = prf(links.select(pair), true_pairs)["recall"]
    # An opposed person's household leaves without name or date tokens (it is only excluded):
    # most of its members cannot be linked, by design. Recall on the other households.
    opposed = {a: opposed_lines(out, a) for a in AGENCIES}
    free = linkable.join(opposed["caf"], on="caf_line", how="anti").join(
        opposed["cpam"], on="cpam_line", how="anti")
    scores["recall_outside_opposition"] = prf(links.select(pair), free)["recall"]
    scores["true_pairs_in_opposed_households"] = linkable.height - free.height
    scores["by_pass"] = {
        name: {"links": group.height, "precision": prf(group.select(pair), linkable)["precision"]}
        for (name,), group in links.group_by("pass", maintain_order=True)
    }
    return scores


def rule_scores(out: Path, truth_dir: Path) -> dict:
    """Per-rule precision/recall of the central targets against truth/households.csv."""
    targets = pl.read_parquet(out / DETECTION_OUT / "targets.parquet")
    households = read_truth(truth_dir / "households.csv").with_columns(
        pl.col("matricule").cast(pl.Utf8)
    )
    if "opposition" in households.columns:
        households = households.filter(pl.col("opposition") == 0)
    caf_foyers = (
        pl.read_parquet(out / "caf" / "handles.parquet")
        .select("foyer", pl.col("matricule").cast(pl.Utf8))
        .unique()
    )
    caf_targets = targets.filter(pl.col("agence") == "caf").join(caf_foyers, on="foyer", how="left")
    cible = pl.col("liste") == "cible"
    scores: dict[str, dict] = {}
    for rule in CAF_RULES:
        if rule in households.columns:
            scores[rule] = prf(
                caf_targets.filter(cible & pl.col("regles").list.contains(rule)).select(
                    "matricule"
                ),
                households.filter(pl.col(rule) == 1).select("matricule"),
            )
    if "a_verifier" in households.columns:
        scores["a_verifier"] = prf(
            # the rule, not the whole list: « statut CSS à vérifier » households share the list
            caf_targets.filter(pl.col("regles").list.contains("a_verifier")).select("matricule"),
            households.filter(pl.col("a_verifier") == 1).select("matricule"),
        )
    reverse_path = truth_dir / "cpam_reverse.csv"
    if reverse_path.exists():
        reverse = read_truth(reverse_path)
        predicted = (
            targets.filter(
                (pl.col("agence") == "cpam") & pl.col("regles").list.contains(REVERSE_RULE)
            )
            .rename({"handle": "cpam_handle"})
            .join(handle_lines(out, "cpam"), on="cpam_handle", how="left")
        )
        scores[REVERSE_RULE] = prf(
            predicted.select("cpam_line"),
            reverse.filter(pl.col(REVERSE_RULE) == 1).select(pl.col("cpam_line").cast(pl.Int64)),
        )
    return scores


def leakage_figures(out: Path) -> dict:
    figures = {}
    for agency in AGENCIES:
        path = out / "transfer" / agency / f"{agency}.leakage.json"
        if path.exists():
            figures[agency] = json.loads(path.read_text())
    report = out / "central" / "report.json"
    if report.exists():
        figures["central"] = json.loads(report.read_text())["facts"].get("leakage", [])
    figures["croise"] = cross_export_figures(out)
    return figures


def cross_export_figures(out: Path) -> dict | None:
    """The token-class attack on both exports at once, as the central operator holds them,
    scored with both agencies' truth (the evaluator alone may look at both)."""
    from pipeline.agency.pseudonymise.attacks import cross_export_attack
    from pipeline.agency.pseudonymise.leakage import agency_truth

    exports, truths = {}, {}
    for agency in AGENCIES:
        export = out / "transfer" / agency / f"{agency}.pseudo.parquet"
        if not export.exists():
            return None
        exports[agency] = pl.read_parquet(export)
        truths[agency] = agency_truth(pl.read_parquet(out / agency / "ingested.parquet"),
                                      pl.read_parquet(out / agency / "handles.parquet"), agency)
    return cross_export_attack(exports, truths)


def _pct(figures: dict, part: str, key: str = "part_retrouvee") -> str:
    return fmt_pct((figures.get(part) or {}).get(key))


def show_class_attacks(leakage: dict) -> None:
    """One line per export (and one for both): what the token classes give away."""
    views = [(a.upper(), (leakage.get(a) or {}).get("frequence", {}).get("classes_jetons"))
             for a in AGENCIES]
    views.append(("CAF + CPAM", leakage.get("croise")))
    for name, c in views:
        if not c:
            continue
        names = max((v for figures in (c.get("attaque_rang_par_classe") or {}).values()
                     for v in figures.values() if v is not None), default=None)
        console.print(
            f"Classes de jetons {name} : {c['mois']['classes_multiples']} classes de mois, "
            f"{c['jour']['classes_multiples']} de jours, {c['annee']['classes_multiples']} "
            f"d'années ; année de naissance retrouvée {_pct(c, 'annee')} (a priori "
            f"{_pct(c, 'annee', 'a_priori')}), mois {_pct(c, 'mois')}, date complète "
            f"{_pct(c, 'date_complete')}"
            + (f" ; noms retrouvés dans les classes d'année : {fmt_pct(names)}"
               if names is not None else ""))
        partitions = sorted(((v["part_lignes_en_classes_multiples"], k) for k, v in
                             (c.get("partition_par_colonne") or {}).items()
                             if v["part_lignes_en_classes_multiples"] >= PARTITION_SHOWN),
                            reverse=True)
        if partitions:
            console.print(f"  colonnes dont les valeurs égales regroupent plus de "
                          f"{fmt_pct(PARTITION_SHOWN, 0)} des lignes : "
                          + ", ".join(f"{k} ({fmt_pct(v)})" for v, k in partitions))


def k_anonymity_figures(out: Path) -> dict:
    """The run's k-anonymity figures, as each central operator measured what it holds: the
    linking operator's exports and their joined view, the detecting operator's two views."""
    linker = out / "central" / K_FILE
    stats = out / DETECTION_OUT / "detect_stats.json"
    return {**(json.loads(linker.read_text()) if linker.exists() else {}),
            **(json.loads(stats.read_text()).get("k_anonymat_detection", {})
               if stats.exists() else {})}


K_LABELS = (("caf", "export CAF (opérateur d'appariement)"),
            ("cpam", "export CPAM (opérateur d'appariement)"),
            ("vue_jointe", "vue jointe CAF + CPAM (opérateur d'appariement)"),
            ("vue_foyers", "vue des foyers (opérateur de détection)"),
            ("vue_assures", "vue des assurés (opérateur de détection)"))


def show_k_anonymity(figures: dict) -> None:
    for name, label in K_LABELS:
        k = figures.get(name)
        if k and k.get("foyers"):
            console.print(
                f"k-anonymat {label} ({k['foyers']} foyers, attributs hors jetons) : k = 1 pour "
                f"{fmt_pct(k['part_k1'])} (objectif < 1 %), k < 5 pour "
                f"{fmt_pct(k['part_k_moins_5'])} (objectif < 5 %)"
                + ("" if k.get("objectifs_atteints") else " — OBJECTIF NON ATTEINT"))


def residue_figures(out: Path) -> dict:
    """What the staged exchange asked for and linked (the central step's link_stats.json)."""
    stats = json.loads((out / "central" / "link_stats.json").read_text(encoding="utf-8"))
    res = stats.get("residue") or {}
    return {"demandes": res.get("requests", {}), "paires_candidates":
            (res.get("candidate_pairs") or {}).get("total"), "liens": res.get("linked"),
            "revue": res.get("clerical_review")}


def evaluate(households: int, seed: int, noise: float, out: Path, convention: Path) -> dict:
    from pipeline.synth import generate

    dataset = out / "data"
    t0 = time.perf_counter()
    generate(households=households, seed=seed, noise=noise, out=dataset)
    timings = {"génération": round(time.perf_counter() - t0, 3)}
    timings |= run(stages(dataset, out, convention, seed=seed), out)
    result = {
        "dataset": {"households": households, "seed": seed, "noise": noise},
        "linkage": linkage_scores(out, dataset / "truth"),
        "residu": residue_figures(out),
        "rules": rule_scores(out, dataset / "truth"),
        "leakage": leakage_figures(out),
        "k_anonymat": k_anonymity_figures(out),
        "wall_time_s": timings,
    }
    write_text(out / "evaluation.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    show(result)
    console.print(f"Écrit : {out / 'evaluation.json'}")
    return result


def show(result: dict) -> None:
    link = result["linkage"]
    table = Table(title="Évaluation contre la vérité terrain", show_lines=False)
    for col in ("mesure", "prédits", "vrais", "précision", "rappel", "F1"):
        table.add_column(col, justify="right" if col != "mesure" else "left")
    rows = [("appariement (personnes)", link), *result["rules"].items()]
    for name, s in rows:
        table.add_row(
            name,
            str(s["predicted"]),
            str(s["truth"]),
            f"{s['precision']:.4f}",
            f"{s['recall']:.4f}",
            f"{s['f1']:.4f}",
        )
    console.print(table)
    if link.get("recall_outside_opposition") is not None:
        console.print(
            f"Appariement : rappel {link['recall_outside_opposition']:.4f} hors foyers en "
            f"opposition ({link['true_pairs_in_opposed_households']} paires vraies dans ces "
            "foyers, qui partent sans jeton de nom ni de date : seulement exclus)")
    for item in result["leakage"].get("central", []):
        if item.get("scan_ok") is None:  # the joined view: k-anonymity only (below)
            continue
        share = item.get("frequency_leakage")
        console.print(
            f"Confidentialité {item['agency'].upper()} : contrôle des fuites "
            f"{'sans anomalie' if item.get('scan_ok') else 'EN ÉCHEC'} ; noms retrouvés par "
            f"alignement des rangs (pire jeton, attaque la plus forte que l'export permet) : "
            + (f"{share:.2%}" if share is not None else "non mesuré")
        )
    res = result.get("residu") or {}
    if res.get("demandes"):
        asked = ", ".join(f"{k.upper()} {v}" for k, v in res["demandes"].items())
        console.print(f"Résidu (filtres de Bloom) : lignes demandées {asked} ; "
                      f"{res.get('liens')} liens, {res.get('revue')} paires à revoir")
    show_class_attacks(result["leakage"])
    show_k_anonymity(result.get("k_anonymat") or {})
    times = Table(title="Temps par étape (s)")
    times.add_column("étape")
    times.add_column("s", justify="right")
    for name, seconds in result["wall_time_s"].items():
        times.add_row(name, f"{seconds:.2f}")
    console.print(times)
