"""The HTML report: one self-contained page for a whole batch, for a billing office to act on.

At the top, what the batch comes to: a total and a verdict, the files not
scrubbed and why, a bar chart of the rejection reasons with the charges they
hold back (inline SVG), breakdowns by rule, payer, billing provider and file.
Then one table of every claim of the run, rejected first, then accepted with
warnings, then accepted, that filters by status, rule, payer, billing provider,
file and claim id and sorts by any column; a claim's row opens on its
findings, rejections first, with the segment in context shown once per
segment, what to do, and links to every other claim a finding names (in any
file of the report; one entry each for claims from earlier submissions).
Below, one section per file: its verdict and envelope problems in line order.

The claim table scales: every claim is one compact JSON row (``ROW``); the rows,
and apart from them each claim's findings, travel gzipped and base64-encoded in
two data blocks that the page's script (scrubber.emit.html_assets) unpacks,
drawing one page of rows at a time, so 30,000 claims make a page of 1 to 3 MB
whose first rows show well within a second. The page loads nothing and runs
nothing but its own script (a Content-Security-Policy names it by hash).
``page_data`` reads the rows back, for tests and tools.

The rest is built with lxml, so everything is escaped. Rows and sections are
serialized as they come and kept in owner-only temporary files until the
totals at the top are known, so memory does not grow with the claims.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import tempfile
import zlib
from decimal import Decimal
from typing import IO, Any, TextIO

from lxml import etree
from lxml.html import builder as _builder

from scrubber.emit.batch import (
    UMBRELLA,
    Batch,
    Bucket,
    by_cause,
    money,
    payer_of,
    plural,
    provider_of,
    ranked,
    verdict,
)
from scrubber.emit.html_assets import CSS, POLICY, SCRIPT
from scrubber.emit.phi import fill_for, in_person_loops, mask_elements, quoted
from scrubber.emit.sinks import FileEnd, RunDetails, Sink
from scrubber.emit.summary import (
    Tally,
    _patient,
    _problem_words,
    in_line_order,
    place,
    rejections_first,
    split_marked,
)
from scrubber.rules.context import submission_id
from scrubber.rules.findings import Finding, Notice, ScrubbedClaim, Severity

CONTEXT = 3  # segments shown either side of a finding's segment
_ROWS, _DETAILS, _SECTIONS = "@@rows@@", "@@details@@", "scrubber-file-sections"
CHART_WIDTH = 320  # pixels of the longest bar
STATUSES = ("rejected", "warned", "accepted")  # the table's order
PAGE_SIZES = (50, 100, 250, 1000)  # rows a page of the table shows (100 at first)

# One claim of the table, as a JSON array (the script names the same positions). The
# page carries the rows in one data block ("report-data") and, in a second
# ("report-details"), each row's detail as one line of JSON, so that the first page of
# the table is drawn before the details are even unpacked; ``page_data`` joins them.
ROW = ("file",  # index into "files"
       "id",  # CLM01
       "status",  # one of STATUSES
       "charge",  # CLM02 as written
       "patient",  # masked unless --show-phi
       "payer", "provider",  # indexes into "payers" and "providers"
       "rules",  # indexes into "rules", of the claim's findings, rejections first
       "submission",  # index into "submissions" (interchange sender:control number)
       "detail",  # null, or per segment found at: [findings, context, fixes], where a
       # finding is [severity, rule, 277CA status, service line, message, related claims]
       # and context is [[[where, segment], ...], index of its segment, before, marked, after],
       # where is the line number, or "#" and the segment's number in a file of one line
       # (in "report-data": 1 when there is a detail, else 0)
       "held",  # 1 when the 999 rejected its transaction set, else 0
       "related")  # the other claims its findings name: "CLM01 (submission ...)"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def visible(text: str) -> str:
    """``text`` with control characters shown as escapes ("\\x07"): XML cannot hold them,
    and a biller should see that the file carries one rather than lose the page. So are
    the lone surrogates a file name that is not UTF-8 decodes to ("\\udcff")."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {key: visible(str(v)) for key, v in value.items()}
    return value


class _SafeBuilder:
    """lxml's HTML builder with every string and attribute made XML-safe on the way in."""

    def __getattr__(self, tag: str) -> Any:
        make = getattr(_builder, tag)
        if tag == "CLASS":
            return make

        def element(*children: Any, **attributes: Any) -> Any:
            return make(*[_safe(c) for c in children],
                        **{key: visible(str(v)) for key, v in attributes.items()})

        return element


E = _SafeBuilder()


def _html(element: Any) -> str:
    return etree.tostring(element, encoding="unicode", method="html")


def _payer_label(payer: tuple[str, str]) -> str:
    name, ident = payer
    return f"{name} ({ident})" if ident else name


def _provider_label(provider: tuple[str, str]) -> str:
    name, npi = provider
    return f"{name} ({npi})" if npi else name


def _status(claim: ScrubbedClaim) -> str:
    """The claim's place in the table: rejected, warned (accepted with warnings), accepted."""
    if claim.rejected:
        return "rejected"
    return "warned" if any(f.severity is Severity.WARN for f in claim.findings) else "accepted"


def _spool() -> IO[str]:
    return tempfile.TemporaryFile("w+", encoding="utf-8")  # owner-only, already unlinked


def _copy(spool: IO[str], out: IO[str]) -> None:
    spool.seek(0)
    shutil.copyfileobj(spool, out)
    spool.close()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _Table:
    """Labels (rules, payers ...) numbered in the order met: rows carry the numbers."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def __call__(self, label: str) -> int:
        return self.numbers.setdefault(label, len(self.numbers))

    def labels(self) -> list[str]:
        return list(self.numbers)


def _table(head: list[str], rows: list[list[Any]], numeric: frozenset[int] = frozenset(),
           **attributes: str) -> Any:
    def cell(tag: Any, index: int, value: Any) -> Any:
        node = tag(value if isinstance(value, etree._Element) else str(value))
        if index in numeric:
            node.set("class", "num")
        return node

    return E.TABLE(E.THEAD(E.TR(*[cell(E.TH, i, h) for i, h in enumerate(head)])),
                   E.TBODY(*[E.TR(*[cell(E.TD, i, v) for i, v in enumerate(row)])
                             for row in rows]), **attributes)


def chart(by_rule: dict[str, Bucket]) -> Any:
    """Two bars per root cause of rejections: how many claims, and the charges they hold back.

    A root cause is a rule, or the error that made a payer reject a claim's set or
    interchange (the claims it holds count under it, not under ``ig-999``, which
    is only their total: ``batch.by_cause``). Each kind of bar is scaled to its own
    largest value; the numbers are written beside them (thousands separated) and
    every bar carries them as data-claims / data-at-risk (machine-readable).
    """
    bars = [(rule, bucket) for rule, bucket in by_cause(by_rule)
            if bucket.rejected and rule != UMBRELLA]
    if not bars:
        return E.P("No claim was rejected: nothing to chart.", E.CLASS("chart-empty"))
    most = max(bucket.rejected for _, bucket in bars)
    dearest = max(bucket.at_risk for _, bucket in bars) or 1
    label = max(len(rule) for rule, _ in bars) * 7 + 10
    row, legend = 32, 22
    svg = etree.Element("svg", xmlns="http://www.w3.org/2000/svg", role="img",
                        width=str(label + CHART_WIDTH + 200),
                        height=str(legend + row * len(bars) + 4), id="chart")
    etree.SubElement(svg, "title").text = "Rejected claims and charges at risk, by rule"
    for x, colour, words in ((label, "#c62828", "claims rejected"),
                             (label + 150, "#5c7cfa", "charges at risk")):
        etree.SubElement(svg, "rect", x=str(x), y="4", width="12", height="10", fill=colour)
        etree.SubElement(svg, "text", x=str(x + 16), y="14").text = words
    for n, (rule, bucket) in enumerate(bars):
        y = legend + n * row
        numbers = {"data-rule": visible(rule), "data-claims": str(bucket.rejected),
                   "data-at-risk": f"{bucket.at_risk:.2f}"}
        etree.SubElement(svg, "text", x="0", y=str(y + 16)).text = visible(rule)
        longest = 0
        for kind, top, height, share, colour, words in (
                ("bar", y + 2, 12, bucket.rejected / most, "#c62828",
                 plural(bucket.rejected, "claim")),
                ("amount-bar", y + 16, 9, float(bucket.at_risk / dearest), "#5c7cfa",
                 f"{money(bucket.at_risk)} at risk")):
            width = max(2, round(CHART_WIDTH * share))
            longest = max(longest, width)
            bar = etree.SubElement(svg, "rect", {
                "class": kind, "x": str(label), "y": str(top), "width": str(width),
                "height": str(height), "fill": colour, **numbers})
            etree.SubElement(bar, "title").text = visible(f"{rule}: {words}")
        etree.SubElement(svg, "text", x=str(label + longest + 6), y=str(y + 16)).text = (
            f"{plural(bucket.rejected, 'claim')}, {money(bucket.at_risk)} at risk")
    held = by_rule.get(UMBRELLA)
    if held is None or not held.rejected:
        return svg
    return E.DIV(svg, E.P(
        f"In all, {plural(held.rejected, 'claim')} ({money(held.at_risk)}) held because a "
        f"payer rejects their transaction set or interchange ({UMBRELLA}); each counts above "
        "under the errors that caused it.", E.CLASS("chart-held"), id="chart-held"))


class HtmlReport(Sink):
    """One self-contained HTML page over every file of a run (begin_file ... close)."""

    def __init__(self, out: TextIO, *, show_phi: bool = False, color: bool = False):
        self.out = out
        self.show_phi = show_phi
        self.batch = Batch()
        self.rows = {status: _spool() for status in STATUSES}  # the claim table, by status
        self.details = {status: _spool() for status in STATUSES}  # a line per row
        self.sections = _spool()  # one section per file
        self.paths: list[str] = []
        self.tables = {name: _Table() for name in ("payers", "providers", "rules",
                                                   "submissions")}
        self.files = 0
        self.pages = 0
        self.run: RunDetails | None = None  # what the run was made with, shown at the top

    def run_details(self, run: RunDetails) -> None:
        self.run = run

    # -- one file ----------------------------------------------------------------------
    def begin_file(self, path: str) -> None:
        self.path = path
        self.paths.append(visible(path))
        self.files += 1
        self.tally = Tally()
        self.batch.begin_file(path)

    def event(self, event: Any) -> None:
        self.tally.add(event)
        self.batch.event(event)
        if event.__class__ is ScrubbedClaim:
            self._claim(event)

    def _claim(self, event: ScrubbedClaim) -> None:
        """The claim's row of the table (``ROW``), spooled with the others of its status."""
        record = event.record
        claim = record.claim
        status = _status(event)
        findings = rejections_first(event.findings)
        rules = self.tables["rules"]
        # a held claim's causes first: the rule filter finds it under the error to fix
        ids = dict.fromkeys(visible(rule) for rule in [*event.causes,
                                                        *(f.rule for f in findings)])
        row = [self.files - 1, visible(claim.id), status, visible(claim.charge_text),
               visible(_patient(event, self.show_phi)),
               self.tables["payers"](visible(_payer_label(payer_of(record)))),
               self.tables["providers"](visible(_provider_label(provider_of(record)))),
               [rules(rule) for rule in ids],
               self.tables["submissions"](visible(submission_id(record))),
               int(bool(findings)), int(event.held),
               list(dict.fromkeys(visible(r) for f in findings for r in f.related))]
        self.rows[status].write(_json(row) + "\n")
        detail = _detail(event, findings, self.show_phi) if findings else None
        self.details[status].write(_json(detail) + "\n")

    def end_file(self, end: FileEnd) -> None:
        t = self.tally
        summary = end.summary
        self.batch.end_file(end)
        said = verdict(summary)
        head = [E.H2(self.path, id=f"file-{self.files}"),
                E.P("Verdict: ", E.SPAN(said, E.CLASS(_verdict_class(said)))),
                _counts(summary)]
        if summary["claims"]:
            head.append(E.P(E.A(f"Show its {plural(summary['claims'], 'claim')} in the table",
                                href="#claims", **{"class": "to-claims",
                                                   "data-file": self.path})))
        if t.problems:
            head.append(E.H3("Envelope and implementation-guide (999) problems"))
            head.append(E.UL(*[E.LI(f"{place(p.location) if p.location else 'file'}: "
                                    f"[{p.code}] {_problem_words(p)}")
                               for p in in_line_order(t.problems)]))
        self.sections.write(_html(E.SECTION(*head, E.CLASS("file"))) + "\n")

    def notice(self, notice: Notice) -> None:
        self.batch.notice(notice)

    # -- the page ----------------------------------------------------------------------
    def close(self) -> None:
        if not self.files:
            self.out.flush()
            return
        total = self.batch.total()
        title = (f"Scrub report: {self.path}" if self.files == 1
                 else f"Scrub report: {plural(self.files, 'file')}")
        body: list[Any] = [E.H1(title),
                           E.P("Verdict: ", E.SPAN(total["verdict"],
                                                   E.CLASS(_verdict_class(total["verdict"])))),
                           _counts(total)]
        if self.run is not None:
            body.append(E.P(E.CLASS("run"), "Run: " + visible(self.run.words()),
                            id="run-details"))
        if self.batch.not_scrubbed:
            body += [E.H2("Not scrubbed"),
                     E.UL(*[E.LI(reason if name in reason else f"{name}: {reason}")
                            for name, reason in self.batch.not_scrubbed], id="not-scrubbed")]
        if self.batch.notices:
            body += [E.H2("Notices"),
                     E.UL(*[E.LI(n.message + (f" ({plural(n.claims, 'claim')})" if n.claims
                                              else "")) for n in self.batch.notices],
                          id="notices")]
        body += [E.H2("Rejection reasons"), chart(self.batch.by_rule), *self._breakdowns()]
        body += self._claim_table()
        body += [E.DIV(E.H2("Claims from earlier submissions"), id="earlier", hidden="hidden"),
                 E.DIV(id=_SECTIONS),
                 E.SCRIPT(_ROWS, id="report-data", type="application/octet-stream",
                          **{"data-encoding": "gzip+base64"}),
                 E.SCRIPT(_DETAILS, id="report-details", type="application/octet-stream",
                          **{"data-encoding": "gzip+base64"}),
                 E.SCRIPT(SCRIPT)]
        page = E.HTML(E.HEAD(E.META(charset="utf-8"),
                             E.META(**{"http-equiv": "Content-Security-Policy",
                                       "content": POLICY}),
                             E.TITLE(title), E.STYLE(CSS)),
                      E.BODY(*body))
        text = _html(page)
        before, rest = text.split(f'<div id="{_SECTIONS}"></div>', 1)
        middle, rest = rest.split(_ROWS, 1)
        between, after = rest.split(_DETAILS, 1)
        self.out.write("<!DOCTYPE html>\n")
        self.out.write(before)
        _copy(self.sections, self.out)
        self.out.write(middle)
        head = _json({name: table.labels() for name, table in self.tables.items()}
                     | {"files": self.paths})
        self._packed(head[:-1] + ',"claims":[', self.rows, ",", "]}")
        self.out.write(between)
        self._packed("", self.details, "", "")
        self.out.write(after + "\n")
        self.out.flush()
        self.pages += 1

    def _packed(self, start: str, spools: dict[str, IO[str]], join: str, end: str) -> None:
        """``start``, the lines of the spools (rejected first) joined by ``join``, ``end``:
        gzipped and in base64, written as they are packed (``page_data`` unpacks them)."""
        pack = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip member
        held = bytearray()

        def put(text: str) -> None:
            held.extend(pack.compress(text.encode("utf-8")))
            whole = len(held) - len(held) % 3  # base64 of whole 3-byte groups only
            if whole >= 1 << 16:
                self.out.write(base64.b64encode(held[:whole]).decode("ascii") + "\n")
                del held[:whole]

        put(start)
        first = True
        for status in STATUSES:
            spool = spools[status]
            spool.seek(0)
            for line in spool:
                put(line if not join else ("" if first else join) + line.rstrip("\n"))
                first = False
            spool.close()
        put(end)
        held.extend(pack.flush())
        self.out.write(base64.b64encode(bytes(held)).decode("ascii"))

    def _breakdowns(self) -> list[Any]:
        head = ["claims", "rejected", "with warnings", "at risk"]
        numeric = frozenset({1, 2, 3, 4})

        def row(label: Any, bucket: Bucket) -> list[Any]:
            return [label, bucket.claims, bucket.rejected, bucket.warned, money(bucket.at_risk)]

        files = [(f"{name}", self.batch.file_bucket(summary), said)
                 for name, summary, said in self.batch.files]
        return [
            E.H2("By rule"),
            _table(["rule", "claims", "rejected", "warned", "at risk", "findings"],
                   [[f"{rule} (in all: the total of the causes above)" if rule == UMBRELLA
                     else rule, b.claims, b.rejected, b.warned, money(b.at_risk), b.findings]
                    for rule, b in by_cause(self.batch.by_rule)],
                   frozenset({1, 2, 3, 4, 5}), id="by-rule"),
            E.H2("By payer"),
            _table(["payer", *head], [row(_payer_label(key), b)
                                      for key, b in ranked(self.batch.by_payer)],
                   numeric, id="by-payer"),
            E.H2("By billing provider"),
            _table(["billing provider", *head],
                   [row(f"{name} ({npi})" if npi else name, b)
                    for (name, npi), b in ranked(self.batch.by_provider)],
                   numeric, id="by-provider"),
            E.H2("By file"),
            _table(["file", *head, "verdict"],
                   [[E.A(name, href=f"#file-{n}"), *row("", b)[1:], said]
                    for n, (name, b, said) in enumerate(files, 1)],
                   numeric, id="by-file"),
        ]

    def _claim_table(self) -> list[Any]:
        """The claims section: filters, pager and the table the script fills."""
        def select(name: str, label: str, values: list[tuple[str, str]]) -> Any:
            return E.LABEL(f"{label} ", E.SELECT(E.OPTION("all", value=""),
                                                 *[E.OPTION(words, value=value)
                                                   for value, words in values],
                                                 name=name))

        def same(values: list[str]) -> list[tuple[str, str]]:
            return [(v, v) for v in values]

        rules = [rule for rule, b in ranked(self.batch.by_rule) if b.claims]
        payers = [_payer_label(key) for key, _ in ranked(self.batch.by_payer)]
        providers = [_provider_label(key) for key, _ in ranked(self.batch.by_provider)]
        statuses = [("rejected", "rejected"), ("warned", "accepted with warnings"),
                    ("accepted", "accepted")]
        columns = ["claim", "file", "status", "charge", "patient", "payer", "provider", "rules"]
        words = {"provider": "billing provider"}
        header = E.TR(*[E.TH(words.get(c, c),
                             E.CLASS("sortable num" if c == "charge" else "sortable"),
                             **{"data-column": c}) for c in columns])
        pages = E.SELECT(*[E.OPTION(str(n), value=str(n)) for n in PAGE_SIZES], name="size")
        pages[PAGE_SIZES.index(100)].set("selected", "selected")
        return [
            E.H2("Claims", id="claims-heading"),
            E.P("Every claim of the run: rejected first, then accepted with warnings, then "
                "accepted. Open a claim for its findings and what to do."),
            E.NOSCRIPT(E.P("This page draws its claim table with JavaScript, which is off: "
                           "the same claims are in the text, JSON and CSV reports "
                           "(scrub check --format text|json|csv).")),
            E.DIV(E.CLASS("filters"), select("status", "Status", statuses),
                  select("rule", "Rule", same(rules)), select("payer", "Payer", same(payers)),
                  select("provider", "Billing provider", same(providers)),
                  select("file", "File", same(self.paths)),
                  E.LABEL("Claim ", E.INPUT(type="search", name="q", placeholder="claim id")),
                  E.SPAN("shown: "), E.SPAN("0", id="shown")),
            E.DIV(E.CLASS("pager"), E.BUTTON("\u00ab first", type="button", name="first"),
                  E.BUTTON("\u2039 previous", type="button", name="previous"),
                  E.BUTTON("next \u203a", type="button", name="next"),
                  E.BUTTON("last \u00bb", type="button", name="last"),
                  E.SPAN("rows ", E.SPAN("none", id="rows-shown"), "; "),
                  E.LABEL("per page ", pages),
                  E.SPAN(E.CLASS("expand"),
                         E.BUTTON("open all on this page", type="button", name="open"),
                         E.BUTTON("close all", type="button", name="close"))),
            E.TABLE(E.THEAD(header), E.TBODY(), id="claims"),
        ]


def page_data(page: str) -> dict[str, Any]:
    """The claim data a report page carries, decoded: the tables and every row (``ROW``)."""
    blocks = dict(re.findall(r'<script id="(report-data|report-details)"[^>]*>([^<]*)</script>',
                             page))
    if len(blocks) != 2:
        raise ValueError("not a scrub report page: no claim data")
    data = json.loads(zlib.decompress(base64.b64decode(blocks["report-data"]), 31))
    details = zlib.decompress(base64.b64decode(blocks["report-details"]), 31).splitlines()
    for row, detail in zip(data["claims"], details, strict=True):
        row[9] = json.loads(detail)
    return data


def _detail(event: ScrubbedClaim, findings: list[Finding], show_phi: bool) -> list[Any]:
    """A claim's findings by the segment they point at: [findings, context, fixes] each."""
    separator = event.record.interchange.delimiters.element
    groups = []
    for group in _by_segment(findings):
        said = [[f.severity.value, visible(f.rule), ":".join(f.status) if f.status else "",
                 f.line_number, visible(f.message), [visible(r) for r in f.related]]
                for f in group]
        fixes = [visible(fix) for fix in dict.fromkeys(f.fix for f in group if f.fix)]
        groups.append([said, _context(event, group[0], separator, show_phi), fixes])
    return groups


def _by_segment(findings: list[Finding]) -> list[list[Finding]]:
    """Findings grouped by the segment they point at, in the order given."""
    groups: dict[Any, list[Finding]] = {}
    for finding in findings:
        key = finding.location.segment if finding.location else ("text", finding.segment_text)
        groups.setdefault(key, []).append(finding)
    return list(groups.values())


def _context(event: ScrubbedClaim, finding: Finding, separator: str, show_phi: bool
             ) -> list[Any]:
    """The finding's segment with CONTEXT segments either side, its element split out:
    [[[where, segment], ...], index of the finding's segment, before, marked, after].
    Where is each segment's line, or "#" and its number when they share one line (a
    file without line breaks: every segment would say "line 1"). A person's identity is
    masked in each segment unless ``show_phi`` (scrubber.emit.phi)."""
    segments = event.record.claim.segments
    where = finding.location
    at = next((i for i, seg in enumerate(segments)
               if where is not None and seg.ordinal == where.segment), None)
    if at is None or where is None:
        alone = visible(finding.segment_text if show_phi else quoted(event, finding))
        return [[[None, alone]], 0, alone, "", ""]
    shown = segments[max(0, at - CONTEXT): at + CONTEXT + 1]
    here = at - max(0, at - CONTEXT)
    one_line = len(shown) > 1 and len({seg.line for seg in shown}) == 1
    loops = {} if show_phi else in_person_loops(segments)
    fill = fill_for(separator)

    def text(seg: Any) -> str:
        return separator.join(seg.elements if show_phi else
                              mask_elements(seg.elements, loops[seg.ordinal], fill))

    rows = [[f"#{seg.ordinal}" if one_line else str(seg.line), visible(text(seg))]
            for seg in shown]
    before, marked, after = split_marked(text(shown[here]), separator, finding.element)
    return [rows, here, visible(before), visible(marked), visible(after)]


def _verdict_class(said: str) -> str:
    return "verdict ok" if said == "ready to send" else "verdict fix"


def _counts(summary: dict[str, Any]) -> Any:
    rows = [("claims", str(summary["claims"])),
            ("accepted", f"{summary['accepted']} "
                         f"({money(Decimal(summary['charges_accepted']))})"),
            ("rejected", f"{summary['rejected']} "
                         f"({money(Decimal(summary['charges_rejected']))})"),
            ("with warnings", str(summary["warnings"])),
            ("envelope problems", str(summary["envelope_problems"]))]
    if "files" in summary:
        rows.insert(0, ("files", f"{summary['files']} ({summary['files_not_scrubbed']} "
                                 "not scrubbed)"))
    return E.TABLE(*[E.TR(E.TH(k), E.TD(v, E.CLASS("num"))) for k, v in rows],
                   E.CLASS("counts"))

