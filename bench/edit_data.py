"""Synthetic reference files for `bench/run.py --with-data`: the edit packs' data, CMS layouts.

Writes into a folder, once per content: a PPRRVU CSV (the codes of bench/gen837.py
with plausible indicators, padded with filler codes to the size of CMS's file,
some 19,000 rows), an add-on code file (gen837's add-on 96375 and filler edits,
some 6,000 rows), a CLIA-waived list and a lab certification list; the provider
identity files: an NPPES file (bench/gen_nppes.py, ``nppes_rows`` rows with the bench
837s' providers among them; or an NPPES file given, such as a full-size one), a PECOS
Order and Referring CSV and a NUCC taxonomy CSV. Fictional values, never CMS data.
Returns the `scrub check` options that load them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_fixture_build",
                                                  FIXTURES / name / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(folder: Path, nppes_rows: int = 200_000, nppes: Path | None = None, seed: int = 1
          ) -> list[str]:
    """Write the files into ``folder``; the `scrub check` options that name them."""
    pfs, addons = _module("pfs"), _module("addons")
    folder.mkdir(parents=True, exist_ok=True)
    rvu = [pfs.rvu("99213"), pfs.rvu("99214"), pfs.rvu("96413", pctc="5"),
           pfs.rvu("96365", pctc="5"), pfs.rvu("96375", pctc="5", glob="ZZZ"),
           pfs.rvu("36591", status="T", pctc="5"), pfs.rvu("96523", status="T", pctc="5"),
           pfs.rvu("71046", pctc="1"), pfs.rvu("71046", pctc="1", mod="26"),
           pfs.rvu("71046", pctc="1", mod="TC"), pfs.rvu("J1642", status="E", pctc="9"),
           pfs.rvu("J7050", status="E", pctc="9")]
    rvu += [pfs.rvu(f"{n:05d}", glob=("000", "010", "090", "XXX")[n % 4]) for n in
            range(10021, 10021 + 19000)]
    aoc = [addons.aoc("96375", primary, 1) for primary in ("96365", "96413", "96374")]
    aoc += [addons.aoc(f"{n:05d}", f"{n - 1:05d}", 1 + n % 3) for n in range(20000, 26000)]
    files = {
        "PPRRVU26_JAN.csv": pfs.csv_text(rvu),
        "AOC_V2026Q1-MCR.txt": addons.fixed_text(aoc),
        "clia-waived-tests.csv": "CPT CODE(S),TEST NAME\r\n85025QW,Synthetic\r\n81025,X\r\n",
        "lab-certification-codes.csv": "HCPCS,LAB CERTIFICATION CODES\r\n"
                                       "85025,400\r\n80053,310\r\n",
    }
    providers = provider_files(folder, nppes_rows, nppes, seed)
    for name, text in files.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return [*providers, "--pfs-rvu", str(folder / "PPRRVU26_JAN.csv"),
            "--ncci-aoc", str(folder / "AOC_V2026Q1-MCR.txt"),
            "--clia-waived", str(folder / "clia-waived-tests.csv"),
            "--clia-codes", str(folder / "lab-certification-codes.csv")]


def provider_files(folder: Path, nppes_rows: int, nppes: Path | None, seed: int) -> list[str]:
    """The provider identity files: NPPES (written once per size and seed), PECOS, NUCC:
    the providers of the bench 837s of ``seed`` are in them."""
    import gen_nppes

    bench = gen_nppes.bench_providers(seed)
    if nppes is None:
        sized = folder / f"nppes-{nppes_rows}-s{seed}"
        nppes = sized / gen_nppes.MEMBER
        if not nppes.exists():
            gen_nppes.write(sized, nppes_rows, bench)
    pecos = ["NPI,LAST_NAME,FIRST_NAME,PARTB,DME,HHA,PMD,HOSPICE"]
    pecos += [f"{npi},SYNTHETIC,PROVIDER,Y,Y,Y,N,N" for npi, entity, _ in bench
              if entity == "1"]
    pecos += [f"{gen_nppes.npi(200_000_000 + n * 7)},FILLER,ROW,Y,N,N,N,N"
              for n in range(1_900_000 // 10)]  # a tenth of the real file's ~1.9 million
    taxonomies = sorted({t for _, _, t in bench} | set(gen_nppes.TAXONOMIES))
    nucc = ["Code,Grouping,Classification,Specialization,Definition,Notes,Display Name,Section"]
    nucc += [f"{code},Synthetic,Synthetic,,,,Synthetic,Individual" for code in taxonomies]
    nucc += [f"{n:03d}{'F' * 6}X,Filler,Filler,,,,Filler,Individual" for n in range(100, 950)]
    for name, lines in (("Order_and_Referring_20261201.csv", pecos),
                        ("nucc_taxonomy_261.csv", nucc)):
        text = "".join(line + "\r\n" for line in lines)
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return ["--nppes", str(nppes), "--pecos-order-refer",
            str(folder / "Order_and_Referring_20261201.csv"),
            "--nucc-taxonomy", str(folder / "nucc_taxonomy_261.csv")]
