"""Diagnosis coding conventions: the ICD-10-CM Tabular List's Excludes1 and Code-first notes,
and the Medicare Code Editor's lists, for scrubber.rules.packs.diagnoses. See
docs/diagnoses.md."""

from scrubber.diagnoses.tabular import (
    Conventions,
    Ref,
    Tabular,
    TabularError,
    Tabulars,
    load_tabulars,
    refs_in,
)

__all__ = ["Conventions", "Ref", "Tabular", "TabularError", "Tabulars", "load_tabulars",
           "refs_in"]
