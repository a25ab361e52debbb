"""How fast a 30,000-claim HTML report shows its first rejected claim (issue 27).

    python bench/html_bench.py [--claims 30000] [--repeat 3]

Generates the test's big report (bench/gen837.py: two thirds 837P, one third
837I, seeds 27 and 28), loads it in headless Chromium ``--repeat`` times and
prints, per load, the page's own clock at the first claim row (ms since
navigation start, wall time) and Chromium's main-thread metrics from DevTools
(``Performance.getMetrics``: ThreadTime is the renderer main thread's CPU time,
TaskDuration and ScriptDuration its busy time). Wall time on a shared machine
says little: compare ThreadTime, and report the load average with any number.
tests/test_html_browser.py asserts the order of work that makes the row come
fast (one page of rows before the findings are unpacked), not the time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from gen837 import generate
    from test_html_browser import WATCH_FIRST_ROW, load, start_chromium

    from scrubber.api import check_files

    with tempfile.TemporaryDirectory(prefix="html-bench-") as folder:
        paths = [Path(folder, "professional.x12"), Path(folder, "institutional.x12")]
        generate(paths[0], args.claims * 2 // 3, kind="P", seed=27)
        generate(paths[1], args.claims - args.claims * 2 // 3, kind="I", seed=28)
        page = Path(folder, "report.html")
        with page.open("w", encoding="utf-8") as out:
            check_files([str(p) for p in paths], out, fmt="html")
        print(f"{args.claims} claims: page {page.stat().st_size} bytes; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        driver = start_chromium(str(Path(folder, "profile")))
        try:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                   {"source": WATCH_FIRST_ROW})
            for n in range(args.repeat):
                driver.execute_cdp_cmd("Performance.enable", {})
                load(driver, page)
                seen = driver.execute_script("return window.firstRow")
                metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd(
                    "Performance.getMetrics", {})["metrics"]}
                driver.execute_cdp_cmd("Performance.disable", {})
                busy = "  ".join(f"{k} {metrics[k]:.2f} s" for k in
                                 ("ThreadTime", "TaskDuration", "ScriptDuration")
                                 if k in metrics)
                print(f"load {n + 1}: first rejected row at {seen['at']:.0f} ms (wall), "
                      f"{seen['rows']} rows drawn, findings unpacked then: "
                      f"{seen['details'] == 'true'}; main thread {busy}")
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
