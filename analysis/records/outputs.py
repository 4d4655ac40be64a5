"""Writing the analysis outputs: every table and figure goes through here.

Files are written with ``qsm.contract.rundir``'s atomic writers (a temporary file in the same
folder, renamed into place), so a killed job never leaves a torn table or image, and every output is
written with its provenance (``analysis/records/provenance.py``): tables with a sidecar
``<name>.provenance.json``, figures with a footer line in their caption and the same facts in
their PNG/PDF metadata. Bytes depend only on the data, the configuration and the code: no
timestamps, no software stamps. Every figure is one of the catalogue's
(``analysis/records/catalogue.py``), and its caption is written beside it for the HTML report.
"""
from __future__ import annotations

import io
from pathlib import Path

from analysis.records.catalogue import CAPTION_SUFFIX, check_figure, rst_escape
from analysis.records.provenance import Provenance, sidecar_path
from qsm.contract.rundir import atomic_write_bytes, atomic_write_json, atomic_write_text


def write_table(path, content, provenance: Provenance, used, float_format=None,
                extra=None) -> Path:
    """Write a table (a DataFrame as CSV, or text such as markdown) and its provenance sidecar;
    `used`: manifest paths of the runs whose data entered the table; `extra`: more facts for
    the sidecar."""
    path = Path(path)
    text = content if isinstance(content, str) else content.to_csv(index=False,
                                                                   float_format=float_format)
    atomic_write_text(path, text)
    atomic_write_json(sidecar_path(path), {**provenance.record(path.name, used), **(extra or {})})
    return path


def write_figure(fig, outdir, name, provenance: Provenance, caption: str, used=None,
                 dpi=150, entry=None) -> list[Path]:
    """PNG and PDF of `fig`, whose caption (drawn on it) must end with the provenance footer; the
    footer and summary also go into the files' metadata. `caption`, the text drawn, unwrapped
    (paragraphs one per line), is also written beside the images as the HTML report's caption
    (<name>.caption.rst). `entry`: the figure's name in the catalogue
    (analysis/records/catalogue.py), by default `name`; of a figure drawn per sweep or task, its
    template (e.g. "{sweep}"), which `name` must instantiate. Closes the figure."""
    import matplotlib.pyplot as plt

    try:
        check_figure(name, entry)
    except KeyError:
        plt.close(fig)
        raise
    footer = " ".join(provenance.footer().split())
    if not any(footer in " ".join(t.get_text().split()) for t in fig.texts):  # wrapped or not
        plt.close(fig)
        raise ValueError(f"figure {name!r} has no provenance footer in its caption")
    meta = provenance.figure_metadata(used)
    outdir = Path(outdir)
    paths = []
    # no software stamp or creation date: the same inputs give the same bytes
    for ext, info in (("png", {"Software": None, **meta["png"]}),
                      ("pdf", {"CreationDate": None, "Producer": None, **meta["pdf"]})):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=dpi, metadata=info)
        path = outdir / f"{name}.{ext}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    paragraphs = [p for p in caption.split("\n") if p.strip()]
    if not paragraphs or " ".join(paragraphs[-1].split()) != footer:
        paragraphs.append(provenance.footer())
    paragraphs[-1] = "Provenance: " + paragraphs[-1]
    text = "\n\n".join(rst_escape(p) for p in paragraphs) + "\n"
    atomic_write_text(outdir / f"{name}{CAPTION_SUFFIX}", text)
    return paths


def counted(n, noun: str) -> str:
    """'1 seed', '3 seeds': a count with its noun, as every table, caption and finding says it."""
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"
