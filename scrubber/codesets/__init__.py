"""Code sets: which diagnosis and procedure codes exist and are billable on a date of service.

ICD-10-CM comes out of the box from ``simple-icd-10-cm`` (its bundled CMS
release); the user adds other fiscal years' CMS files, the HCPCS quarterly
file and a licensed CPT list. ``load_codesets`` reads them once into an index
in the user's cache folder and answers the rules of scrubber.rules.packs.codesets.
See docs/codesets.md.
"""

from scrubber.codesets.files import CodeSetError, Release, fiscal_year
from scrubber.codesets.index import (
    NOT_BILLABLE,
    NOT_IN_FORCE,
    OK,
    UNKNOWN,
    CodeSets,
    DxVerdict,
    HcpcsVerdict,
    bundled,
    dotted,
    load_codesets,
)

__all__ = ["NOT_BILLABLE", "NOT_IN_FORCE", "OK", "UNKNOWN", "CodeSetError", "CodeSets",
           "DxVerdict", "HcpcsVerdict", "Release", "bundled", "dotted", "fiscal_year",
           "load_codesets"]
