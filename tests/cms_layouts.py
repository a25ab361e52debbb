"""Test helper: small synthetic files in CMS's published layouts, packed as CMS ships them.

Nothing here is copied from CMS: the codes are real code numbers, the releases,
dates and descriptions are made up for the tests. The layouts are CMS's:

- ICD-10-CM "code descriptions in tabular order": fixed width, 5-digit order
  number, the code padded to 7, 0 (header) or 1 (valid on a claim), a short and
  a long description; the fiscal year's zip holds ``icd10cm_order_YYYY.txt``
  beside ``icd10cm_order_addenda_YYYY.txt`` (the year's changes, one a line).
- HCPCS Level II quarterly file: 320-character records, code in 1-5, record id
  in 11, added / action effective / termination dates in 269-292; the quarter's
  zip holds the ANWEB text file beside its Excel copy, the record layout, a
  readme and the procedure notes.
- NCCI PTP and MUE: tab-delimited text or CSV under a notice and headings.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

COMMON = [("E11", 0, "Type 2 diabetes mellitus"),
          ("E119", 1, "Type 2 diabetes mellitus without complications"),
          ("I10", 1, "Essential (primary) hypertension"),
          ("R05", 1, "Cough"),
          ("Z452", 1, "Encounter for adjustment and management of vascular access device")]


def order_text(rows) -> str:
    """CMS's tabular order layout, CR LF line ends."""
    return "".join(f"{n:05d} {code:<7} {flag} {text[:60]:<60} {text}\r\n"
                   for n, (code, flag, text) in enumerate(sorted(rows), 1))


def addenda_text(changes) -> str:
    """The addenda beside the order file: what the release added, as CMS lists it."""
    return "".join(f"Add:      {code:<7} {text}\r\n" for code, _, text in changes)


def order_file(path: Path, rows) -> Path:
    path.write_text(order_text(rows), encoding="ascii")
    return path


def order_zip(path: Path, member: str, rows, added=(), *, addenda: str | None = None) -> Path:
    """A release's zip: the order file ``member`` and, beside it, the addenda and a PDF."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, order_text(rows))
        zf.writestr(addenda or member.replace("order", "order_addenda"), addenda_text(added))
        zf.writestr("icd10cm-Guidelines-synthetic.pdf", b"%PDF-1.4 synthetic\n")
    return path


# (code, fiscal-year rows): R05 became a category with R05.1 ... in FY2027, as in the real
# FY2023 change; Z20.822 came with the January 1, 2021 update
FY2025 = COMMON
FY2027 = [r for r in COMMON if r[0] != "R05"] + [
    ("R05", 0, "Cough"), ("R051", 1, "Acute cough"), ("R059", 1, "Cough, unspecified")]
FY2021 = COMMON + [("Z20", 0, "Contact with and (suspected) exposure to communicable diseases"),
                   ("Z2082", 0, "Contact with and (suspected) exposure to other viral "
                                "communicable diseases")]
JANUARY_2021_ADDED = [("Z20822", 1, "Contact with and (suspected) exposure to COVID-19")]
JANUARY_2021 = FY2021 + JANUARY_2021_ADDED
APRIL_2025_ADDED = [("U070", 1, "Synthetic code added in the April 2025 update")]
APRIL_2025 = FY2025 + APRIL_2025_ADDED


def hcpcs_record(code, text, added="", effective="", terminated="", record="3", action="N"):
    head = f"{code:<5}{'00100':<5}{record}{text[:80]:<80}{text[:28]:<28}"
    return (head.ljust(268) + f"{added:<8}{effective:<8}{terminated:<8}{action}").ljust(320)


def hcpcs_text(records) -> str:
    return "".join(r + "\r\n" for r in records)


LAYOUT = ("HCPCS RECORD LAYOUT (synthetic)\r\nFIELD NAME            POSITION  LENGTH\r\n"
          "HCPCS CODE            1-5       5\r\nRECORD IDENTIFICATION 11        1\r\n")


def hcpcs_zip(path: Path, year: int, month: str, records) -> Path:
    """A quarter's zip as CMS ships it: the ANWEB text file, its Excel copy, the record
    layout, a readme and the procedure notes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"HCPC{year}_{month}_ANWEB_v2.txt", hcpcs_text(records))
        zf.writestr(f"HCPC{year}_{month}_ANWEB_v2.xlsx", b"PK\x03\x04 synthetic workbook")
        zf.writestr(f"HCPC{year}_recordlayout.txt", LAYOUT)
        zf.writestr("README.txt", "Synthetic HCPCS quarterly update for tests.\r\n")
        zf.writestr(f"proc_notes_{month}{year}.txt", "Synthetic procedure notes.\r\n")
    return path


# C9800 is in force in the October 2024 file; the January 2025 file terminates it on
# 2024-12-31 (the real case is G0202: the 2017 files list it in force, 2018's terminated)
HCPCS_OCT_2024 = [hcpcs_record("C9800", "Synthetic code in force in October 2024", "20220101",
                               "20220101"),
                  hcpcs_record("J1100", "Injection, dexamethasone sodium phosphate, 1 mg",
                               "19860101", "20080101")]
HCPCS_JAN_2025 = [hcpcs_record("C9800", "Synthetic code terminated at the end of 2024",
                               "20220101", "20250101", "20241231", action="D"),
                  hcpcs_record("J1100", "Injection, dexamethasone sodium phosphate, 1 mg",
                               "19860101", "20080101")]

NOTICE = "SYNTHETIC TEST TABLE - NOT CMS DATA. Layout of the CMS NCCI files only."
PTP_HEADINGS = ("Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\t"
                "Deletion Date *=no data\tModifier 0=not allowed 1=allowed 9=not applicable\t"
                "PTP Edit Rationale")


def ptp_zip(path: Path, member: str, rows) -> Path:
    """A PTP quarter's zip: the tab-delimited text under the notice and headings."""
    text = "".join(line + "\r\n" for line in (NOTICE, PTP_HEADINGS,
                                               *("\t".join(row) for row in rows)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, text)
        zf.writestr("NCCI-PTP-end-user-agreement.pdf", b"%PDF-1.4 synthetic\n")
    return path


def mue_csv(path: Path, rows, setting: str = "Practitioner") -> Path:
    lines = [NOTICE, f"HCPCS/CPT Code,{setting} Services MUE Values,MUE Adjudication "
                     "Indicator,MUE Rationale", *(",".join(row) for row in rows)]
    path.write_text("".join(line + "\r\n" for line in lines), encoding="ascii")
    return path
