#!/usr/bin/env bash
# Regenerates docs/gallery/ (the PNGs of a fixed set of commands: those of docs/first_hour.sh) and
# docs/gallery.md. Figures are shrunk to 70% to keep the folder small.
#
#   docs/gallery.sh [RUNS_DIR]      (default runs/first_hour: runs already finished there are reused)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/first_hour}
docs/first_hour.sh "$RUNS"
rm -rf docs/gallery
mkdir -p docs/gallery
.venv/bin/python - "$RUNS" <<'PY'
import sys
from pathlib import Path

from PIL import Image

runs, out = Path(sys.argv[1]), Path("docs/gallery")
lines = [
    "# Gallery: every figure of docs/first_hour.sh",
    "",
    "Regenerate with `docs/gallery.sh` (it reruns what is missing of `docs/first_hour.sh`, then copies the",
    "figures here, shrunk to 70%). `tests/test_figures.py` checks the layout of",
    "every kind of figure on quick runs.",
    "",
]
for run in sorted(p for p in runs.iterdir() if p.is_dir()):
    figures = sorted(run.glob("plots/*.png")) + sorted(run.glob("*.png"))
    if not figures:
        continue
    lines += [f"## {run.name}", ""]
    for figure in figures:
        name = f"{run.name}__{figure.name}"
        image = Image.open(figure)
        image = image.resize((int(image.width * 0.7), int(image.height * 0.7)), Image.LANCZOS)
        image.convert("RGB").quantize(colors=128).save(out / name, optimize=True)
        lines += [f"`{figure.relative_to(run)}`", "", f"![{name}](gallery/{name})", ""]
Path("docs/gallery.md").write_text("\n".join(lines))
print(f"{len(list(out.iterdir()))} figures in {out}, listed in docs/gallery.md")
PY
