"""Implementation-guide conformance (SNIP 1-2): what a payer's 999 would say, first.

``check(source)`` reads an 837 (a path, bytes or a binary stream) in one
streaming pass and returns an ``IgReport``: per transaction set, keyed by
(ISA13, GS06, ST02), accepted or rejected with the 999 errors (IK3/IK4 codes,
segment position, loop, element, plain words). The guides are pyx12's XML maps
of 005010X222A1 and 005010X223A2, compiled once into ``GuideSet`` tables and
cached per user; ``scrubber.emit.ack999.write_999`` turns a report into 999s.
"""

from scrubber.ig.checker import Checker, check
from scrubber.ig.compile import GuideError, load_guides
from scrubber.ig.overrides import OverrideError, load_companions
from scrubber.ig.report import (
    EnvelopeError,
    GroupVerdict,
    IgError,
    IgReport,
    InterchangeResult,
    TransactionVerdict,
)

__all__ = ["Checker", "EnvelopeError", "GroupVerdict", "GuideError", "IgError", "IgReport",
           "InterchangeResult", "OverrideError", "TransactionVerdict", "check", "load_companions",
           "load_guides"]
