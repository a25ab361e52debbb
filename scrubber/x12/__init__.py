"""X12 syntax: delimiters read from the ISA header, and a streaming tokenizer."""

from scrubber.x12.delimiters import Delimiters
from scrubber.x12.tokenizer import Segment, SyntaxProblem, Tokenizer

__all__ = ["Delimiters", "Segment", "SyntaxProblem", "Tokenizer"]
