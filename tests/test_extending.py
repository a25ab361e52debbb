"""docs/extending.md's recipes, followed in a temporary package installed beside the scrubber.

The package adds a rule pack, a report format and a ledger store through the
entry-point groups the recipes name, and a front end built as the recipe shows.
With it on the path, the suite's registry, fixture, format and ledger tests
must pass unchanged (they read the registries, not lists), and every command
must know what it added.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rule_fixtures import rules_builder

ROOT = Path(__file__).resolve().parent.parent

PACK = '''
"""An example pack installed from elsewhere: a line charge too large to be right."""

from decimal import Decimal

from scrubber.rules.registry import WARN, Hit, rule

ORDER = 90
FIXTURES = {fixtures!r}


@rule("ext-line-charge", severity=WARN, stc=("A7", "400"),
      summary="a service line charges 10,000 or more",
      source="example: a payer's charge review (docs/extending.md)")
def line_charge(ctx):
    """A line charge of 10,000 or more is checked before it goes out.

    Fails: SV1*HC:99213*12000*UN*1
    Passes: SV1*HC:99213*100*UN*1
    """
    for line in ctx.claim.lines:
        if line.charge is not None and line.charge >= Decimal(10000):
            yield Hit(f"line {{line.number}} charges {{line.charge_text}}",
                      "Check the charge against the fee schedule.", line=line)
'''

FORMATS = '''
from scrubber.emit.sinks import ReportFormat, Sink
from scrubber.rules import ScrubbedClaim


class StatusCounts(Sink):
    """One line per file: its claims by status."""

    def __init__(self, out, style):
        self.out = out
        self.counts = {}

    def begin_file(self, name):
        self.counts = {}

    def event(self, event):
        if isinstance(event, ScrubbedClaim):
            self.counts[event.status] = self.counts.get(event.status, 0) + 1

    def end_file(self, end):
        self.out.write(f"{end.name}: {dict(sorted(self.counts.items()))}\\n")


STATUS_COUNTS = ReportFormat("status-counts", "claims by status", "counts.txt", StatusCounts)
'''

STORES = '''
from pathlib import Path

from scrubber.ledger.sqlite import SqliteStore
from scrubber.ledger.store import StoreScheme

PREFIX = "extsqlite://"


def open_ext(target, *, key=None):
    return SqliteStore.open(Path(target[len(PREFIX):]), key=key)


SCHEME = StoreScheme("extsqlite", open_ext, lambda folder: f"{PREFIX}{folder}/ext.sqlite")
'''

FRONT_END = '''
"""A front end as docs/extending.md builds one: options from the builder, one core call."""

import io
import sys

from scrubber.core import Scrubber
from scrubber.emit.sinks import AckMemory, ack_sinks, report_sink
from scrubber.options import scrub_options

options = scrub_options("check", no_ledger=True)
out = io.StringIO()
with Scrubber(options) as scrubber:
    acks = AckMemory()
    outcome = scrubber.run([(open(sys.argv[1], "rb").read(), "upload.x12")],
                           [report_sink("status-counts", out), *ack_sinks(acks, scrubber.acks)])
print(out.getvalue().strip(), "277ca" if acks.data.get("277ca") else "no 277ca")
sys.exit(2 if outcome.unreadable else 1 if outcome.failed(options.fail_on) else 0)
'''


@pytest.fixture
def installed(tmp_path) -> tuple[Path, dict[str, str]]:
    """The example package on a path, with its distribution's entry points."""
    site = tmp_path / "site"
    fixtures = tmp_path / "ext-fixtures"
    (site / "extpack").mkdir(parents=True)
    fixtures.mkdir()
    (site / "extpack" / "__init__.py").write_text("")
    (site / "extpack" / "charges.py").write_text(PACK.format(fixtures=str(fixtures)))
    (site / "extpack" / "formats.py").write_text(FORMATS)
    (site / "extpack" / "stores.py").write_text(STORES)
    (site / "extpack" / "frontend.py").write_text(FRONT_END)
    info = site / "extpack-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extpack\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [scrubber.rule_packs]
        charges = extpack.charges

        [scrubber.report_formats]
        status-counts = extpack.formats:STATUS_COUNTS

        [scrubber.ledger_stores]
        extsqlite = extpack.stores:SCHEME
        """))
    build = rules_builder()
    for outcome, charge in (("fail", "12000"), ("pass", "100")):
        data = build.interchange("837p", [[build.claim(
            "EXT-1", [build.line("99213", charge=charge)])]])
        (fixtures / f"ext-line-charge.{outcome}.837p.x12").write_text(data)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return fixtures, env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=1200)


@pytest.mark.slow
def test_the_recipes_in_a_package_beside_the_scrubber_pass_the_suite(installed, tmp_path):
    fixtures, env = installed
    listed = run(env, "-m", "scrubber", "rules", "ext-")
    assert listed.returncode == 0 and "ext-line-charge" in listed.stdout, listed.stderr
    ledger = f"extsqlite://{tmp_path}/check.sqlite"
    checked = run(env, "-m", "scrubber", "check", str(fixtures / "ext-line-charge.fail.837p.x12"),
                  "--format", "status-counts", "--ledger", ledger, "--record")
    assert checked.returncode == 0, checked.stderr  # a warning does not fail the run
    assert checked.stdout.endswith("{'accepted': 1}\n")
    stats = run(env, "-m", "scrubber", "ledger", "stats", "--ledger", ledger)
    assert "claims: 1" in stats.stdout, stats.stdout + stats.stderr
    front = run(env, "-m", "extpack.frontend", str(fixtures / "ext-line-charge.fail.837p.x12"))
    assert front.returncode == 0 and front.stdout.split("\n")[0].endswith(
        "{'accepted': 1} 277ca"), front.stdout + front.stderr
    suite = run(env, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "tests/test_rules_registry.py", "tests/test_rules_fixtures.py",
                "tests/test_cli_rules.py", "tests/test_core.py", "tests/test_ledger.py",
                "tests/test_ledger_commands.py", "tests/test_ledger_concurrency.py",
                "-k", "not postgresql")
    assert suite.returncode == 0, suite.stdout[-3000:]
    ran = suite.stdout
    assert "ext-line-charge" in run(env, "-m", "pytest", "--collect-only", "-q",
                                    "tests/test_rules_fixtures.py").stdout
    assert " passed" in ran and " failed" not in ran
