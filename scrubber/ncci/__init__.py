"""NCCI edits from the user's own CMS files: procedure-to-procedure (PTP) pairs and MUEs.

CMS publishes the tables quarterly under an end-user agreement; the scrubber
ships none of them. ``load_tables`` reads the files the user downloaded (as
published: zipped or not, tab-delimited or CSV) into an index in the user's
cache folder, once per set of files, and answers the rules ``ncci-ptp`` and
``mue`` (scrubber.rules.packs.ncci) from it. See docs/ncci.md.
"""

from scrubber.cache import default_cache_dir
from scrubber.ncci.files import NcciError
from scrubber.ncci.index import MueLimit, NcciTables, PtpEdit, load_tables

__all__ = ["MueLimit", "NcciError", "NcciTables", "PtpEdit", "default_cache_dir", "load_tables"]
