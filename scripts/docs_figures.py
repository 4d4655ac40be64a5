"""Copy a few of the demo's figures, shrunk, to docs/figures/ for the README.

    python scripts/docs_figures.py [--figures results/figures] [--width 900]

Run it after `bash scripts/demo.sh` (the default preset); it rewrites docs/figures/*.png.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("learning_curves", "bound_mass", "training_diagnostics_toy_bimodal")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--figures", default=str(ROOT / "results" / "figures"),
                    help="the pipeline's figures (default: %(default)s)")
    ap.add_argument("--width", type=int, default=900, help="width in pixels (default: %(default)s)")
    a = ap.parse_args(argv)
    out = ROOT / "docs" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        source = Path(a.figures) / f"{name}.png"
        if not source.is_file():
            print(f"error: {source} is missing: run the demo first (bash scripts/demo.sh)",
                  file=sys.stderr)
            return 1
        image = Image.open(source)
        if image.width > a.width:
            image = image.resize((a.width, round(image.height * a.width / image.width)),
                                 Image.LANCZOS)
        image.convert("RGB").quantize(colors=128).save(out / f"{name}.png", optimize=True)
        print(f"{out / name}.png: {(out / f'{name}.png').stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
