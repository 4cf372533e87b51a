"""Pages print the numbers of the measurement record; the site builds strictly from them."""

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import page_fixtures
import pytest
from conftest import synthetic_record, synthetic_run
from page_fixtures import paper_fields, write_blank_charts
from test_robustness import tiny_sweep  # noqa: F401  (a fixture)

from nu_keras import charts, pages, site
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError


def render(record, out, sweep: dict | None = None, templates=None) -> int:
    """render_all with the chart names the pipeline hands it."""
    templates = templates or RunConfig().project_root / "report_templates"
    return pages.render_all(record, 5, templates, out, sweep, charts=charts.chart_names(record, sweep))


@pytest.fixture(scope="module")
def metrics():
    """The record of conftest's synthetic run of the paper's network on MNIST."""
    return paper_fields(synthetic_record(*synthetic_run(), RunConfig()))


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
    expected = {
        "index.md",
        "method.md",
        "findings.md",
        "glossary.md",
        "run.md",
        "api.md",
        "neurons/index.md",
        "digits/index.md",
    }
    expected |= {f"digits/digit-{d}.md" for d in range(10)} | {f"neurons/neuron-{n}.md" for n in range(10)}
    assert names == expected and count == len(expected)


def test_home_and_findings_print_the_metrics_numbers(rendered, metrics):
    out, _ = rendered
    home = (out / "index.md").read_text()
    findings = (out / "findings.md").read_text()
    accuracy = pages.pct(metrics.test_accuracy, 2)
    assert accuracy in home and accuracy in findings
    clear = len(metrics.claim["classes_with_dominant_unit"])
    assert (
        f"**{clear} of 10**" in home and f"By the paper's measure {clear} of 10 digits have a dominant unit" in findings
    )
    for section in ("## Abstract", "## Question", "## Method", "## Results", "## Discussion"):
        assert section in findings
    assert f"ρ = {pages.fixed(metrics.correlations['selectivity_vs_ablation']['zero']['rho'])}" in findings
    for section in ("[Findings]", "[Method]", "[Neurons]", "[Glossary]", "[Run]"):
        assert section in home.split("## Where to go next")[1]


def test_digit_page_names_its_preferred_and_dominant_units_and_ranks_every_unit(rendered, metrics):
    out, _ = rendered
    for d in range(10):
        text = (out / f"digits/digit-{d}.md").read_text()
        preferred = metrics.per_class.top_unit[d]
        assert f"**Preferred unit: [neuron {preferred}](../neurons/neuron-{preferred}.md)**" in text
        assert pages.fixed(metrics.class_unit.mean[d][preferred]) in text
        dominant = metrics.per_class.dominant_unit[d]
        if dominant is None:
            assert "**No dominant unit.**" in text
        else:
            assert f"**Dominant unit: [neuron {dominant}](../neurons/neuron-{dominant}.md)**" in text
        ranking = text.split("## The digit's ranking of the units")[1].split("##")[0]
        order = [int(n) for n in re.findall(r"^\| \d+ \| \[neuron (\d+)\]", ranking, re.M)]
        assert order == np.argsort(-metrics.class_unit.mean[d], kind="stable").tolist()


def test_neuron_page_prints_selectivity_dead_fraction_and_drop(rendered, metrics):
    out, _ = rendered
    for n in range(10):
        text = (out / f"neurons/neuron-{n}.md").read_text()
        assert f"Class selectivity index **{pages.fixed(metrics.per_unit.selectivity[n])}**" in text
        assert pages.pct(metrics.per_unit.dead_fraction[n], 1) in text
        assert pages.pp(metrics.ablation["zero"]["importance"][n]) in text
        assert pages.pp(metrics.ablation["mean"]["importance"][n]) in text
        ranking = text.split("## The unit's ranking of the digits")[1].split("##")[0]
        order = [int(d) for d in re.findall(r"^\| \d+ \| \[digit (\d)\]", ranking, re.M)]
        assert order == np.argsort(-metrics.class_unit.mean[:, n], kind="stable").tolist()
        votes = metrics.per_unit.output_weights[n]
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
    dataset = {k: v for k, v in metrics.provenance.dataset.items() if k != "n_train"}
    broken = dataclasses.replace(metrics, provenance=dataclasses.replace(metrics.provenance, dataset=dataset))
    with pytest.raises(NuKerasError, match="n_train"):
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
    first = charts.chart_tasks(metrics, 5, tmp_path / "a", None)
    second = charts.chart_tasks(metrics, 5, tmp_path / "b", None)
    for task_a, task_b in list(zip(first, second, strict=True))[:8]:
        charts._run_task(task_a)
        charts._run_task(task_b)
        assert task_a[1].read_bytes() == task_b[1].read_bytes(), task_a[1].name


def test_charts_are_drawn_by_the_workers_they_are_handed_and_those_end_with_their_block(metrics, tmp_path, monkeypatch):
    """`report` forks its chart workers before Keras is imported (`workers.early_pool`) and hands them down:
    `render_all` draws with them rather than start a pool of its own, and no worker outlives the block."""
    import multiprocessing

    from nu_keras import workers

    some = charts.chart_tasks(metrics, 1, tmp_path, None)[:6]
    monkeypatch.setattr(charts, "chart_tasks", lambda *args: some)
    with workers.early_pool() as pool:
        assert pool is not None, "this test needs two cores"
        monkeypatch.setattr(multiprocessing, "get_context", lambda *args: pytest.fail("a second pool was started"))
        drawn = charts.render_all(metrics, 1, tmp_path, None, pool)
    assert drawn == 6 and all(task[1].is_file() for task in some)
    assert not any(process.is_alive() for process in pool._pool)


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
    hidden, labels = acts["units"].copy(), acts["labels"]
    nines = np.flatnonzero(labels == 9)
    hidden[nines] = 0.0
    hidden[nines[:3], 9] = 50.0  # three huge responses give unit 9 the largest mean ...
    hidden[nines[3:], 0] = 1.0  # ... while unit 0 wins on the other 27 images
    hidden[nines[3:], 9] = 0.0
    acts = {**acts, "units": hidden}
    metrics = paper_fields(synthetic_record(acts, weights, RunConfig()))
    assert metrics.per_class.top_unit[9] == 9 and metrics.per_class.dominant_unit[9] == 0
    assert 9 not in metrics.per_class.dominant_unit
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
    config = {**metrics.provenance.config, "out": str(root / "artifacts"), "site_dir": "/somewhere/deep/site"}
    render(dataclasses.replace(metrics, provenance=dataclasses.replace(metrics.provenance, config=config)), tmp_path)
    run = (tmp_path / "run.md").read_text()
    assert "<code>artifacts</code>" in run and "<code>…/deep/site</code>" in run
    assert str(root) not in run and "/somewhere" not in run


def test_pages_render_when_a_rank_correlation_is_undefined(metrics, tiny_sweep, tmp_path):  # noqa: F811
    """Constant selectivity (dead or identical units, as on degenerate data) leaves every rho undefined."""
    import copy

    sweep, _ = tiny_sweep
    correlations = {
        "selectivity_vs_ablation": {"zero": None, "mean": None},
        "selectivity_vs_preferred_class_drop": None,
    }
    undefined = dataclasses.replace(metrics, correlations=correlations)
    sweep = copy.deepcopy(sweep)
    for entry in sweep["widths"].values():
        entry["summary"]["selectivity_vs_ablation_pooled"] = {"zero": None, "mean": None}
        for model in entry["models"]:
            model["selectivity_vs_ablation"] = {"zero": None, "mean": None}
    render(undefined, tmp_path, sweep)
    assert "ρ undefined (one side is constant)" in (tmp_path / "index.md").read_text()


# ------------------------------------------------------------- any data set, any layer (tests/page_fixtures.py)

KINDS = {
    "mnist": page_fixtures.paper_record,
    "fashion": lambda: page_fixtures.paper_record("fashion-mnist"),
    "user-conv": page_fixtures.user_conv_record,
    "user-dense": page_fixtures.user_dense_record,
}


@pytest.fixture(scope="module", params=list(KINDS))
def report(request, tmp_path_factory):
    """(kind, record, chart names, pages folder) for each kind of report, rendered once."""
    metrics, names = KINDS[request.param]()
    out = tmp_path_factory.mktemp(request.param)
    pages.render_all(metrics, 5, RunConfig().project_root / "report_templates", out, charts=names)
    return request.param, metrics, names, out


IMAGE = r"\]\(([^)\s]+\.(?:png|svg|jpg))\)"  # an image's target (alt texts may hold brackets: "[0, 1]")


def _prose(text: str) -> str:
    """A page's words without code spans (setting names), the paper's title and quotations from it."""
    text = re.sub(r'\*"[^"]*"\*', "", text)  # *"In the condition of ... does a neuron depict ..."*
    return re.sub(r"<code>.*?</code>", "", text).replace("Neuron Understanding", "")


def test_every_class_and_unit_page_is_written_where_the_layout_says(report):
    kind, metrics, _, out = report
    classes, units = len(metrics.classes), len(metrics.units)
    class_page, unit_page = {
        "mnist": ("digits/digit-{}.md", "neurons/neuron-{}.md"),
        "fashion": ("classes/class-{}.md", "neurons/neuron-{}.md"),
    }.get(kind, ("classes/class-{}.md", "units/unit-{}.md"))
    expected = {class_page.format(d) for d in range(classes)} | {unit_page.format(n) for n in range(units)}
    expected |= {unit_page.rsplit("/", 1)[0] + "/index.md", class_page.rsplit("/", 1)[0] + "/index.md"}
    expected |= {"index.md", "findings.md", "method.md", "glossary.md"}
    assert expected | {"run.md", "api.md"} == {str(p.relative_to(out)) for p in out.rglob("*.md")}


def test_fashion_pages_name_their_classes_and_never_say_digit(report):
    kind, _, _, out = report
    if kind != "fashion":
        pytest.skip("Fashion-MNIST only")
    assert "# Trouser" in (out / "classes/class-1.md").read_text()
    assert "[Ankle boot](../classes/class-9.md)" in (out / "neurons/index.md").read_text()
    for page in out.rglob("*.md"):
        assert not re.search(r"\bdigits?\b", _prose(page.read_text()), re.I), page.name


def test_a_user_layer_is_never_called_neurons_and_has_no_training_or_verdict(report):
    kind, metrics, _, out = report
    if not kind.startswith("user"):
        pytest.skip("user subjects only")
    word = "channel" if metrics.provenance.subject["layer_kind"] == "conv" else "unit"
    for page in out.rglob("*.md"):
        text = _prose(page.read_text())
        assert not re.search(r"\bneurons?\b", text, re.I), page.name
        assert not re.search(r"\bdigits?\b", text, re.I), page.name
        assert "## Training" not in text and not re.search(r"\bseed \d", text), page.name
        assert "**holds**" not in text and "does not hold" not in text, page.name
    assert not (out / "robustness.md").exists() and not (out / "explore.md").exists()
    assert f"# {word.capitalize()} 3" in (out / "units/unit-3.md").read_text()
    assert "safe_mode=True" in (out / "method.md").read_text()
    for page in ("index.md", "findings.md"):
        assert "no verdict over seeds is passed" in (out / page).read_text(), page


def test_pages_show_only_the_charts_they_are_handed(report):
    """Every image on a page is a chart of `chart_names`; a class or unit page shows exactly its own."""
    _, metrics, names, out = report
    named = set(names["overview"].values())
    for group in ("classes", "units"):
        named |= {path for row in names[group] for path in row.values()}
    for page in out.rglob("*.md"):
        shown = {s.removeprefix("../") for s in re.findall(IMAGE, page.read_text())}
        assert shown <= named, (page.name, shown - named)
    context = pages.build_context(metrics, 5, names)
    for rows, group in ((context["class_rows"], "classes"), (context["unit_rows"], "units")):
        for row, charts_of_row in zip(rows, names[group], strict=True):
            shown = {s.removeprefix("../") for s in re.findall(IMAGE, (out / row["page"]).read_text())}
            wanted = set(charts_of_row.values())
            if metrics.layer.signed:
                wanted.discard(charts_of_row.get("silent"))
            assert shown == wanted, row["page"]


def test_a_signed_layer_shows_selectivity_and_silence_as_not_applicable(report):
    kind, _, names, out = report
    if kind != "user-conv":
        pytest.skip("the signed conv layer only")
    unit = (out / "units/unit-0.md").read_text()
    assert "not defined" in unit and "Class selectivity index" not in unit and "spatial max" in unit
    overview = (out / "units/index.md").read_text()
    assert "**Most selective**" not in overview and "**Most often silent**" not in overview
    assert names["overview"]["selectivity_vs_ablation"] not in (out / "index.md").read_text()


def test_units_overview_sorts_by_every_measure_and_names_the_top_ten(report):
    kind, metrics, _, out = report
    if kind != "user-dense":
        pytest.skip("the 256-unit layer only")
    text = (out / "units/index.md").read_text()
    table = text.split('<div class="nk-sortable" markdown="1">')[1].split("</div>")[0]
    assert len(re.findall(r"^\| \[unit \d+\]", table, re.M)) == 256
    for header in ("selectivity index", "η²", "silent on", "accuracy lost, zeroed", "accuracy lost, set to its mean"):
        assert header in table.splitlines()[2]
    importance = np.array(metrics.ablation["zero"]["importance"])
    top = text.split("**Most important** (accuracy lost when zeroed")[1].split("\n")[0]
    listed = [int(n) for n in re.findall(r"\[unit (\d+)\]", top)]
    assert listed == np.argsort(-importance, kind="stable")[:10].tolist()
    for title in ("**Most selective**", "**Most often silent**", "**Most important when set to its mean**"):
        assert len(re.findall(r"\[unit \d+\]", text.split(title)[1].split("\n")[0])) == 10


def test_the_nav_lists_each_overview_then_at_most_32_classes_and_32_units(report):
    kind, metrics, _, out = report
    settings = json.loads((out / pages.NAV_FILE).read_text())
    (classes,), (units,) = (section.values() for section in settings["nav"])
    listed_classes = len(metrics.classes)
    assert len(classes) == 1 + listed_classes and classes[0] == {"Overview": pages.layout(metrics).classes_index}
    listed = len(metrics.units) if len(metrics.units) <= 32 else 0
    assert len(units) == 1 + listed and units[0] == {"Overview": pages.layout(metrics).units_index}
    if kind == "fashion":
        assert list(classes[2]) == ["Trouser"] and "Fashion-MNIST" in settings["site_name"]
    if kind == "mnist":
        assert list(settings["nav"][0]) == ["Digits"] and list(settings["nav"][1]) == ["Neurons"]
        assert classes[4] == {"Digit 3": "digits/digit-3.md"} and units[4] == {"Neuron 3": "neurons/neuron-3.md"}


@pytest.mark.parametrize("kind", ["user-conv", "user-dense"])
def test_a_user_report_builds_strictly_and_the_theme_prints_no_user_markup(kind, tmp_path):
    metrics, names = KINDS[kind]()
    cfg = RunConfig(pages_dir=tmp_path / "pages", site_dir=tmp_path / "site")
    page_fixtures.write_blank_charts(names, cfg.pages_dir)
    pages.render_all(metrics, 5, cfg.project_root / "report_templates", cfg.pages_dir, charts=names)
    site.build(cfg)
    built = list(cfg.site_dir.rglob("*.html"))
    assert len(built) > len(metrics.units) and not (cfg.site_dir / pages.NAV_FILE).exists()
    for page in built:
        html = page.read_text()
        assert "<script>alert" not in html and "<img src=x" not in html and "<i>x" not in html, page.name
    home = (cfg.site_dir / "index.html").read_text()
    assert "sortable.js" in home and 'href="units/index.html"' in home
    nav = re.findall(r'class="md-nav__link"[^>]*href="([^"]+)"', home) or re.findall(r'href="([^"]+)"', home)
    assert any("classes/class-3.html" in link for link in nav)


def test_render_time_grows_about_linearly_with_units(tmp_path):
    """A loose sanity bound (timing targets live in the benchmark): 256 units cost well under 30x 10 units'."""
    import time

    templates = RunConfig().project_root / "report_templates"
    seconds = {}
    for units in (10, 256):
        metrics, names = page_fixtures.user_dense_record(units)
        start = time.perf_counter()
        pages.render_all(metrics, 5, templates, tmp_path / str(units), charts=names)
        seconds[units] = time.perf_counter() - start
    assert seconds[256] < 30 * seconds[10] + 0.5, seconds


def test_the_sort_script_orders_numbers_as_printed_and_leaves_n_a_last(tmp_path):
    node = shutil.which("node")
    if not node:
        pytest.skip("Node.js is not installed")
    cases = [
        {"texts": ["\u22121.0 pp", "12.0 pp", "2.5 pp", "n/a"], "descending": False},
        {"texts": ["\u22121.0 pp", "12.0 pp", "2.5 pp", "n/a"], "descending": True},
        {"texts": ["unit 10", "unit 9", "unit 100"], "descending": False},
        {"texts": ["50.0\u00a0%", "5.0\u00a0%", "50.0\u00a0%"], "descending": True},
        {"texts": ["Trouser", "ankle boot", "Bag"], "descending": False},
    ]
    request = tmp_path / "cases.json"
    request.write_text(json.dumps(cases))
    script = RunConfig().project_root / "docs/overrides/assets/javascripts/sortable.js"
    harness = Path(__file__).parent / "sortable_harness.js"
    done = subprocess.run([node, str(harness), str(script), str(request)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [[0, 2, 1, 3], [1, 2, 0, 3], [1, 0, 2], [0, 2, 1], [1, 2, 0]]
