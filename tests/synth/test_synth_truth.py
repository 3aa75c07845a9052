"""Ground truth: consistent with the raw files and with the population model."""

from __future__ import annotations

from collections import Counter, defaultdict

import polars as pl
from synth_read import caf, cpam, truth

from pipeline.synth.writer import CAF_COLUMNS, CPAM_COLUMNS

CI = {c: i for i, c in enumerate(CAF_COLUMNS)}
PI = {c: i for i, c in enumerate(CPAM_COLUMNS)}


def test_every_line_is_one_person(dataset):
    out, meta = dataset
    persons = truth(out, "persons.csv")
    caf_rows, cpam_rows = caf(out), cpam(out)
    caf_lines = persons["caf_line"].drop_nulls().cast(pl.Int64)
    cpam_lines = persons["cpam_line"].drop_nulls().cast(pl.Int64)
    assert sorted(caf_lines) == list(range(2, len(caf_rows) + 1))
    assert sorted(cpam_lines) == list(range(2, len(cpam_rows) + 1))
    assert persons.height == meta["counts"]["persons"] == persons["person_id"].n_unique()
    for pid_row in persons.filter(pl.col("caf_line").is_not_null()).iter_rows(named=True):
        assert caf_rows[int(pid_row["caf_line"]) - 1][CI["matricule"]] == pid_row["matricule"]


def test_households_match_caf_dossiers(clean):
    out, _ = clean
    hh = truth(out, "households.csv")
    rows = caf(out)[1:]
    sizes = Counter(r[CI["matricule"]] for r in rows)
    assert dict(zip(hh["matricule"], hh["nb_personnes"].cast(pl.Int64), strict=True)) == sizes
    # one DEM per dossier, CJT iff COUPLE
    roles = defaultdict(list)
    for r in rows:
        roles[r[CI["matricule"]]].append((r[CI["role"]], r[CI["situation_familiale"]]))
    for m, rs in roles.items():
        assert [x for x, _ in rs].count("DEM") == 1, m
        assert ("CJT" in [x for x, _ in rs]) == (rs[0][1] == "COUPLE"), m


def test_absent_from_cpam_whole_households(dataset):
    out, meta = dataset
    persons = truth(out, "persons.csv")
    hh = truth(out, "households.csv")
    absent = set(hh.filter(pl.col("a_cpam") == "0")["matricule"])
    share = len(absent) / hh.height
    assert 0.05 < share < 0.14
    caf_p = persons.filter(pl.col("matricule").is_not_null())
    by_hh = caf_p.group_by("matricule").agg(
        present=pl.col("cpam_line").is_not_null().sum(), n=pl.len())
    spouses_elsewhere = 0
    for m, present, n in by_hh.iter_rows():
        if m in absent:
            assert present == 0, m
        else:  # a spouse may be covered by another scheme on their own
            assert present in (n, n - 1), m
            spouses_elsewhere += present == n - 1
    assert 0 < spouses_elsewhere < 0.05 * len(by_hh)
    assert meta["counts"]["cpam_only_households"] > 0
    assert persons.filter(pl.col("matricule").is_null())["cpam_line"].null_count() == 0


def test_twins_share_parent_and_birth_date_with_ranks(dataset):
    out, meta = dataset
    groups = defaultdict(list)
    for r in cpam(out)[1:]:
        if len(r) == len(CPAM_COLUMNS) and r[PI["qualite"]] == "ENFANT":
            groups[(r[PI["nir_ouvrant_droit"]], r[PI["date_naissance"]])].append(
                r[PI["rang_gemellaire"]])
    ranks = [sorted(v) for v in groups.values() if len(v) == 2]
    assert meta["counts"]["twins_pairs"] > 0
    assert ranks and all(v == ["1", "2"] for v in ranks)


def test_children_mostly_without_nir_at_caf(clean):
    out, _ = clean
    enf = [r for r in caf(out)[1:] if r[CI["role"]] == "ENF"]
    with_nir = sum(1 for r in enf if r[CI["nir"]])
    assert 0 < with_nir < 0.3 * len(enf)
    adults = [r for r in caf(out)[1:] if r[CI["role"]] in ("DEM", "CJT")]
    assert all(r[CI["nir"]] for r in adults)


def test_children_attached_to_either_parent(clean):
    """In couples, ENFANT rows hang on the father's NIR in some families, the mother's in others."""
    out, _ = clean
    persons = truth(out, "persons.csv")
    caf_rows, cpam_rows = caf(out), cpam(out)
    line_of = {int(a): int(b) for a, b in persons.drop_nulls(["caf_line", "cpam_line"])
               .select("caf_line", "cpam_line").iter_rows()}
    sexes = Counter()
    by_m = defaultdict(list)
    for line, r in enumerate(caf_rows[1:], start=2):
        by_m[r[CI["matricule"]]].append((line, r))
    for rows in by_m.values():
        if rows[0][1][CI["situation_familiale"]] != "COUPLE":
            continue
        nir_sex = {r[CI["nir"]]: r[CI["sexe"]] for _, r in rows if r[CI["role"]] in ("DEM", "CJT")}
        for line, r in rows:
            if r[CI["role"]] == "ENF" and line in line_of:
                od = cpam_rows[line_of[line] - 1][PI["nir_ouvrant_droit"]]
                if od in nir_sex:
                    sexes[nir_sex[od]] += 1
    assert sexes["1"] > 10 and sexes["2"] > 10


def test_usage_names(clean):
    out, _ = clean
    usage = [r for r in caf(out)[1:] if r[CI["nom_usage"]]]
    assert usage and all(r[CI["sexe"]] == "2" for r in usage)


def test_territory_and_hors_territoire(dataset):
    out, meta = dataset
    table = pl.read_csv(out / "territory" / "iris_quartiers.csv", separator=";",
                        infer_schema=False)
    assert table.columns == ["code_iris", "code_commune", "nom_commune", "quartier",
                             "nom_quartier", "qpv"]
    assert 10 <= table.height <= 14
    assert table.filter(pl.col("qpv") == "1")["quartier"].str.contains(r"^QN\d{5}[A-Z]$").all()
    assert set(table["code_commune"]) == {"61169", "61407", "61391", "61277"}
    assert (table["code_iris"].str.slice(0, 5) == table["code_commune"]).all()
    hh = truth(out, "households.csv")
    n_hors = hh.filter(pl.col("quartier") == "HORS_TERRITOIRE").height
    assert n_hors == meta["counts"]["hors_territoire_households"] > 0
    assert "ILLUSTRATIVE" in (out / "territory" / "README.md").read_text(encoding="utf-8").upper()


def test_opposition_and_contacts(dataset):
    out, _ = dataset
    hh = truth(out, "households.csv")
    opp = pl.read_csv(out / "agencies" / "caf" / "opposition.csv", separator=";",
                      infer_schema=False)
    assert opp.columns == ["matricule", "nir"] and opp.height > 0
    flagged = set(hh.filter(pl.col("opposition") == "1")["matricule"])
    assert set(opp["matricule"]) <= flagged
    cpam_opp = pl.read_csv(out / "agencies" / "cpam" / "opposition.csv", separator=";",
                           infer_schema=False)
    assert cpam_opp.columns == ["nir"] and cpam_opp.height > 0
    contacts = pl.read_csv(out / "agencies" / "caf" / "contacts.csv", separator=";",
                           infer_schema=False)
    assert contacts.columns == ["matricule", "date_contact"]
    recent = set(hh.filter(pl.col("contacte_6m") == "1")["matricule"])
    assert recent < set(contacts["matricule"])  # some contacts are older than 6 months


def test_cpam_reverse_points_at_free_css_assures(dataset):
    out, meta = dataset
    rev = truth(out, "cpam_reverse.csv")
    rows = cpam(out)
    assert rev.height == meta["counts"]["cpam_reverse"] > 0
    for line in rev["cpam_line"].cast(pl.Int64):
        r = rows[line - 1]
        if len(r) == len(CPAM_COLUMNS) and r[PI["css"]] != "OUI":
            assert r[PI["qualite"]] in ("ASSURE", "CONJOINT")
            assert r[PI["css"]] == "GRATUITE"


def test_noise_zero_means_no_noise(clean):
    _, meta = clean
    c = meta["counts"]
    assert all(v == 0 for v in c["noise_caf"].values())
    assert c["malformed_caf"] == {} and c["malformed_cpam"] == {}


def test_everyone_is_somewhere(dataset):
    out, _ = dataset
    persons = truth(out, "persons.csv")
    assert persons.filter(pl.col("caf_line").is_null() & pl.col("cpam_line").is_null()).height == 0


def test_provisional_at_caf_certified_at_cpam(clean):
    """Some people born abroad still have a provisional number (7/8) at the CAF while the CPAM
    holds their certified NIR: the NIR pass cannot link them, names and birth date must."""
    out, _ = clean
    persons = truth(out, "persons.csv").drop_nulls(["caf_line", "cpam_line"])
    caf_rows, cpam_rows = caf(out), cpam(out)
    pairs = [(caf_rows[int(a) - 1][CI["nir"]], cpam_rows[int(b) - 1][PI["nir_beneficiaire"]])
             for a, b in persons.select("caf_line", "cpam_line").iter_rows()]
    same = sum(1 for a, b in pairs if a and a == b)
    certified = [(a, b) for a, b in pairs if a and b and a != b]
    assert same > 0.9 * len([a for a, _ in pairs if a])
    assert certified and all(a[0] in "78" and b[0] in "12" for a, b in certified)
    assert all(a[1:5] == b[1:5] for a, b in certified)  # same birth year and month


def test_cpam_opposition_uses_the_cpam_nir(clean):
    out, _ = clean
    opp = pl.read_csv(out / "agencies" / "cpam" / "opposition.csv", separator=";",
                      infer_schema=False)
    held = {r[PI["nir_beneficiaire"]] for r in cpam(out)[1:]}
    assert set(opp["nir"]) <= held


def test_any_territory_yaml_overseas(tmp_path):
    """A territory given as a YAML path; an overseas commune gets the uplifted ceilings."""
    from pipeline.synth import generate

    (tmp_path / "reunion.yaml").write_text(
        "name: test\n"
        "communes:\n  '97411': {nom: Saint-Denis, code_postal: '97400'}\n"
        "iris:\n  - {code_iris: '974110101', commune: '97411', quartier: QN97401M,"
        " nom_quartier: Test, qpv: 1, weight: 1}\n"
        "streets: [RUE DE PARIS]\n", encoding="utf-8")
    out = tmp_path / "d"
    counts = generate(200, 3, 0.0, out, territory=str(tmp_path / "reunion.yaml"))
    rows = caf(out)[1:]
    assert {r[CI["code_commune"]] for r in rows} == {"97411"}
    assert {r[CI["code_postal"]] for r in rows} == {"97400"}
    assert counts["hors_territoire_households"] == 0
    assert sum(counts["rules"].values()) > 0
