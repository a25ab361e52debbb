"""The Medicare Physician Fee Schedule RVU file: payment policy indicators per code.

CMS publishes it quarterly (PPRRVU in RVUyyA-D.zip); it carries CPT text, so the
user brings it and the scrubber ships none of it. ``load_rvu`` indexes the user's
files once in the cache folder and answers the rules of scrubber.rules.packs.pfs
(modifiers 26/TC, 50, 62, 66, 80-82/AS, status codes, global days) and the
facility-only warning of scrubber.rules.packs.place. See docs/data.md.
"""

from scrubber.pfs.files import RvuError, RvuRelease, looks_like, rvu_file
from scrubber.pfs.index import RvuEntry, RvuTable, load_rvu

__all__ = ["RvuEntry", "RvuError", "RvuRelease", "RvuTable", "load_rvu", "looks_like",
           "rvu_file"]
