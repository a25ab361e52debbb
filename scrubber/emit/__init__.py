"""Emitters: everything the scrubber writes (reports and acknowledgements)."""
