"""Pages print the numbers of metrics.json; the site builds strictly from them."""

import re

import numpy as np
import pytest
from conftest import synthetic_metrics, synthetic_run
from page_fixtures import paper_dataset, paper_subject, write_blank_charts
from test_robustness import tiny_sweep  # noqa: F401  (a fixture)

from nu_keras import charts, pages, site
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError


def with_paper_fields(metrics: dict) -> dict:
    """conftest's synthetic metrics of the paper's network on MNIST, with the generalised report's fields."""
    metrics |= {"dataset": paper_dataset(), "subject": paper_subject(), "spatial_max": None}
    metrics["config"] |= {"dataset": "mnist", "model": None, "layer": None, "pixels": "unit"}
    return metrics


def render(metrics: dict, out, sweep: dict | None = None, templates=None) -> int:
    """render_all with the chart names the pipeline hands it."""
    templates = templates or RunConfig().project_root / "report_templates"
    return pages.render_all(metrics, 5, templates, out, sweep, charts=charts.chart_names(metrics, sweep))


@pytest.fixture(scope="module")
def metrics():
    acts, weights = synthetic_run()
    return with_paper_fields(synthetic_metrics(acts, weights, RunConfig()))


@pytest.fixture(scope="module")
def rendered(metrics, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    count = render(metrics, out)
    return out, count


def test_filters_format_as_documented():
    assert pages.pct(0.93371) == "93.4\u00a0%" and pages.pct(0.5, 0) == "50\u00a0%"
    assert pages.pp(0.0123) == "1.2 pp" and pages.pp(-0.04) == "\u22124.0 pp" and pages.pp(-0.0001) == "0.0 pp"
    assert pages.fixed(None) == "n/a" and pages.fixed(0.123456, 3) == "0.123" and pages.fixed(-0.5) == "\u22120.50"
    assert pages.listing([1, 2, 3]) == "1, 2 and 3" and pages.listing([]) == "none"
    assert pages.count(10000) == "10\u202f000" and pages.count(892) == "892"
    assert pages.pvalue(0.0296) == "p = 0.030" and pages.pvalue(0.0001) == "p < 0.001"
    assert pages.plural(1, "unit") == "1 unit" and pages.plural(3, "unit") == "3 units"
    assert pages.untrusted("<b>x</b>") == "<code>&#60;b&#62;x&#60;/b&#62;</code>"


def test_every_page_is_written(rendered):
    out, count = rendered
    names = {str(p.relative_to(out)) for p in out.rglob("*.md")}
    expected = {"index.md", "method.md", "findings.md", "glossary.md", "run.md", "neurons/index.md"}
    expected |= {f"digits/digit-{d}.md" for d in range(10)} | {f"neurons/neuron-{n}.md" for n in range(10)}
    assert names == expected and count == len(expected)


def test_home_and_findings_print_the_metrics_numbers(rendered, metrics):
    out, _ = rendered
    home = (out / "index.md").read_text()
    findings = (out / "findings.md").read_text()
    accuracy = pages.pct(metrics["test_accuracy"], 2)
    assert accuracy in home and accuracy in findings
    clear = len(metrics["claim"]["digits_with_dominant_unit"])
    assert f"**{clear} of 10**" in home and f"{clear} of 10 digits have a\n**dominant unit**" in findings
    for section in ("## Abstract", "## Question", "## Method", "## Results", "## Discussion"):
        assert section in findings
    assert f"ρ = {pages.fixed(metrics['selectivity_vs_ablation']['zero']['rho'])}" in findings
    for section in ("[Findings]", "[Method]", "[Neurons]", "[Glossary]", "[Run]"):
        assert section in home.split("## Where to go next")[1]


def test_digit_page_names_its_preferred_and_dominant_units_and_ranks_every_unit(rendered, metrics):
    out, _ = rendered
    for d in range(10):
        text = (out / f"digits/digit-{d}.md").read_text()
        preferred = metrics["preferred_unit"][d]
        assert f"**Preferred unit: [neuron {preferred}](../neurons/neuron-{preferred}.md)**" in text
        assert pages.fixed(metrics["mean_activation"][d][preferred]) in text
        dominant = metrics["dominant_unit"][d]
        if dominant is None:
            assert "**No dominant unit.**" in text
        else:
            assert f"**Dominant unit: [neuron {dominant}](../neurons/neuron-{dominant}.md)**" in text
        ranking = text.split("## The digit's ranking of the units")[1].split("##")[0]
        order = [int(n) for n in re.findall(r"^\| \d+ \| \[neuron (\d+)\]", ranking, re.M)]
        assert order == np.argsort(-np.array(metrics["mean_activation"][d]), kind="stable").tolist()


def test_neuron_page_prints_selectivity_dead_fraction_and_drop(rendered, metrics):
    out, _ = rendered
    for n in range(10):
        text = (out / f"neurons/neuron-{n}.md").read_text()
        assert f"Class selectivity index **{pages.fixed(metrics['selectivity'][n])}**" in text
        assert pages.pct(metrics["dead_fraction"][n], 1) in text
        assert pages.pp(metrics["ablation"]["zero"]["importance"][n]) in text
        assert pages.pp(metrics["ablation"]["mean"]["importance"][n]) in text
        ranking = text.split("## The unit's ranking of the digits")[1].split("##")[0]
        order = [int(d) for d in re.findall(r"^\| \d+ \| \[digit (\d)\]", ranking, re.M)]
        assert order == np.argsort(-np.array(metrics["mean_activation"])[:, n], kind="stable").tolist()
        votes = np.array(metrics["output_weights"][n])
        assert f"vote is for digit **{votes.argmax()}** (weight {pages.fixed(votes.max())})" in text


def test_untrusted_strings_are_escaped(rendered):
    out, _ = rendered
    run = (out / "run.md").read_text()
    assert "synthetic &#60;test&#62; &#38; co" in run and "<test>" not in run


def test_every_image_has_alt_text(rendered):
    out, _ = rendered
    for page in out.rglob("*.md"):
        for alt in re.findall(r"!\[(.*?)\]\(", page.read_text()):
            assert len(alt) > 20, f"{page}: alt text too short: {alt!r}"


def test_every_chart_has_a_visible_caption_under_it(rendered):
    out, _ = rendered
    for page in out.rglob("*.md"):
        lines = [line for line in page.read_text().splitlines() if line.strip()]
        for i, line in enumerate(lines):
            if line.startswith("!["):
                assert lines[i + 1].startswith("*How to read it:*"), f"{page.name}: {line[:60]}"


def test_a_missing_value_fails_the_render_instead_of_printing_blank(metrics, tmp_path):
    broken = {k: v for k, v in metrics.items() if k != "fit_seconds"}
    with pytest.raises(NuKerasError, match="fit_seconds"):
        render(broken, tmp_path)


def test_a_missing_template_folder_is_a_clear_error(metrics, tmp_path):
    with pytest.raises(NuKerasError, match="not found in"):
        render(metrics, tmp_path / "out", templates=tmp_path / "no-templates")


def test_strict_site_build_shows_every_named_chart(metrics, tmp_path):
    """The pages show the files `charts.chart_names` names (drawn here as blank PNGs: drawing them is the
    charts' tests' business), and the strict MkDocs build finds every one."""
    cfg = RunConfig(pages_dir=tmp_path / "pages", site_dir=tmp_path / "site")
    names = charts.chart_names(metrics, None)
    write_blank_charts(names, cfg.pages_dir)
    render(metrics, cfg.pages_dir)
    site.build(cfg)
    html = (cfg.site_dir / "index.html").read_text()
    assert names["overview"]["mean_activation"] in html
    sources = set(re.findall(r'<img[^>]*src="([^"]+)"', (cfg.site_dir / "digits/digit-3.html").read_text()))
    assert sources == {"../" + path for path in names["classes"][3].values()}
    assert all((cfg.site_dir / "digits" / s).resolve().exists() for s in sources)


def test_the_same_inputs_draw_byte_identical_charts(metrics, tmp_path):
    acts, weights = synthetic_run()
    images = np.zeros((len(acts["labels"]), 28, 28), np.uint8)
    first = charts.chart_tasks(metrics, acts, weights, images, 5, tmp_path / "a")
    second = charts.chart_tasks(metrics, acts, weights, images, 5, tmp_path / "b")
    for task_a, task_b in list(zip(first, second, strict=True))[:8]:
        charts._run_task(task_a)
        charts._run_task(task_b)
        assert task_a[1].read_bytes() == task_b[1].read_bytes(), task_a[1].name


NEGATION = re.compile(r"\b(no|not|none|nor|without)\b", re.I)


def _statements(markdown: str) -> list[str]:
    """Sentences of the prose and rows of the tables, one string each."""
    statements = []
    for block in re.split(r"\n\s*\n", markdown):
        lines = block.splitlines()
        if lines and all(line.startswith("|") for line in lines):
            statements += lines
        else:
            statements += re.split(r"(?<=[.;])\s+(?=[A-Z*\[])", " ".join(lines))
    return statements


def _affirms_dominance(statement: str) -> bool:
    return "dominant" in statement.lower() and not NEGATION.search(statement)


@pytest.fixture(scope="module")
def preferred_not_dominant(tmp_path_factory):
    """A run in which digit 9's preferred unit (largest mean) wins on none of its images."""
    acts, weights = synthetic_run()
    hidden, labels = acts["hidden"].copy(), acts["labels"]
    nines = np.flatnonzero(labels == 9)
    hidden[nines] = 0.0
    hidden[nines[:3], 9] = 50.0  # three huge responses give unit 9 the largest mean ...
    hidden[nines[3:], 0] = 1.0  # ... while unit 0 wins on the other 27 images
    hidden[nines[3:], 9] = 0.0
    acts = {**acts, "hidden": hidden}
    metrics = with_paper_fields(synthetic_metrics(acts, weights, RunConfig()))
    assert metrics["preferred_unit"][9] == 9 and metrics["dominant_unit"][9] == 0
    assert 9 not in metrics["dominant_unit"]
    out = tmp_path_factory.mktemp("vocabulary")
    render(metrics, out)
    return out, metrics


def test_no_page_calls_a_preferred_but_not_dominant_unit_dominant(preferred_not_dominant):
    out, metrics = preferred_not_dominant
    link = re.compile(r"\[neuron 9\]\(")
    for page in out.rglob("*.md"):
        for statement in _statements(page.read_text()):
            if _affirms_dominance(statement):
                assert not link.search(statement), f"{page.name}: {statement}"
    for statement in _statements((out / "neurons/neuron-9.md").read_text()):
        assert not _affirms_dominance(statement), f"neuron-9.md: {statement}"
    digit = (out / "digits/digit-9.md").read_text()
    assert "**Preferred unit: [neuron 9]" in digit and "**Dominant unit: [neuron 0]" in digit


def test_run_page_shows_paths_relative_to_the_project(metrics, tmp_path):
    root = RunConfig().project_root
    config = {**metrics["config"], "out": str(root / "artifacts"), "site_dir": "/somewhere/deep/site"}
    render({**metrics, "config": config}, tmp_path)
    run = (tmp_path / "run.md").read_text()
    assert "<code>artifacts</code>" in run and "<code>…/deep/site</code>" in run
    assert str(root) not in run and "/somewhere" not in run


def test_pages_render_when_a_rank_correlation_is_undefined(metrics, tiny_sweep, tmp_path):  # noqa: F811
    """Constant selectivity (dead or identical units, as on degenerate data) leaves every rho undefined."""
    import copy

    sweep, _ = tiny_sweep
    undefined = copy.deepcopy(metrics) | {
        "selectivity_vs_ablation": {"zero": None, "mean": None},
        "selectivity_vs_preferred_drop": None,
    }
    sweep = copy.deepcopy(sweep)
    for entry in sweep["widths"].values():
        entry["summary"]["selectivity_vs_ablation_pooled"] = {"zero": None, "mean": None}
        for model in entry["models"]:
            model["selectivity_vs_ablation"] = {"zero": None, "mean": None}
    render(undefined, tmp_path, sweep)
    assert "ρ undefined (one side is constant)" in (tmp_path / "index.md").read_text()
