"""Regenerate docs/report.png, the README's picture of a report: `python docs/make_screenshot.py`.

Writes the report of a bundled sample, opens it in headless Chromium (tests/browser.py) and keeps
the top of the page, reduced to a small palette so the picture stays small.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from browser import Browser  # noqa: E402

SAMPLE = "sample_checkpoints/keras3_archive/model.keras"


def main() -> None:
    from PIL import Image  # installed with matplotlib (gruinspect[plot])

    with tempfile.TemporaryDirectory() as tmp:
        page, shot = os.path.join(tmp, "report.html"), os.path.join(tmp, "shot.png")
        subprocess.run([sys.executable, "-m", "gruinspect", "report", SAMPLE, "--out", page], check=True, cwd=ROOT)
        with Browser() as browser:
            visit, _ = browser.open(page, width=1100, height=900, screenshot=shot, max_height=1450)
        if visit.problems:
            raise SystemExit(f"the page had problems: {visit.problems}")
        image = Image.open(shot).convert("RGB").quantize(colors=96, dither=Image.Dither.NONE)
        image.save(os.path.join(ROOT, "docs", "report.png"), optimize=True)


if __name__ == "__main__":
    main()
