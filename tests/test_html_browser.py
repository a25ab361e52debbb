"""The HTML batch report in a real browser (Debian's Chromium, driven by Selenium).

The chart is drawn with bars as long as the counts say, the filters hide the
right rows, the sort sorts, a link to another claim lands on it, and the
page logs no console error. Needs /usr/bin/chromium and /usr/bin/chromedriver
(.ci/install-browser); skipped without them, except under CI=true, where a
missing browser is a failure. Never lets Selenium download a browser.

Run as a script to refresh docs/sample-report.png:
``python tests/test_html_browser.py``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_summary import sample

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
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


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run in CI: {missing}")
        pytest.skip(missing)
    folder = tmp_path_factory.mktemp("browser")
    driver = start_chromium(str(folder / "profile"))
    try:
        driver.get(sample_page(folder / "report.html").as_uri())
        yield driver
    finally:
        driver.quit()


def _visible_rows(driver) -> list:
    from selenium.webdriver.common.by import By

    return [row for row in driver.find_elements(By.CSS_SELECTOR, "#claims tbody tr")
            if row.is_displayed()]


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


def test_filters_hide_the_right_rows_and_the_header_sorts(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    every = _visible_rows(browser)
    assert len(every) >= 5
    assert browser.find_element(By.ID, "shown").text == str(len(every))
    rule = Select(browser.find_element(By.NAME, "rule"))
    rule.select_by_value("96523-units")
    shown = _visible_rows(browser)
    assert shown and len(shown) < len(every)
    assert all("96523-units" in row.find_elements(By.TAG_NAME, "td")[7].text.split()
               for row in shown)
    hidden = [row for row in browser.find_elements(By.CSS_SELECTOR, "#claims tbody tr")
              if not row.is_displayed()]
    assert all("96523-units" not in row.get_attribute("data-rules").split() for row in hidden)
    rule.select_by_value("")
    status = Select(browser.find_element(By.NAME, "status"))
    present = {row.get_attribute("data-status") for row in every}
    assert "rejected" in present
    for value in ("rejected", "warned"):
        status.select_by_value(value)
        shown_now = {row.get_attribute("data-status") for row in _visible_rows(browser)}
        assert shown_now == ({value} if value in present else set())
    status.select_by_value("")
    assert len(_visible_rows(browser)) == len(every)
    browser.find_element(By.XPATH, "//table[@id='claims']//th[text()='charge']").click()
    charges = [float(row.find_elements(By.TAG_NAME, "td")[3].text)
               for row in _visible_rows(browser)]
    assert charges == sorted(charges)


def test_a_link_to_another_claim_lands_on_it(browser):
    from selenium.webdriver.common.by import By

    link = browser.find_element(By.CSS_SELECTOR, "a.related")
    target = link.get_attribute("href").split("#", 1)[1]
    browser.execute_script("window.scrollTo(0, 0)")
    link.click()
    assert browser.execute_script("return location.hash") == f"#{target}"
    top = browser.execute_script(
        f"return document.getElementById({target!r}).getBoundingClientRect().top")
    assert abs(top) < 5  # the named claim is at the top of the window
    assert browser.execute_script("return window.scrollY") > 0


def test_no_console_errors(browser):
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def screenshot(target: Path) -> None:
    """docs/sample-report.png: the top of the sample batch report."""
    folder = Path(tempfile.mkdtemp(prefix="scrub-shot-"))
    try:
        driver = start_chromium(str(folder / "profile"), 1100, 1500)
        try:
            driver.get(sample_page(folder / "report.html").as_uri())
            driver.save_screenshot(str(target))
        finally:
            driver.quit()
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    screenshot(ROOT / "docs" / "sample-report.png")
