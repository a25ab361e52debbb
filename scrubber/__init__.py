"""scrubber: a pre-submission scrubber for X12 837 health-care claims.

Data flows one way: bytes -> segments (``scrubber.x12``) -> claims
(``scrubber.model``) -> findings -> acknowledgements and reports.
"""

__version__ = "0.1.0"
