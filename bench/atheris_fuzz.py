"""Coverage-guided fuzzing (atheris, libFuzzer) of the reader and the implementation-guide check.

    python bench/atheris_fuzz.py -max_total_time=300          # five minutes
    python bench/atheris_fuzz.py -runs=20000 bench/out/corpus  # a count, a corpus folder

Where bench/fuzz.py mutates blindly, libFuzzer keeps the inputs that reach new
branches of ``scrubber.x12``, ``scrubber.model`` and ``scrubber.ig`` and
mutates those. Any exception out of ``scrubber.model.read`` or
``scrubber.ig.check`` is a finding (libFuzzer writes the input as
``crash-*``), and so is a case slower than ``-timeout`` seconds (default 20)
or heavier than ``-rss_limit_mb`` (default 2048). The corpus starts from a few
files of bench/gen837.py (fictional data) when its folder is empty. Other
libFuzzer flags pass through.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

with atheris.instrument_imports(include=["scrubber"]):
    from scrubber.ig import check
    from scrubber.model import read

from gen837 import generate  # noqa: E402

CORPUS = HERE / "out" / "atheris-corpus"
DEFAULTS = ("-timeout=20", "-rss_limit_mb=2048", "-max_len=65536")


def one_input(data: bytes) -> None:
    """The property: reading and checking any bytes returns; it never raises."""
    for _ in read(data):
        pass
    check(data)


def seed(corpus: Path) -> None:
    """A few small valid 837P and 837I files, when the corpus is empty."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for n, (kind, claims) in enumerate((("P", 1), ("I", 1), ("P", 3), ("I", 2))):
        out = io.BytesIO()
        generate(out, claims=claims, kind=kind, seed=n, claims_per_transaction=2)
        (corpus / f"seed-{kind}{claims}.x12").write_bytes(out.getvalue())


def main(argv: list[str]) -> None:
    flags = [a for a in argv[1:] if a.startswith("-")]
    folders = [a for a in argv[1:] if not a.startswith("-")] or [str(CORPUS)]
    for folder in folders:
        seed(Path(folder))
    given = {f.split("=", 1)[0] for f in flags}
    flags += [d for d in DEFAULTS if d.split("=", 1)[0] not in given]
    atheris.Setup([argv[0], *flags, *folders], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
