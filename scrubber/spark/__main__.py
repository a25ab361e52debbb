"""``python -m scrubber.spark FILE... --out DIR``: ``scrub batch``, for spark-submit."""

from scrubber.cli import batch

if __name__ == "__main__":
    batch(prog_name="python -m scrubber.spark")
