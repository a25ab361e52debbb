"""Scrub a clearinghouse's day of files on Apache Spark, with the verdicts of ``scrub check``.

One more thin front end over the scrub core (``pip install pyspark``, or the
checkout's extra ``.[spark]``): ``scrub_batch(spark, paths, options=...)`` returns
the claims, service lines, findings and problems as DataFrames and writes each
input's 277CA/999/TA1;
``scrub batch`` (scrubber.cli) and ``python -m scrubber.spark`` (for
spark-submit) run it from the command line. The design is in docs/scale.md.
Importing this package does not import pyspark; running the job does.
"""

from scrubber.spark.job import BatchResult, scrub_batch
from scrubber.spark.pieces import PIECE_BYTES, Piece, plan
from scrubber.spark.session import session
from scrubber.spark.stages import FILE, RUN

__all__ = ["BatchResult", "scrub_batch", "PIECE_BYTES", "Piece", "plan", "session", "FILE",
           "RUN"]
