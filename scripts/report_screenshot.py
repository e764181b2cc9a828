"""Build a demo report (synthetic MoCap samples, perturbed-GT pseudo-GTs) and screenshot it in headless
Chromium → docs/report_screenshot.png. Needs `bash scripts/install_system_deps.sh --browser` and selenium.

    .venv/bin/python scripts/report_screenshot.py [--out docs/report_screenshot.png] [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from neuralannot.io.atomic import atomic_write_bytes
from neuralannot.report.browser import headless_chrome, page_problems, screenshot
from neuralannot.report.demo import build_demo_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/report_screenshot.png"))
    ap.add_argument("--keep", type=Path, default=None, help="Write the demo data and report here (kept).")
    ap.add_argument("--n", type=int, default=6, help="Synthetic samples.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        result = build_demo_report(work, work / "report", n=args.n)
        with headless_chrome(width=1280, height=900) as driver:
            problems = page_problems(driver, result["index"])
            if problems:
                raise SystemExit("report has problems: " + "; ".join(problems))
            atomic_write_bytes(args.out, screenshot(driver, result["index"]))
    print(f"screenshot of {result['index']} → {args.out}")


if __name__ == "__main__":
    main()
