"""Write a synthetic NPPES downloadable file (npidata_pfile CSV) of any size, in CMS's layout.

    python bench/gen_nppes.py bench/out/nppes --rows 8000000        # about 9 GB, the real size
    python bench/gen_nppes.py bench/out/nppes --rows 1000000 --zip  # the monthly zip

The 330 quoted columns of CMS's file (fixtures/providers/build.py's HEADINGS), a
row per NPI in NPI order: about a quarter organisations, names, mailing and
practice addresses, one to three taxonomies with license numbers, some 4% of
NPIs deactivated (their rows nearly empty, as CMS publishes them) and a few
reactivated. Every NPI has a valid check digit; all of it is made up. ``include``
adds given NPIs (the bench 837s' providers) as active, with their taxonomies.
Rows come out at about the real file's 1.1 KB each. Streamed: memory stays flat.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "providers_fixture_build", HERE.parent / "fixtures" / "providers" / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SNAPSHOT = "20261207"
MEMBER = f"npidata_pfile_20050523-{SNAPSHOT}.csv"
TAXONOMIES = ("207Q00000X", "207R00000X", "207RH0003X", "208D00000X", "363LF0000X",
              "367500000X", "1223G0001X", "261QM0801X", "282N00000X", "193200000X",
              "332B00000X", "3336C0003X", "225100000X", "152W00000X", "111N00000X")
SURNAMES = ("SMITHSON", "RIVERTON", "OKAFORD", "LINDQVIST", "MORALESA", "NAKAMORI", "BRANDT",
            "ABERNATHY", "CASTELLO", "DUBROVNIK", "EASTWOOD", "FAIRCHILD")
FIRST = ("AVERY", "JORDAN", "TAYLOR", "MORGAN", "CASEY", "RILEY", "QUINN", "DANA")
STREETS = ("100 FICTION ROAD", "2200 PRETEND AVE STE 300", "77 IMAGINARY BLVD",
           "4500 EXAMPLE PKWY FL 2")
CITIES = (("ANYTOWN", "PA", "170009999"), ("SAMPLEVILLE", "OH", "440019876"),
          ("NOWHERE", "TX", "750011234"))


def npi(stem: int) -> str:
    return build.npi(f"{stem:09d}")


def _template(entity: str, taxonomies: int, deactivated: bool, reactivated: bool) -> str:
    """The row as a %-format string: static cells written out, the varying ones %s."""
    cells = ["%(npi)s"] + [""] * (len(build.HEADINGS) - 1)
    at = build.COLUMN
    if deactivated and not reactivated:
        cells[at["NPI Deactivation Date"]] = "%(gone)s"
        return '"' + '","'.join(cells) + '"\r\n'
    cells[at["Entity Type Code"]] = entity
    if entity == "2":
        cells[at["Provider Organization Name (Legal Business Name)"]] = "%(org)s"
        cells[at["Employer Identification Number (EIN)"]] = "<UNAVAIL>"
        cells[at["Authorized Official Last Name"]] = "%(last)s"
        cells[at["Authorized Official First Name"]] = "%(first)s"
        cells[at["Authorized Official Title or Position"]] = "ADMINISTRATOR"
        cells[at["Authorized Official Telephone Number"]] = "5555550123"
        cells[at["Is Organization Subpart"]] = "N"
    else:
        cells[at["Provider Last Name (Legal Name)"]] = "%(last)s"
        cells[at["Provider First Name"]] = "%(first)s"
        cells[at["Provider Credential Text"]] = "M.D."
        cells[at["Provider Sex Code"]] = "U"
        cells[at["Is Sole Proprietor"]] = "N"
    for where in ("Mailing", "Practice Location"):
        cells[at[f"Provider First Line Business {where} Address"]] = "%(street)s"
        for part, key in (("City Name", "city"), ("State Name", "state"),
                          ("Postal Code", "postal")):
            cells[at[f"Provider Business {where} Address {part}"]] = f"%({key})s"
        cells[at[f"Provider Business {where} Address Country Code (If outside U.S.)"]] = "US"
        cells[at[f"Provider Business {where} Address Telephone Number"]] = "5555550100"
    cells[at["Provider Enumeration Date"]] = "%(enumerated)s"
    cells[at["Last Update Date"]] = "%(enumerated)s"
    if reactivated:
        cells[at["NPI Deactivation Date"]] = "%(gone)s"
        cells[at["NPI Reactivation Date"]] = "%(back)s"
    for n in range(1, taxonomies + 1):
        cells[at[f"Healthcare Provider Taxonomy Code_{n}"]] = f"%(taxonomy{n})s"
        cells[at[f"Provider License Number_{n}"]] = f"%(license{n})s"
        cells[at[f"Provider License Number State Code_{n}"]] = "PA"
        cells[at[f"Healthcare Provider Primary Taxonomy Switch_{n}"]] = "Y" if n == 1 else "N"
        cells[at[f"Healthcare Provider Taxonomy Group_{n}"]] = ""
    cells[at["Other Provider Identifier_1"]] = "%(other)s"
    cells[at["Other Provider Identifier Type Code_1"]] = "05"
    cells[at["Other Provider Identifier State_1"]] = "PA"
    return '"' + '","'.join(cells) + '"\r\n'


def _values(rng: random.Random, number: str, entity: str, taxonomies: tuple[str, ...],
            deactivated: bool, reactivated: bool) -> dict:
    year = rng.randint(2005, 2025)
    out = {"npi": number, "enumerated": f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/"
                                        f"{year}",
           "gone": f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{min(year + 3, 2025)}",
           "back": f"01/15/{min(year + 4, 2026)}", "last": rng.choice(SURNAMES),
           "first": rng.choice(FIRST), "street": rng.choice(STREETS),
           "org": f"{rng.choice(SURNAMES)} {rng.choice(('CLINIC', 'MEDICAL GROUP', 'HOSPITAL'))}"
                  f" {rng.randint(1, 9999)}", "other": f"{rng.randint(1000000, 9999999)}"}
    out["city"], out["state"], out["postal"] = rng.choice(CITIES)
    for n, code in enumerate(taxonomies, 1):
        out[f"taxonomy{n}"] = code
        out[f"license{n}"] = f"MD{rng.randint(100000, 999999)}"
    return out


def rows(count: int, include: Iterable[tuple[str, str, str]] = (), seed: int = 1):
    """The CSV text of ``count`` rows, a row at a time (after the heading line); ``include``:
    (NPI, entity type, taxonomy) rows put in among them."""
    rng = random.Random(f"gen_nppes:{seed}")
    templates: dict[tuple, str] = {}
    extra = sorted(include)
    # the included NPIs spread evenly through the file
    at = {(k + 1) * count // (len(extra) + 1): item for k, item in enumerate(extra)}
    stride = max(1, 800_000_000 // max(count, 1))
    stem = 100_000_000
    for n in range(count):
        if n in at:
            number, entity, taxonomy = at.pop(n)
            key = (entity, 1, False, False)
            template = templates.get(key) or templates.setdefault(key, _template(*key))
            yield template % _values(rng, number, entity, (taxonomy,), False, False)
        stem += rng.randint(1, stride * 2 - 1)
        entity = "2" if rng.random() < 0.25 else "1"
        roll = rng.random()
        deactivated, reactivated = roll < 0.04, roll < 0.004
        taxonomies = tuple(rng.sample(TAXONOMIES, rng.choice((1, 1, 1, 2, 2, 3))))
        key = (entity, len(taxonomies), deactivated, reactivated)
        template = templates.get(key) or templates.setdefault(key, _template(*key))
        yield template % _values(rng, npi(stem), entity, taxonomies, deactivated, reactivated)
    for number, entity, taxonomy in at.values():
        key = (entity, 1, False, False)
        template = templates.get(key) or templates.setdefault(key, _template(*key))
        yield template % _values(rng, number, entity, (taxonomy,), False, False)


def write(folder: Path, count: int, include: Iterable[tuple[str, str, str]] = (), *,
          zipped: bool = False, seed: int = 1) -> Path:
    """Write the file (or the monthly zip holding it) into ``folder``; its path. Written
    under a temporary name and renamed, so a half-written file is never taken for one."""
    folder.mkdir(parents=True, exist_ok=True)
    heading = '"' + '","'.join(build.HEADINGS) + '"\r\n'
    target = folder / ("NPPES_Data_Dissemination_December_2026.zip" if zipped else MEMBER)
    tmp = target.with_name(f".{target.name}.tmp")
    if zipped:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            with archive.open(MEMBER, "w", force_zip64=True) as raw:
                _write_rows(raw, heading, count, include, seed)
            archive.writestr(MEMBER.replace(".csv", "_fileheader.csv"), heading)
            archive.writestr("NPPES_Data_Dissemination_Readme.pdf", b"%PDF-1.4 synthetic\n")
    else:
        with open(tmp, "wb") as raw:
            _write_rows(raw, heading, count, include, seed)
    tmp.replace(target)
    return target


def _write_rows(raw, heading: str, count: int, include, seed: int) -> None:
    batch = [heading]
    for text in rows(count, include, seed):
        batch.append(text)
        if len(batch) >= 4096:
            raw.write("".join(batch).encode("ascii"))
            batch.clear()
    raw.write("".join(batch).encode("ascii"))


def bench_providers(seed: int = 0) -> list[tuple[str, str, str]]:
    """(NPI, entity type, taxonomy) of the billing providers and clinicians the bench 837s
    (bench/gen837.py, both kinds, ``seed``) name."""
    import io

    import gen837

    out = []
    for kind in ("P", "I"):
        gen = gen837._Gen(gen837._Sink(io.BytesIO(), "~"), kind, seed, (1, 4))
        out += [(p[1], "2", p[5]) for p in gen.providers]
        out += [(c[2], "1", c[3]) for c in gen.clinicians]
    return sorted(set(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rows", type=int, default=8_000_000)
    ap.add_argument("--zip", action="store_true", help="write the monthly zip, not the CSV")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    import sys

    sys.path.insert(0, str(HERE))
    started, cpu = time.perf_counter(), time.process_time()
    path = write(a.folder, a.rows, bench_providers(), zipped=a.zip, seed=a.seed)
    print(f"{path}: {a.rows} rows, {path.stat().st_size / 1e6:.0f} MB in "
          f"{time.perf_counter() - started:.0f} s ({time.process_time() - cpu:.0f} s CPU)")


if __name__ == "__main__":
    main()
