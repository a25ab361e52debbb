"""Provider identity: CMS's NPPES file, the PECOS Order and Referring file, NUCC taxonomy.

The user brings the files as published (``scrub data add`` or ``--nppes``,
``--pecos-order-refer``, ``--nucc-taxonomy``); the NPPES and PECOS files are
indexed once in the cache folder (only what the rules read), the NUCC list is
small and read at once. They answer scrubber.rules.packs.providers. See
docs/providers.md.
"""

from scrubber.providers.files import ProviderFileError
from scrubber.providers.index import (
    NpiRecord,
    NppesIndex,
    OrderReferring,
    TaxonomyRelease,
    TaxonomySet,
    load_nppes,
    load_nucc,
    load_pecos,
)

__all__ = ["NpiRecord", "NppesIndex", "OrderReferring", "ProviderFileError", "TaxonomyRelease",
           "TaxonomySet", "load_nppes", "load_nucc", "load_pecos"]
