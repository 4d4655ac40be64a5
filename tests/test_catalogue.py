"""The catalogue of outputs (analysis/records/catalogue.py): the one list of every table and figure,
which the rules, the report, the docs and the analysis read."""
from __future__ import annotations

import re

import jinja2
import matplotlib
import pytest
from docutils.core import publish_parts

from analysis.records import catalogue
from analysis.records.outputs import write_figure
from analysis.records.provenance import Provenance
from conftest import ROOT, preset_config

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def test_docs_outputs_table_is_the_catalogue():
    text = (ROOT / "docs" / "outputs.md").read_text()
    assert catalogue.with_table(text) == text, (
        "docs/outputs.md's table is not the catalogue's: python -m analysis.records.catalogue "
        "--write docs/outputs.md")


def test_every_name_is_listed_once():
    tables = [t for o in catalogue.OUTPUTS for t in o.tables]
    figures = [f for o in catalogue.OUTPUTS for f in o.figures]
    assert len(tables) == len(set(tables)) and len(figures) == len(set(figures))
    for o in catalogue.OUTPUTS:
        assert set(o.reported) <= set(o.tables), o
        assert o.shows and not o.shows.endswith("."), o  # a clause: docs and captions add the stop


def test_templates_expand_per_sweep_and_task_and_fidelity_only_with_its_section():
    config = {"tasks": ["a", "b"], "audit": {"tasks": ["b", "toy"]},
              "sweeps": [{"name": "s1"}, {"name": "s2"}]}
    assert catalogue.figures_of("diagnostics", config) == [
        "training_diagnostics_a", "training_diagnostics_b", "training_diagnostics_toy"]
    assert catalogue.tables_of("audit", config)[-2:] == ["s1.csv", "s2.csv"]
    assert "s2" in catalogue.figures_of("audit", config)
    assert catalogue.tables_of("fidelity", config) == []
    assert catalogue.figures_of("fidelity", {**config, "fidelity": {"candidate": "x"}}) == [
        "fidelity"]
    files = catalogue.expected_files(config)
    assert "results/tables/s1.csv.provenance.json" in files
    assert "results/figures/s1.caption.rst" in files
    assert "results/tables/run_manifest.json.provenance.json" not in files  # no sidecar
    assert catalogue.row_of("s2.csv", "table", config).category == "Sweeps"
    assert catalogue.table_path("s1.csv", config) == "results/tables/s1.csv"
    with pytest.raises(KeyError, match="not in the catalogue"):
        catalogue.table_path("nonexistent.csv", config)  # not a sweep of this configuration
    with pytest.raises(KeyError, match="not in the catalogue"):
        catalogue.row_of("nonexistent.png", "figure", config)


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "study.yaml", "fidelity.yaml",
                                  "paper.yaml"])
def test_every_preset_asks_for_the_catalogue_and_each_rule_named_exists(name):
    config = preset_config(name)
    files = catalogue.expected_files(config)
    assert len(files) == len(set(files))
    rules = set(re.findall(r"^rule (\w+):", "\n".join(
        p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk")), re.M))
    for o in catalogue.outputs(config):
        assert o.rule in rules and o.drawn_by in rules, o


def render(rst: str) -> str:
    """The report's way: a Jinja template (with the rule's params), then reStructuredText."""
    text = jinja2.Environment().from_string(rst).render(
        snakemake={"params": {"provenance": "config abc · 3 runs"}})
    return publish_parts(text, writer="html",
                         settings_overrides={"report_level": 2, "halt_level": 2})["body"]


def test_table_captions_render_as_written():
    for o in catalogue.OUTPUTS:
        for table in o.reported:
            html = render(catalogue.report_caption(table))
            assert "config abc · 3 runs" in html
            words = re.sub(r"[`*]", "", o.shows).split()[:6]
            assert " ".join(words[1:]) in re.sub(r"<[^>]+>", "", html), table


def test_a_figure_is_written_with_its_caption_for_the_report(tmp_path):
    prov = Provenance(config_hash="cfg", manifest_digest="d", manifest_path="m.json", entries=[],
                      roles=("benchmark",), module="analysis.benchmark.figures")
    caption = "Bar = mean over *seeds* of a_b {{ x }} |y|.\nSecond paragraph [1]."
    fig, ax = plt.subplots()
    fig.text(0, 0, caption + "\n" + prov.footer())
    paths = write_figure(fig, tmp_path, "bound_mass", prov, caption)
    assert [p.name for p in paths] == ["bound_mass.png", "bound_mass.pdf"]
    html = render((tmp_path / "bound_mass.caption.rst").read_text())
    text = re.sub(r"<[^>]+>", "", html)
    assert "Bar = mean over *seeds* of a_b {{ x }} |y|." in text
    assert "Second paragraph [1]." in text and "Provenance: " + prov.footer() in text
    fig, _ = plt.subplots()
    fig.text(0, 0, prov.footer())
    with pytest.raises(KeyError, match="not in the catalogue"):
        write_figure(fig, tmp_path, "not_a_figure", prov, "")
    fig, _ = plt.subplots()
    fig.text(0, 0, prov.footer())
    with pytest.raises(KeyError, match="not an instance"):
        write_figure(fig, tmp_path, "diagnostics_x", prov, "", entry="training_diagnostics_{task}")
    fig, _ = plt.subplots()
    fig.text(0, 0, prov.footer())
    write_figure(fig, tmp_path, "mq_sweep", prov, "", entry="{sweep}")
    assert (tmp_path / "mq_sweep.caption.rst").is_file()
