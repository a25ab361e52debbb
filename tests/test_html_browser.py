"""The HTML batch report in a real browser (Debian's Chromium, driven by Selenium).

The chart is drawn with bars as long as the counts say; the claim table holds
every claim of the run, rejected first, then accepted with warnings, then
accepted; the filters show the right rows and the sort sorts; a link to
another claim, in the same file or another file of the report, lands on it,
and a claim from an earlier submission gets one entry; a claim's text shows as
text, never as markup; the page logs no console error (a Content-Security-
Policy violation is one). A report of 30,000 claims stays under 5 MB and shows
its first rejected claim within 3 s of navigation start (issue 27).

The page redraws its claim table after a click, a filter, a sort, a page turn, a
hash change and when a claim's findings are unpacked (after the table is
shown), some of it in later tasks than Selenium's own: a test reads what it
asserts through `eventually`, afresh until it holds (a wrong page still fails,
after PATIENCE), and never sleeps.

Needs /usr/bin/chromium and /usr/bin/chromedriver (.ci/install-browser);
skipped without them, except under CI=true, where a missing browser is a
failure. Never lets Selenium download a browser.

Run as a script to refresh docs/sample-report.png:
``python tests/test_html_browser.py``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from test_summary import sample
from x12text import claim_837p, interchange

from scrubber.api import check_files
from scrubber.core import feed
from scrubber.emit.html_report import HtmlReport, page_data
from scrubber.emit.sinks import Sink
from scrubber.model import ClaimRecord, read
from scrubber.rules.findings import Finding, ScrubbedClaim, Severity

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BIG = 30_000  # claims in the big report (issue 27: 30,000 claims)
MAX_BYTES = 5_000_000  # ... in a page under 5 MB
PAGE_ROWS = 100  # ... which draws one page of claim rows (the script's size=100) ...
# ... before it unpacks the claims' findings: what makes the first rejected claim show at
# once (issue 27); how fast on this machine is bench/html_bench.py's to measure, not a test's
PATIENCE = 60  # s a page may take to show what a test asserts, on a loaded machine
T = TypeVar("T")


def _browser_missing() -> str | None:
    for path in (CHROMIUM, DRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed (.ci/install-browser installs it)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def sample_page(target: Path) -> Path:
    """The sample batch report (docs/sample-summary.html), as `scrub check` writes it."""
    target.write_text(sample("html"), encoding="utf-8")
    return target


def start_chromium(profile: str, width: int = 1280, height: int = 1000):
    """Headless Chromium from Debian, with a fresh profile and no network chatter."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)


def load(driver, page: Path, fragment: str = "") -> Any:
    """Open a report page and wait until its script has drawn the claim table."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")  # a new document, even where only the fragment differs
    driver.get(page.as_uri() + fragment)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "var t=document.getElementById('claims');return t&&t.dataset.ready==='true'"))
    return driver


@pytest.fixture(scope="module")
def chromium(tmp_path_factory) -> Iterator:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run in CI: {missing}")
        pytest.skip(missing)
    driver = start_chromium(str(tmp_path_factory.mktemp("browser") / "profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory) -> Path:
    return sample_page(tmp_path_factory.mktemp("sample") / "report.html")


@pytest.fixture
def browser(chromium, sample_file) -> Iterator:
    """The sample report, freshly loaded; no console error may be left when the test ends."""
    chromium.get_log("browser")  # what earlier pages said is theirs
    yield load(chromium, sample_file)
    assert severe(chromium) == []


def severe(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def eventually(driver, check: Callable[[Any], T]) -> T:
    """What check(driver) returns once it passes, run afresh each poll.

    An action's redraw may come in a later task, and replaces the elements a read
    before it found (stale): the check finds its elements itself and asserts what
    the test wants. After PATIENCE it runs once more and its own failure is raised.
    """
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    retried = (AssertionError, ValueError, StopIteration, NoSuchElementException,
               StaleElementReferenceException)  # ValueError, StopIteration: unpacking, next()
    try:
        return WebDriverWait(driver, PATIENCE, poll_frequency=0.1,
                             ignored_exceptions=retried).until(lambda d: [check(d)])[0]
    except TimeoutException:
        return check(driver)


def click(driver, find: Callable[[Any], Any]) -> None:
    """Click what find(driver) finds, found again if a redraw replaced it first."""
    eventually(driver, lambda d: find(d).click())


def rows(driver) -> list:
    """The claim rows on show (not the findings rows opened under them)."""
    from selenium.webdriver.common.by import By

    return [row for row in driver.find_elements(By.CSS_SELECTOR, "#claims tbody tr[data-status]")
            if row.is_displayed()]


def cells(row) -> list[str]:
    from selenium.webdriver.common.by import By

    return [td.text for td in row.find_elements(By.TAG_NAME, "td")]


def choose(driver, name: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.NAME, name)).select_by_value(value)


def claims_in_file_order(report_json: str) -> list[tuple[str, str, str]]:
    """(file, claim id, status) of every claim of a JSON report, warned told apart."""
    found = []
    for f in json.loads(report_json)["files"]:
        for ic in f["interchanges"]:
            for group in ic["groups"]:
                for t in group["transactions"]:
                    for c in t["claims"]:
                        warned = any(x["severity"] == "warn" for x in c["findings"])
                        status = c["status"] if c["status"] == "rejected" or not warned \
                            else "warned"
                        found.append((f["path"], c["id"], status))
    return found


RANK = {"rejected": 0, "warned": 1, "accepted": 2}


def test_the_chart_draws_bars_as_long_as_the_counts(browser):
    from selenium.webdriver.common.by import By

    bars = browser.find_elements(By.CSS_SELECTOR, "svg#chart rect.bar")  # claims
    assert len(bars) >= 3
    table = {row.find_elements(By.TAG_NAME, "td")[0].text:
             int(row.find_elements(By.TAG_NAME, "td")[2].text)
             for row in browser.find_elements(By.CSS_SELECTOR, "#by-rule tbody tr")}
    widths = {bar.get_attribute("data-rule"): bar.rect["width"] for bar in bars}
    counts = {bar.get_attribute("data-rule"): int(bar.get_attribute("data-claims"))
              for bar in bars}
    # one bar per root cause (ig-999 is the total of the held claims' causes: no bar)
    assert counts == {rule: n for rule, n in table.items() if n and not rule.startswith("ig-999")}
    most = max(counts.values())
    assert min(counts.values()) < most  # bars of different lengths to compare
    longest = max(widths.values())
    for rule, width in widths.items():  # drawn, and in proportion to the count
        assert width > 0
        assert abs(width / longest - counts[rule] / most) < 0.02, rule
    amounts = {bar.get_attribute("data-rule"): (float(bar.get_attribute("data-at-risk")),
                                                bar.rect["width"])
               for bar in browser.find_elements(By.CSS_SELECTOR, "svg#chart rect.amount-bar")}
    at_risk = {row.find_elements(By.TAG_NAME, "td")[0].text:
               float(row.find_elements(By.TAG_NAME, "td")[4].text.replace(",", ""))
               for row in browser.find_elements(By.CSS_SELECTOR, "#by-rule tbody tr")}
    assert {rule: amount for rule, (amount, _) in amounts.items()} == \
        {rule: at_risk[rule] for rule in counts}
    dearest = max(amount for amount, _ in amounts.values())
    widest = max(width for _, width in amounts.values())
    for rule, (amount, width) in amounts.items():
        assert abs(width / widest - amount / dearest) < 0.02, rule


def test_every_claim_is_a_row_rejected_first_then_warned_then_accepted(chromium, tmp_path):
    """Clean accepted claims too; each status in file order (issue 27: 4 of 34 were absent)."""
    warned = tmp_path / "warned.x12"  # another patient's: no day conflict with the others
    warned.write_text((ROOT / "fixtures/rules/96523-diagnosis.fail.837p.x12").read_text()
                      .replace("FAKE0000101", "FAKE0000977").replace("RIVERA", "MORALES"))
    paths = [str(ROOT / "fixtures/837p-multi.x12"), str(warned),
             str(ROOT / "fixtures/rules/96523-units.fail.837p.x12"),
             str(ROOT / "fixtures/rules/96523-drug-admin.fail.837p.x12")]
    every = {}
    for fmt in ("json", "html"):
        out = io.StringIO()
        check_files(paths, out, fmt=fmt)
        every[fmt] = out.getvalue()
    want = claims_in_file_order(every["json"])
    assert [status for _, _, status in want] == ["accepted"] * 3 + ["warned", "rejected",
                                                                    "rejected", "accepted"]
    page = tmp_path / "report.html"
    page.write_text(every["html"])
    load(chromium, page)
    shown = [(row.get_attribute("data-file"), cells(row)[0], row.get_attribute("data-status"))
             for row in rows(chromium)]
    assert shown == sorted(want, key=lambda claim: RANK[claim[2]])  # a stable sort
    assert [cells(row)[2] for row in rows(chromium)] == \
        ["rejected"] * 2 + ["accepted with warnings"] + ["accepted"] * 4


def test_every_claim_of_the_sample_is_a_row(browser):
    want = claims_in_file_order(sample("json"))
    shown = [(row.get_attribute("data-file"), cells(row)[0], row.get_attribute("data-status"))
             for row in rows(browser)]
    assert sorted(shown) == sorted(want)
    assert [RANK[status] for _, _, status in shown] == sorted(RANK[s] for _, _, s in want)


def test_filters_show_the_right_rows_and_the_header_sorts(browser):
    from selenium.webdriver.common.by import By

    every = rows(browser)
    claims = [(row.get_attribute("data-status"), row.get_attribute("data-rules").split(),
               row.get_attribute("data-payer"), row.get_attribute("data-provider"),
               row.get_attribute("data-file"), cells(row)[0]) for row in every]
    assert len(every) >= 10
    as_given = [float(cells(row)[3]) for row in every]
    assert browser.find_element(By.ID, "shown").text == str(len(every))

    def check(name: str, value: str, keep) -> None:
        choose(browser, name, value)
        want = [claim[-1] for claim in claims if keep(claim)]

        def filtered(driver) -> None:
            now = [cells(row)[0] for row in rows(driver)]
            assert now == want and 0 < len(now) < len(every), (name, value)
            assert driver.find_element(By.ID, "shown").text == str(len(want))

        eventually(browser, filtered)
        choose(browser, name, "")

    check("rule", "96523-units", lambda c: "96523-units" in c[1])
    for status in ("rejected", "accepted"):
        check("status", status, lambda c, status=status: c[0] == status)
    choose(browser, "status", "warned")  # none in the sample

    def no_rows(driver) -> None:
        assert rows(driver) == [] and driver.find_element(By.ID, "shown").text == "0"
        assert driver.find_element(By.ID, "rows-shown").text == "none"

    eventually(browser, no_rows)
    choose(browser, "status", "")
    payer = claims[-1][2]
    check("payer", payer, lambda c: c[2] == payer)
    provider = claims[0][3]
    check("provider", provider, lambda c: c[3] == provider)
    where = "fixtures/837p-multi.x12"
    check("file", where, lambda c: c[4] == where)
    search = browser.find_element(By.NAME, "q")  # the filters are never redrawn
    search.send_keys("admin")

    def searched(driver) -> None:
        assert [cells(row)[0] for row in rows(driver)] == \
            [c[-1] for c in claims if "admin" in c[-1].lower()]

    eventually(browser, searched)
    search.clear()
    search.send_keys(" ")  # an input event; blank matches every claim

    def every_row(driver) -> None:
        assert len(rows(driver)) == len(every)

    eventually(browser, every_row)
    header = "//table[@id='claims']//th[text()='charge']"
    browser.find_element(By.XPATH, header).click()

    def ascending(driver) -> list[float]:
        charges = [float(cells(row)[3]) for row in rows(driver)]
        assert charges == sorted(as_given) and charges != as_given
        return charges

    charges = eventually(browser, ascending)
    browser.find_element(By.XPATH, header).click()

    def descending(driver) -> None:
        assert [float(cells(row)[3]) for row in rows(driver)] == sorted(charges, reverse=True)

    eventually(browser, descending)


def test_a_rule_payer_or_provider_in_a_breakdown_shows_its_claims(browser):
    from selenium.webdriver.common.by import By

    every = [(row.get_attribute("data-rules").split(), row.get_attribute("data-payer"),
              row.get_attribute("data-provider"), cells(row)[0]) for row in rows(browser)]
    for table, field in (("by-rule", 0), ("by-payer", 1), ("by-provider", 2)):
        link = browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody a.filter-link")[-1]
        value = link.text  # the breakdown tables are never redrawn
        link.click()
        want = [c[3] for c in every if (value in c[0] if field == 0 else c[field] == value)]

        def shown(driver, want=want, table=table, value=value) -> None:
            assert [cells(row)[0] for row in rows(driver)] == want and want, (table, value)

        eventually(browser, shown)
    choose(browser, "provider", "")


def test_a_file_section_shows_its_claims_in_the_table(browser):
    from selenium.webdriver.common.by import By

    section = browser.find_element(By.XPATH, "//section[h2='fixtures/837p-multi.x12']")
    section.find_element(By.CSS_SELECTOR, "a.to-claims").click()

    def its_claims(driver) -> None:
        assert [cells(row)[0] for row in rows(driver)] == ["MLT-0001", "MLT-0002", "MLT-0003"]
        assert driver.execute_script("return location.hash") == "#claims"

    eventually(browser, its_claims)


def test_pages_of_rows(browser):
    from selenium.webdriver.common.by import By

    every = [cells(row)[0] for row in rows(browser)]
    choose(browser, "size", "50")

    def whole(driver) -> None:
        assert [cells(row)[0] for row in rows(driver)] == every  # fewer than a page

    eventually(browser, whole)
    browser.execute_script("""
        var s=document.querySelector('.pager select');
        s.appendChild(new Option('5','5'));s.value='5';s.dispatchEvent(new Event('change'));""")

    def turned(after: str | None) -> Callable[[Any], tuple[list[str], str, bool]]:
        """The page on show (claim ids, 'first-last of n', whether there is a next), once
        its range is not `after`'s: drawn after the click."""
        def read(driver) -> tuple[list[str], str, bool]:
            where = driver.find_element(By.ID, "rows-shown").text
            assert where != after and where.startswith("1\u2013" if after is None else "")
            ids = [cells(row)[0] for row in rows(driver)]
            assert len(ids) <= 5
            return ids, where, driver.find_element(By.NAME, "next").is_enabled()
        return read

    seen: list[str] = []
    ids, where, more = eventually(browser, turned(None))
    while True:
        seen += ids
        if not more:
            break
        browser.find_element(By.NAME, "next").click()  # the pager is never redrawn
        ids, where, more = eventually(browser, turned(where))
    assert seen == every
    assert where.endswith(f" of {len(every)}")


def _open(browser, claim_id: str) -> str:
    """Open a claim's findings by its link in the table; its row's id, once it is open.

    The table is drawn again: by the click, and once more when the findings are
    unpacked, if that comes later. Read the row by its id, through `eventually`.
    """
    from selenium.webdriver.common.by import By

    def find(driver) -> tuple[str, Any]:
        row = next(r for r in rows(driver) if cells(r)[0] == claim_id)
        return row.get_attribute("id"), row.find_element(By.CSS_SELECTOR, "a.claim-link")

    anchor = eventually(browser, lambda d: find(d)[0])
    click(browser, lambda d: find(d)[1])  # a stale link was never clicked: click the new one

    def opened(driver) -> None:
        assert "open" in driver.find_element(By.ID, anchor).get_attribute("class").split()

    eventually(browser, opened)
    return anchor


def detail_of(driver, anchor: str) -> Any:
    """The findings row under an open claim's row (found afresh: use within `eventually`)."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, anchor).find_element(By.XPATH, "following-sibling::tr[1]")


def test_a_claim_opens_on_its_findings_rejections_first(browser):
    from selenium.webdriver.common.by import By

    anchor = _open(browser, "UNIT-A")

    def findings(driver) -> None:  # once unpacked, perhaps after the click
        detail = detail_of(driver, anchor)
        assert "detail" in detail.get_attribute("class").split()
        said = [p.text for p in detail.find_elements(By.CSS_SELECTOR, "p.finding")]
        assert any(s.startswith("REJECT 96523-units [A7:476], service line 1: 96523 is billed "
                                "with 2 units") for s in said)
        assert all(s.startswith("REJECT ") for s in said)
        (here,) = detail.find_elements(By.CSS_SELECTOR, "pre span.here")  # SV1, shown once
        assert here.text.split() == ["24", "SV1*HC:96523*120*UN*2***1"]
        assert here.find_element(By.TAG_NAME, "mark").text == "HC:96523"
        assert "What to do: Bill 96523 with 1 unit." in detail.text

    eventually(browser, findings)
    click(browser, lambda d: d.find_element(By.ID, anchor).find_element(
        By.CSS_SELECTOR, "a.claim-link"))  # and closes again

    def closed(driver) -> None:
        assert not driver.find_elements(By.CSS_SELECTOR, "#claims tr.detail")

    eventually(browser, closed)


def test_a_link_to_another_claim_lands_on_it(browser):
    from selenium.webdriver.common.by import By

    choose(browser, "status", "rejected")  # ADMIN-B is accepted: hidden by the filter

    def hidden(driver) -> None:
        assert "ADMIN-B" not in [cells(row)[0] for row in rows(driver)]

    eventually(browser, hidden)
    _open(browser, "ADMIN-A")

    def related(driver) -> Any:  # drawn once the findings are unpacked
        (link,) = [a for a in driver.find_elements(By.CSS_SELECTOR, "a.related")
                   if a.text == "claim ADMIN-B"]  # in the same file: no file named
        return link

    target = eventually(browser, lambda d: related(d).get_attribute("href").split("#", 1)[1])
    browser.execute_script("window.scrollTo(0, 0)")
    click(browser, related)

    def landed(driver) -> None:  # the hash changes at once; the page redraws on hashchange
        assert driver.execute_script("return location.hash") == f"#{target}"
        row = driver.find_element(By.ID, target)
        assert cells(row)[0] == "ADMIN-B" and "open" in row.get_attribute("class").split()
        top = driver.execute_script(
            f"return document.getElementById({target!r}).getBoundingClientRect().top")
        assert abs(top) < 5  # the named claim is at the top of the window
        assert driver.execute_script("return window.scrollY") > 0
        detail = detail_of(driver, target)
        assert "charge 300" in detail.text and "No findings." in detail.text
        assert driver.find_element(By.ID, "shown").text == "13"  # the filter was cleared

    eventually(browser, landed)


def two_files(folder: Path) -> list[str]:
    """A 96523 flush in one file, the chemotherapy it goes with in another (same patient, day)."""
    who = {"member": "FAKE0000101", "patient": ("RIVERA", "ALEX", "19720314")}
    flush = folder / "flush.x12"
    flush.write_text(interchange(claim_837p("FLUSH-1", lines=[("96523", "60", "1", "20261102")],
                                            **who), control="000000001"))
    chemo = folder / "chemo.x12"
    chemo.write_text(interchange(claim_837p("CHEMO-1", lines=[("96413", "300", "1", "20261102")],
                                            **who), control="000000002"))
    return [str(flush), str(chemo)]


def test_a_link_to_a_claim_in_another_file_of_the_report_lands_on_it(chromium, tmp_path):
    from selenium.webdriver.common.by import By

    out = io.StringIO()
    check_files(two_files(tmp_path), out, fmt="html")
    page = tmp_path / "report.html"
    page.write_text(out.getvalue())
    load(chromium, page)
    _open(chromium, "FLUSH-1")

    def related(driver) -> Any:  # drawn once the findings are unpacked
        (link,) = driver.find_elements(By.CSS_SELECTOR, "a.related")
        assert link.text == f"claim CHEMO-1 (in {tmp_path / 'chemo.x12'})"
        return link

    click(chromium, related)

    def landed(driver) -> None:  # the hash changes at once; the page redraws on hashchange
        row = driver.find_element(By.ID, "claim-2-CHEMO-1")
        assert driver.execute_script("return location.hash") == "#claim-2-CHEMO-1"
        assert row.get_attribute("data-file") == str(tmp_path / "chemo.x12")
        assert "open" in row.get_attribute("class").split()
        assert abs(driver.execute_script(
            "return document.getElementById('claim-2-CHEMO-1').getBoundingClientRect().top")) < 5
        assert not driver.find_element(By.ID, "earlier").is_displayed()  # no stub for it

    eventually(chromium, landed)
    load(chromium, page, "#claim-2-CHEMO-1")  # a link from outside lands too

    def opened(driver) -> None:
        assert "open" in driver.find_element(By.ID, "claim-2-CHEMO-1").get_attribute("class")

    eventually(chromium, opened)
    assert severe(chromium) == []


def _claim(claim_id: str, control: str, related: tuple[str, ...], message: str = "conflict",
           fix: str = "Look at the other claim.") -> tuple[ClaimRecord, ScrubbedClaim]:
    text = interchange(claim_837p(claim_id), control=control)
    (record,) = [e for e in read(text.encode()) if isinstance(e, ClaimRecord)]
    finding = Finding("96523-drug-admin", Severity.REJECT, message, fix, claim_id, None,
                      record.claim.location, "CLM*" + claim_id, element="CLM01",
                      related=related)
    return record, ScrubbedClaim(record, (finding,))


def test_a_claim_from_an_earlier_submission_gets_one_entry(chromium, tmp_path):
    """Issue 27: the stub "from an earlier submission" was repeated in 19 sections."""
    from selenium.webdriver.common.by import By

    old = ("OLD-9 (submission EARLIER:000000042)",)
    out = io.StringIO()
    writer = HtmlReport(out)
    for n, claim_id in enumerate(("NEW-1", "NEW-2", "NEW-3"), 1):
        record, scrubbed = _claim(claim_id, f"00000000{n}", old)
        feed(f"file{n}.x12", [record.interchange, scrubbed], [writer])
    writer.close()
    page = tmp_path / "earlier.html"
    page.write_text(out.getvalue())
    load(chromium, page)
    stubs = chromium.find_elements(By.CSS_SELECTOR, "#earlier .stub")
    assert len(stubs) == 1 and chromium.find_element(By.ID, "earlier").is_displayed()
    assert stubs[0].find_element(By.TAG_NAME, "h3").text == "Claim OLD-9"
    assert "EARLIER:000000042" in stubs[0].text
    assert [a.text for a in stubs[0].find_elements(By.TAG_NAME, "a")] == \
        ["claim NEW-1", "claim NEW-2", "claim NEW-3"]
    stub = stubs[0].get_attribute("id")  # the stubs are drawn once, never again
    _open(chromium, "NEW-2")

    def related(driver) -> Any:  # drawn once the findings are unpacked
        link = driver.find_element(By.CSS_SELECTOR, "a.related")
        assert link.text == "claim OLD-9 (earlier submission)"
        return link

    click(chromium, related)

    def landed(driver) -> None:
        assert abs(driver.execute_script(
            f"return document.getElementById({stub!r}).getBoundingClientRect().top")) < 5

    eventually(chromium, landed)
    assert severe(chromium) == []


def test_the_text_of_a_claim_is_shown_as_text_never_as_markup(chromium, tmp_path):
    from selenium.webdriver.common.by import By

    record, scrubbed = _claim("A&B<i>1</i>", "000000001", (),
                              "<script>window.pwned=1</script><img src=x onerror=pwned=2>",
                              "fix <b>this</b>")
    out = io.StringIO()
    writer = HtmlReport(out)
    feed("<b>batch</b>.x12", [record.interchange, scrubbed], [writer])
    writer.close()
    page = tmp_path / "hostile.html"
    page.write_text(out.getvalue())
    load(chromium, page)
    (row,) = rows(chromium)
    assert cells(row)[:2] == ["A&B<i>1</i>", "<b>batch</b>.x12"]
    _open(chromium, "A&B<i>1</i>")

    def as_text(driver) -> None:  # once the findings are unpacked
        detail = driver.find_element(By.CSS_SELECTOR, "#claims tr.detail")
        assert "<script>window.pwned=1</script><img src=x onerror=pwned=2>" in detail.text
        assert "What to do: fix <b>this</b>" in detail.text
        assert not driver.find_elements(By.CSS_SELECTOR, "#claims i, #claims b, #claims img")

    eventually(chromium, as_text)
    assert chromium.execute_script("return document.scripts.length") == 3  # 2 data blocks
    assert chromium.execute_script("return window.pwned") is None
    assert severe(chromium) == []


def test_links_land_on_claims_whatever_their_ids_hold(chromium, tmp_path):
    """CLM01 may hold '%', '<', '&', '#' or spaces: links and anchors from outside still land."""
    from selenium.webdriver.common.by import By

    ids = ["50%OFF", "A B<&>", "C#1", "D%ZZ"]
    out = io.StringIO()
    writer = HtmlReport(out)
    for n, claim_id in enumerate(ids, 1):
        following = f"{ids[n % len(ids)]} (submission SENDERID:00000000{n % len(ids) + 1})"
        record, scrubbed = _claim(claim_id, f"00000000{n}", (following,))
        feed(f"file{n}.x12", [record.interchange, scrubbed], [writer])
    writer.close()
    page = tmp_path / "ids.html"
    page.write_text(out.getvalue())
    load(chromium, page)
    anchors = {cells(row)[0]: row.get_attribute("id") for row in rows(chromium)}
    assert anchors["A B<&>"] == "claim-2-A_B<&>"
    _open(chromium, ids[0])
    for before, claim_id in zip(ids, ids[1:], strict=False):  # each names the next: follow

        def related(driver, before=before, claim_id=claim_id) -> Any:
            (link,) = detail_of(driver, anchors[before]).find_elements(By.CSS_SELECTOR,
                                                                       "a.related")
            assert link.text.startswith(f"claim {claim_id} (in file")
            return link

        click(chromium, related)

        def landed(driver, target=anchors[claim_id]) -> None:  # redrawn on hashchange
            assert "open" in driver.find_element(By.ID, target).get_attribute("class").split()

        eventually(chromium, landed)
    from urllib.parse import quote

    for claim_id in ids:  # a link from outside, written as a browser or a person would
        for fragment in {anchors[claim_id], quote(anchors[claim_id], safe="%")}:
            load(chromium, page, "#" + fragment)

            def opened(driver, target=anchors[claim_id], fragment=fragment) -> None:
                assert "open" in driver.find_element(By.ID, target) \
                    .get_attribute("class").split(), fragment
                # opened before the details were unpacked, perhaps: its findings follow
                assert "REJECT 96523-drug-admin: conflict" in \
                    driver.find_element(By.CSS_SELECTOR, "tr.detail").text

            eventually(chromium, opened)
    assert severe(chromium) == []


def test_a_run_without_claims_shows_an_empty_table(chromium, tmp_path):
    from selenium.webdriver.common.by import By

    out = io.StringIO()
    check_files([str(ROOT / "fixtures/broken-empty.x12")], out, fmt="html")
    page = tmp_path / "empty.html"
    page.write_text(out.getvalue())
    load(chromium, page)
    assert rows(chromium) == [] and chromium.find_element(By.ID, "shown").text == "0"
    assert all(not b.is_enabled() for b in chromium.find_elements(By.CSS_SELECTOR,
                                                                  ".pager button[name]")
               if b.get_attribute("name") in ("first", "previous", "next", "last"))
    assert severe(chromium) == []


def test_the_page_loads_nothing_and_runs_only_its_own_script(sample_file):
    """A strict Content-Security-Policy, naming the one script and style sheet by hash."""
    import lxml.html

    doc = lxml.html.document_fromstring(sample_file.read_text())
    (policy,) = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert policy.count("'sha256-") == 2
    assert not doc.xpath("//*[@src] | //link | //*[@href][not(starts-with(@href, '#'))]")


class FirstRejected(Sink):
    """Fed beside the report: the first rejected claim in file order, and every claim id."""

    def __init__(self) -> None:
        self.first: tuple[str, str] | None = None
        self.ids: list[str] = []

    def begin_file(self, name: str) -> None:
        self.name = name

    def event(self, event: Any) -> None:
        if isinstance(event, ScrubbedClaim):
            self.ids.append(event.record.claim.id)
            if event.rejected and self.first is None:
                self.first = (self.name, event.record.claim.id)


@pytest.fixture(scope="module")
def big_report(tmp_path_factory) -> tuple[Path, FirstRejected]:
    """30,000 claims in two generated files (bench/gen837.py): an 837P and an 837I."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from gen837 import generate
    finally:
        sys.path.remove(str(ROOT / "bench"))
    folder = tmp_path_factory.mktemp("big")
    paths = [folder / "professional.x12", folder / "institutional.x12"]
    generate(paths[0], BIG * 2 // 3, kind="P", seed=27)
    generate(paths[1], BIG - BIG * 2 // 3, kind="I", seed=28)
    first = FirstRejected()
    page = folder / "report.html"
    with page.open("w", encoding="utf-8") as out:
        check_files([str(p) for p in paths], out, fmt="html", sinks=[first])
    return page, first


# Installed before the page's own script runs (DevTools, so the page's policy does not
# apply): notes the first claim row in the table when it appears, what else was drawn with
# it, whether the claims' findings were unpacked by then, and when (ms since navigation
# start, on the page's clock: printed, never asserted). bench/html_bench.py uses it too.
WATCH_FIRST_ROW = """
new MutationObserver(function(_, watch){
  var row=document.querySelector('#claims tbody tr[data-status]');
  if(row){window.firstRow={at:performance.now(),id:row.id,status:row.dataset.status,
                           claim:row.cells[0].textContent,
                           rows:document.querySelectorAll('#claims tbody tr').length,
                           details:document.getElementById('claims').dataset.details||null};
          watch.disconnect();}
}).observe(document,{childList:true,subtree:true});
"""


@pytest.mark.slow
def test_a_30000_claim_report_is_small_and_shows_its_first_rejected_claim_at_once(
        chromium, big_report):
    """Issue 27: a 30,000-claim page under 5 MB whose first rejected claim shows at once:
    the page draws one page of rows, the first rejected claim on top, before it unpacks
    the 30,000 claims' findings. Asserted as that order of work, which holds on any
    machine; the time it takes is printed (and measured by bench/html_bench.py)."""
    page, first = big_report
    assert len(first.ids) == BIG and first.first is not None
    size = page.stat().st_size
    assert size < MAX_BYTES, f"{size} bytes"
    data = page_data(page.read_text())
    assert sorted(row[1] for row in data["claims"]) == sorted(first.ids)  # every claim
    watch = chromium.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                     {"source": WATCH_FIRST_ROW})
    try:
        chromium.execute_cdp_cmd("Performance.enable", {})
        chromium.get_log("browser")
        load(chromium, page)
        seen = chromium.execute_script("return window.firstRow")
        metrics = {m["name"]: m["value"] for m in
                   chromium.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    finally:
        chromium.execute_cdp_cmd("Performance.disable", {})
        chromium.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                 {"identifier": watch["identifier"]})
    assert seen is not None, "no claim row appeared"
    assert (seen["status"], seen["claim"]) == ("rejected", first.first[1])
    assert seen["id"] == f"claim-1-{first.first[1]}"
    # drawn before a single claim's findings were unpacked, one page of rows, not 30,000
    assert seen["details"] is None, seen
    assert 0 < seen["rows"] <= PAGE_ROWS, seen
    assert severe(chromium) == []
    def unpacked(driver) -> None:  # the findings do come, after the rows
        assert driver.execute_script(
            "return document.getElementById('claims').dataset.details") == "true"

    eventually(chromium, unpacked)
    cpu = {k: round(metrics[k], 2) for k in ("ThreadTime", "TaskDuration", "ScriptDuration")
           if k in metrics}
    print(f"\n{BIG} claims: page {size} bytes; first rejected row after {round(seen['at'])} ms"
          f" (wall, on this machine's load); main thread s: {cpu}")


def screenshot(target: Path) -> None:
    """docs/sample-report.png: the sample batch report at its claim table, a claim open."""
    folder = Path(tempfile.mkdtemp(prefix="scrub-shot-"))
    try:
        driver = start_chromium(str(folder / "profile"), 1100, 1500)
        try:
            load(driver, sample_page(folder / "report.html"), "#claim-1-ADMIN-A")
            driver.execute_script("document.getElementById('claims-heading').scrollIntoView()")
            driver.save_screenshot(str(target))
        finally:
            driver.quit()
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    screenshot(ROOT / "docs" / "sample-report.png")
