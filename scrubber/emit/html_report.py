"""The HTML report: one self-contained page for a whole batch, for a billing office to act on.

At the top, what the batch comes to: a total and a verdict, the files not
scrubbed and why, a bar chart of the rejection reasons with the charges they
hold back (inline SVG), breakdowns by rule, payer, billing provider and file,
and one table of every claim with findings that sorts and filters by status,
rule and payer (a little inline script; no external assets). Below, one
section per file: its verdict, envelope problems in line order, and each
claim's findings, rejections first, with the segment in context shown once
per segment and links to every other claim a finding names.

Built with lxml, so everything is escaped. Claim rows and sections are
serialized as they come and kept in owner-only temporary files until the
totals at the top are known, so memory does not grow with the claims.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from typing import IO, Any, TextIO

from lxml import etree
from lxml.html import builder as _builder

from scrubber.emit.batch import Batch, Bucket, payer_of, plural, provider_of, ranked, verdict
from scrubber.emit.phi import fill_for, in_person_loops, mask_elements, quoted
from scrubber.emit.sinks import FileEnd, Sink
from scrubber.emit.summary import (
    Tally,
    _patient,
    _problem_words,
    in_line_order,
    rejections_first,
    split_marked,
)
from scrubber.rules.findings import Finding, Notice, ScrubbedClaim, Severity

CONTEXT = 3  # segments shown either side of a finding's segment
_ROWS, _SECTIONS = "scrubber-claim-rows", "scrubber-file-sections"
CHART_WIDTH = 320  # pixels of the longest bar

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num,th.num{text-align:right}
.reject{color:#b00020;font-weight:bold}.warn{color:#9a6700}.info{color:#0a5f8a}
.status{display:inline-block;padding:.05em .5em;border-radius:.8em;font-size:.9em}
.status.rejected{background:#fde7ea;color:#b00020;font-weight:bold}
.status.warned{background:#fff4d6;color:#7a5200}
.status.accepted{background:#e6f4ea;color:#1e6b34}
.verdict{font-weight:bold}.verdict.ok{color:#1e6b34}.verdict.fix{color:#b00020}
pre{background:#f8f8f8;padding:.5em;margin:.3em 0;overflow-x:auto}mark{background:#ffd54f}
.here{background:#fff3cd}.claim{border-top:1px solid #ddd;margin-top:1em}
.finding{margin:.2em 0}.filters label{margin-right:1em}
th.sortable{cursor:pointer}th.sortable::after{content:" \\2195";color:#999}
svg text{font-size:12px;font-family:system-ui,sans-serif}
section.file{border-top:3px solid #ccc;margin-top:2em}
"""

# Sorts the claim table by a clicked header and filters it by the three selects.
_SCRIPT = """
(function(){
  var table=document.getElementById('claims');
  if(!table){return;}
  var body=table.tBodies[0];
  var selects=document.querySelectorAll('.filters select');
  function apply(){
    var want={};
    selects.forEach(function(s){want[s.name]=s.value;});
    var shown=0;
    Array.prototype.forEach.call(body.rows,function(row){
      var ok=(!want.status||row.dataset.status===want.status)&&
             (!want.payer||row.dataset.payer===want.payer)&&
             (!want.rule||row.dataset.rules.split(' ').indexOf(want.rule)>=0);
      row.hidden=!ok; if(ok){shown++;}
    });
    document.getElementById('shown').textContent=shown;
  }
  selects.forEach(function(s){s.addEventListener('change',apply);});
  table.querySelectorAll('th.sortable').forEach(function(th,col){
    th.addEventListener('click',function(){
      var down=th.dataset.order!=='asc'; th.dataset.order=down?'asc':'desc';
      var index=th.cellIndex, numeric=th.classList.contains('num');
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[index].textContent, y=b.cells[index].textContent;
        var c=numeric?(parseFloat(x)||0)-(parseFloat(y)||0):x.localeCompare(y);
        return down?c:-c;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  apply();
})();
"""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def visible(text: str) -> str:
    """``text`` with control characters shown as escapes ("\\x07"): XML cannot hold them,
    and a biller should see that the file carries one rather than lose the page."""
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


def _id(text: str) -> str:
    """An HTML id fragment from a claim id: no white space (CLM01 may hold anything else)."""
    return re.sub(r"\s", "_", text)


def related_id(reference: str) -> str:
    """The claim id of a Finding.related entry: "CLM01 (submission ...)" -> "CLM01"."""
    return reference.split(" (submission ", 1)[0]


def _payer_label(payer: tuple[str, str]) -> str:
    name, ident = payer
    return f"{name} ({ident})" if ident else name


def _status(claim: ScrubbedClaim) -> tuple[str, str]:
    """(css class, words) of a claim's status."""
    return ("rejected", "rejected") if claim.rejected else ("warned", "accepted with warnings")


def _spool() -> IO[str]:
    return tempfile.TemporaryFile("w+", encoding="utf-8")  # owner-only, already unlinked


def _copy(spool: IO[str], out: IO[str]) -> None:
    spool.seek(0)
    shutil.copyfileobj(spool, out)
    spool.close()


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
    """Two bars per rule that rejected claims: how many claims, and the charges they hold back.

    Each kind of bar is scaled to its own largest value; the numbers are written
    beside them and every bar carries them as data-claims / data-at-risk.
    """
    bars = [(rule, bucket) for rule, bucket in ranked(by_rule) if bucket.rejected]
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
                 f"{bucket.at_risk:.2f} at risk")):
            width = max(2, round(CHART_WIDTH * share))
            longest = max(longest, width)
            bar = etree.SubElement(svg, "rect", {
                "class": kind, "x": str(label), "y": str(top), "width": str(width),
                "height": str(height), "fill": colour, **numbers})
            etree.SubElement(bar, "title").text = visible(f"{rule}: {words}")
        etree.SubElement(svg, "text", x=str(label + longest + 6), y=str(y + 16)).text = (
            f"{plural(bucket.rejected, 'claim')}, {bucket.at_risk:.2f} at risk")
    return svg


class HtmlReport(Sink):
    """One self-contained HTML page over every file of a run (begin_file ... close)."""

    def __init__(self, out: TextIO, *, show_phi: bool = False, color: bool = False):
        self.out = out
        self.show_phi = show_phi
        self.batch = Batch()
        self.rows = _spool()  # the claim table, across files
        self.sections = _spool()  # one section per file
        self.files = 0
        self.pages = 0

    # -- one file ----------------------------------------------------------------------
    def begin_file(self, path: str) -> None:
        self.path = path
        self.files += 1
        self.tally = Tally()
        self.batch.begin_file(path)
        self.details = _spool()
        self.anchors: dict[str, str] = {}  # claim id -> anchor of its first section
        self.named: set[str] = set()  # claim ids a finding links to
        self.unlisted = _spool()  # claims without a section: "id\tstatus\tcharge" lines

    def anchor(self, claim_id: str) -> str:
        """The anchor of a claim in the current file: claim-<file>-<CLM01>."""
        return f"claim-{self.files}-{_id(claim_id)}"

    def event(self, event: Any) -> None:
        self.tally.add(event)
        self.batch.event(event)
        if event.__class__ is ScrubbedClaim:
            if event.rejected or any(f.severity is not Severity.INFO for f in event.findings):
                self._claim(event)
            else:
                claim = event.record.claim
                self.unlisted.write(f"{claim.id}\t{event.status}\t{claim.charge_text}\n"
                                    .replace("\r", " "))

    def _claim(self, event: ScrubbedClaim) -> None:
        claim = event.record.claim
        anchor = self.anchor(claim.id)
        if claim.id in self.anchors:  # the same CLM01 again in this file
            anchor = f"{anchor}-{claim.location.segment}"
        else:
            self.anchors[claim.id] = anchor
        css, words = _status(event)
        findings = rejections_first(event.findings)
        rules = list(dict.fromkeys(f.rule for f in findings))
        payer = _payer_label(payer_of(event.record))
        name, npi = provider_of(event.record)
        self.rows.write(_html(E.TR(
            E.TD(E.A(claim.id, href=f"#{anchor}")), E.TD(self.path),
            E.TD(E.SPAN(words, E.CLASS(f"status {css}"))),
            E.TD(claim.charge_text, E.CLASS("num")), E.TD(_patient(event, self.show_phi)),
            E.TD(payer), E.TD(f"{name} ({npi})" if npi else name), E.TD(" ".join(rules)),
            {"data-status": css, "data-rules": " ".join(rules), "data-payer": payer})) + "\n")
        parts = [E.H3(f"Claim {claim.id} ", E.SPAN(words, E.CLASS(f"status {css}")),
                      id=anchor),
                 E.P(f"charge {claim.charge_text}; patient {_patient(event, self.show_phi)}; "
                     f"payer {payer}; billing provider {name} {npi}".rstrip())]
        separator = event.record.interchange.delimiters.element
        for group in _by_segment(findings):
            for finding in group:
                parts.append(self._finding(finding))
            parts.append(_context(event, group[0], separator, self.show_phi))
            for fix in dict.fromkeys(f.fix for f in group if f.fix):
                parts.append(E.P(E.STRONG("What to do: "), fix))
        self.details.write(_html(E.DIV(*parts, E.CLASS("claim"))) + "\n")

    def _finding(self, finding: Finding) -> Any:
        line = f", service line {finding.line_number}" if finding.line_number else ""
        status = f" [{':'.join(finding.status)}]" if finding.status else ""
        node = E.P(E.SPAN(finding.severity.value.upper(), E.CLASS(finding.severity.value)),
                   f" {finding.rule}{status}{line}: {finding.message}", E.CLASS("finding"))
        if finding.related:
            links: list[Any] = [" See "]
            for n, reference in enumerate(finding.related):
                other = related_id(reference)
                self.named.add(other)
                if n:
                    links.append(", ")
                links.append(E.A(f"claim {other}", href=f"#{self.anchor(other)}",
                                 **{"class": "related"}))
            links.append(".")
            node.extend(_nodes(links))
        return node

    def end_file(self, end: FileEnd) -> None:
        t = self.tally
        summary = end.summary
        self.batch.end_file(end)
        said = verdict(summary)
        head = [E.H2(self.path, id=f"file-{self.files}"),
                E.P("Verdict: ", E.SPAN(said, E.CLASS(_verdict_class(said)))),
                _counts(summary)]
        if t.problems:
            head.append(E.H3("Envelope and implementation-guide (999) problems"))
            head.append(E.UL(*[E.LI(f"line {p.location.line if p.location else '-'}: "
                                    f"[{p.code}] {_problem_words(p)}")
                               for p in in_line_order(t.problems)]))
        section = _html(E.SECTION(*head, E.DIV(id=_SECTIONS), E.CLASS("file")))
        before, after = section.split(f'<div id="{_SECTIONS}"></div>', 1)
        self.sections.write(before)
        _copy(self.details, self.sections)
        self.sections.write(self._stubs())
        self.sections.write(after + "\n")

    def _stubs(self) -> str:
        """A short entry for each claim a finding links to that has no section of its own."""
        wanted = self.named - set(self.anchors)
        found: dict[str, tuple[str, str]] = {}
        self.unlisted.seek(0)
        for line in self.unlisted:
            claim_id, status, charge = line.rstrip("\n").split("\t")
            if claim_id in wanted and claim_id not in found:
                found[claim_id] = (status, charge)
        self.unlisted.close()
        parts = []
        for claim_id in sorted(wanted):
            if claim_id in found:
                status, charge = found[claim_id]
                words = f"{status} (no findings), charge {charge}"
            else:
                words = "not in this file: from an earlier submission or the claim history"
            parts.append(_html(E.DIV(E.H3(f"Claim {claim_id}", id=self.anchor(claim_id)),
                                     E.P(words), E.CLASS("claim stub"))))
        return "\n".join(parts)

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
        body.append(E.DIV(id=_SECTIONS))
        page = E.HTML(E.HEAD(E.META(charset="utf-8"), E.TITLE(title), E.STYLE(_CSS)),
                      E.BODY(*body, E.SCRIPT(_SCRIPT)))
        text = _html(page)
        before, rest = text.split(f'<tr id="{_ROWS}"></tr>', 1)
        middle, after = rest.split(f'<div id="{_SECTIONS}"></div>', 1)
        self.out.write("<!DOCTYPE html>\n")
        self.out.write(before)
        _copy(self.rows, self.out)
        self.out.write(middle)
        _copy(self.sections, self.out)
        self.out.write(after + "\n")
        self.out.flush()
        self.pages += 1

    def _breakdowns(self) -> list[Any]:
        head = ["claims", "rejected", "with warnings", "at risk"]
        numeric = frozenset({1, 2, 3, 4})

        def row(label: Any, bucket: Bucket) -> list[Any]:
            return [label, bucket.claims, bucket.rejected, bucket.warned, f"{bucket.at_risk:.2f}"]

        files = [(f"{name}", self.batch.file_bucket(summary), said)
                 for name, summary, said in self.batch.files]
        return [
            E.H2("By rule"),
            _table(["rule", "claims", "rejected", "warned", "at risk", "findings"],
                   [[rule, b.claims, b.rejected, b.warned, f"{b.at_risk:.2f}", b.findings]
                    for rule, b in ranked(self.batch.by_rule)],
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
        def select(name: str, label: str, values: list[str]) -> Any:
            return E.LABEL(f"{label} ", E.SELECT(E.OPTION("all", value=""),
                                                 *[E.OPTION(v, value=v) for v in values],
                                                 name=name))

        rules = [rule for rule, b in ranked(self.batch.by_rule) if b.claims]
        payers = [_payer_label(key) for key, _ in ranked(self.batch.by_payer)]
        heads = ["claim", "file", "status", "charge", "patient", "payer", "billing provider",
                 "rules"]
        header = E.TR(*[E.TH(h, E.CLASS("sortable num" if h == "charge" else "sortable"))
                        for h in heads])
        return [
            E.H2("Claims with findings"),
            E.P(E.CLASS("filters"), select("status", "Status", ["rejected", "warned"]),
                select("rule", "Rule", rules), select("payer", "Payer", payers),
                E.SPAN("shown: "), E.SPAN("0", id="shown")),
            E.TABLE(E.THEAD(header), E.TBODY(E.TR(id=_ROWS)), id="claims"),
        ]


def _by_segment(findings: list[Finding]) -> list[list[Finding]]:
    """Findings grouped by the segment they point at, in the order given."""
    groups: dict[Any, list[Finding]] = {}
    for finding in findings:
        key = finding.location.segment if finding.location else ("text", finding.segment_text)
        groups.setdefault(key, []).append(finding)
    return list(groups.values())


def _context(event: ScrubbedClaim, finding: Finding, separator: str, show_phi: bool
             ) -> Any:
    """The finding's segment with CONTEXT segments either side, its element marked; a
    person's identity masked in each unless ``show_phi`` (scrubber.emit.phi)."""
    segments = event.record.claim.segments
    where = finding.location
    at = next((i for i, seg in enumerate(segments)
               if where is not None and seg.ordinal == where.segment), None)
    pre = E.PRE()
    if at is None or where is None:
        pre.text = visible(finding.segment_text if show_phi else quoted(event, finding))
        return pre
    loops = {} if show_phi else in_person_loops(segments)
    for seg in segments[max(0, at - CONTEXT): at + CONTEXT + 1]:
        text = separator.join(seg.elements if show_phi else
                              mask_elements(seg.elements, loops[seg.ordinal],
                                            fill_for(separator)))
        row = E.SPAN()
        if seg.ordinal == where.segment:
            row.set("class", "here")
            before, marked, after = split_marked(text, separator, finding.element)
            row.text = visible(f"{seg.line:>6}  {before}")
            if marked:
                highlight = E.MARK(marked)
                highlight.tail = visible(after)
                row.append(highlight)
        else:
            row.text = visible(f"{seg.line:>6}  {text}")
        row.tail = "\n"
        pre.append(row)
    return pre


def _nodes(parts: list[Any]) -> list[Any]:
    """Strings and elements as children to append: strings become a span's text."""
    return [E.SPAN(p) if isinstance(p, str) else p for p in parts]


def _verdict_class(said: str) -> str:
    return "verdict ok" if said == "ready to send" else "verdict fix"


def _counts(summary: dict[str, Any]) -> Any:
    rows = [("claims", str(summary["claims"])),
            ("accepted", f"{summary['accepted']} ({summary['charges_accepted']})"),
            ("rejected", f"{summary['rejected']} ({summary['charges_rejected']})"),
            ("with warnings", str(summary["warnings"])),
            ("envelope problems", str(summary["envelope_problems"]))]
    if "files" in summary:
        rows.insert(0, ("files", f"{summary['files']} ({summary['files_not_scrubbed']} "
                                 "not scrubbed)"))
    return E.TABLE(*[E.TR(E.TH(k), E.TD(v, E.CLASS("num"))) for k, v in rows],
                   E.CLASS("counts"))

