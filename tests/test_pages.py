"""Pages print the numbers of metrics.json; the site builds strictly from them."""

import re

import numpy as np
import pytest
from conftest import synthetic_metrics, synthetic_run

from nu_keras import charts, pages, site
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError


@pytest.fixture(scope="module")
def metrics():
    acts, weights = synthetic_run()
    return synthetic_metrics(acts, weights, RunConfig())


@pytest.fixture(scope="module")
def rendered(metrics, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    count = pages.render_all(metrics, 5, RunConfig().project_root / "report_templates", out)
    return out, count


def test_filters_format_as_documented():
    assert pages.pct(0.93371) == "93.4 %" and pages.pct(0.5, 0) == "50 %"
    assert pages.pp(0.0123) == "1.2 pp"
    assert pages.fixed(None) == "n/a" and pages.fixed(0.123456, 3) == "0.123"
    assert pages.listing([1, 2, 3]) == "1, 2 and 3" and pages.listing([]) == "none"
    assert pages.untrusted("<b>x</b>") == "<code>&#60;b&#62;x&#60;/b&#62;</code>"


def test_every_page_is_written(rendered):
    out, count = rendered
    names = {str(p.relative_to(out)) for p in out.rglob("*.md")}
    expected = {"index.md", "method.md", "findings.md", "run.md", "neurons/index.md"}
    expected |= {f"digits/digit-{d}.md" for d in range(10)} | {f"neurons/neuron-{n}.md" for n in range(10)}
    assert names == expected and count == len(expected)


def test_home_and_findings_print_the_metrics_numbers(rendered, metrics):
    out, _ = rendered
    home = (out / "index.md").read_text()
    findings = (out / "findings.md").read_text()
    accuracy = pages.pct(metrics["test_accuracy"], 2)
    assert accuracy in home and accuracy in findings
    clear = len(metrics["claim"]["digits_with_dominant_neuron"])
    assert f"**{clear} of 10**" in home and f"**{clear} of 10 digits**" in findings
    for section in ("## Abstract", "## Question", "## Method", "## Results", "## Discussion"):
        assert section in findings
    assert pages.fixed(metrics["selectivity_ablation_spearman"]) in findings


def test_digit_page_prints_its_dominant_neuron_and_table(rendered, metrics):
    out, _ = rendered
    for d in range(10):
        text = (out / f"digits/digit-{d}.md").read_text()
        winner = metrics["dominant_neuron"][d]
        assert f"**Dominant neuron: [neuron {winner}](../neurons/neuron-{winner}.md)**" in text
        assert pages.fixed(metrics["mean_activation"][d][winner]) in text
        assert pages.pct(metrics["dominance"][d][winner], 1) in text


def test_neuron_page_prints_selectivity_dead_fraction_and_drop(rendered, metrics):
    out, _ = rendered
    for n in range(10):
        text = (out / f"neurons/neuron-{n}.md").read_text()
        assert f"Class selectivity index: **{pages.fixed(metrics['selectivity'][n])}**" in text
        assert pages.pct(metrics["dead_fraction"][n], 1) in text
        assert pages.pp(metrics["ablation_importance"][n]) in text
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


def test_a_missing_value_fails_the_render_instead_of_printing_blank(metrics, tmp_path):
    broken = {k: v for k, v in metrics.items() if k != "fit_seconds"}
    with pytest.raises(NuKerasError, match="fit_seconds"):
        pages.render_all(broken, 5, RunConfig().project_root / "report_templates", tmp_path)


def test_a_missing_template_folder_is_a_clear_error(metrics, tmp_path):
    with pytest.raises(NuKerasError, match="not found in"):
        pages.render_all(metrics, 5, tmp_path / "no-templates", tmp_path / "out")


def test_charts_and_strict_site_build_from_synthetic_metrics(metrics, tmp_path):
    acts, weights = synthetic_run()
    images = np.zeros((len(acts["labels"]), 28, 28), np.uint8)
    cfg = RunConfig(pages_dir=tmp_path / "pages", site_dir=tmp_path / "site")
    count = charts.render_all(metrics, acts, weights, images, 5, cfg.pages_dir / "img")
    pages.render_all(metrics, 5, cfg.project_root / "report_templates", cfg.pages_dir)
    site.build(cfg)
    html = (cfg.site_dir / "index.html").read_text()
    assert "mean-activation.png" in html
    sources = set(re.findall(r'<img[^>]*src="([^"]+)"', (cfg.site_dir / "digits/digit-3.html").read_text()))
    assert sources and all((cfg.site_dir / "digits" / s).resolve().exists() for s in sources)
    assert count == len(list((cfg.pages_dir / "img").glob("*.png")))


def test_the_same_inputs_draw_byte_identical_charts(metrics, tmp_path):
    acts, weights = synthetic_run()
    images = np.zeros((len(acts["labels"]), 28, 28), np.uint8)
    first = charts.chart_tasks(metrics, acts, weights, images, 5, tmp_path / "a")
    second = charts.chart_tasks(metrics, acts, weights, images, 5, tmp_path / "b")
    for task_a, task_b in list(zip(first, second, strict=True))[:8]:
        charts._run_task(task_a)
        charts._run_task(task_b)
        assert task_a[1].read_bytes() == task_b[1].read_bytes(), task_a[1].name
