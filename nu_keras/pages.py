"""Fill the Jinja2 Markdown templates in report_templates/ from metrics.json.

Templates only loop and format; every number they print comes from the context built here, and a
missing value fails the render (StrictUndefined) instead of printing a blank.

Every string printed with `{{ }}` is escaped for Markdown *and* HTML unless it is `Markup` (what our
macros and the `untrusted` filter produce): a path, a data source or a layer name can hold
`[x](javascript:...)` or `<script>`, and must reach the page as text. Templates run sandboxed, since
`--templates` lets a user bring their own.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import jinja2.sandbox
from markupsafe import Markup

from nu_keras import artifacts
from nu_keras.errors import NuKerasError

PAGES = {  # template -> output path (relative to the pages folder); per-digit and per-neuron pages below
    "index.md.j2": "index.md",
    "method.md.j2": "method.md",
    "neurons.md.j2": "neurons/index.md",
    "findings.md.j2": "findings.md",
    "run.md.j2": "run.md",
}


def _strict(filter_function):
    """Make a filter fail on a missing value, as StrictUndefined does for plain printing."""

    def checked(value, *args):
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        return filter_function(value, *args)

    checked.__doc__ = filter_function.__doc__
    return checked


def pct(value: float, digits: int = 1) -> str:
    """0.9337 -> '93.4 %'."""
    return f"{value * 100:.{digits}f} %"


def pp(value: float) -> str:
    """An accuracy difference in percentage points: 0.0123 -> '1.2 pp'."""
    return f"{value * 100:.1f} pp"


def fixed(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def listing(items) -> str:
    """[1, 2, 3] -> '1, 2 and 3'; [] -> 'none'."""
    items = [str(i) for i in items]
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# Characters that start Markdown or HTML markup, written as numeric character references: they read the
# same on the page and can never open a link, an image, a tag, an attribute list or emphasis.
_MARKUP_CHARACTERS = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+!|<>&\"'~"}
_MARKUP_CHARACTERS |= {"\n": " ", "\r": " ", "\t": " "}
_ESCAPES = str.maketrans(_MARKUP_CHARACTERS)


def escape_markup(value) -> Markup:
    """Any value as inert text for a Markdown page: '[x](javascript:y)' -> '&#91;x&#93;&#40;javascript:y&#41;'."""
    return Markup(str(value).translate(_ESCAPES))


def untrusted(value) -> Markup:
    """A string we did not compute (a path, a data source, a layer name) as inline code, escaped."""
    return Markup(f"<code>{escape_markup(value)}</code>")


def _finalize(value):
    """Applied to every `{{ }}` output: plain strings are escaped, our own Markup passes through."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return escape_markup(value)
    return value


def environment(template_dir: Path) -> jinja2.Environment:
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    filters = {"pct": pct, "pp": pp, "fixed": fixed, "listing": listing, "untrusted": untrusted}
    env.filters.update({name: _strict(function) for name, function in filters.items()})
    return env


def neuron_rows(metrics: dict) -> list[dict]:
    """Per neuron, what the pages say of it, gathered once so templates need no index arithmetic."""
    units = len(metrics["selectivity"])
    rows = []
    for n in range(units):
        rows.append(
            {
                "index": n,
                "selectivity": metrics["selectivity"][n],
                "preferred_digit": metrics["preferred_digit"][n],
                "dead_fraction": metrics["dead_fraction"][n],
                "importance": metrics["ablation_importance"][n],
                "preferred_drop": metrics["preferred_digit_drop"][n],
                "outgoing": metrics["output_weights"][n],
                "votes_for": max(range(10), key=lambda d: metrics["output_weights"][n][d]),
                "votes_against": min(range(10), key=lambda d: metrics["output_weights"][n][d]),
                "dominates": [d for d in range(10) if metrics["dominant_neuron"][d] == n],
                "tuning": [metrics["mean_activation"][d][n] for d in range(10)],
                "ci95": [metrics["ci95_activation"][d][n] for d in range(10)],
                "drop": metrics["ablation_drop"][n],
                "ablation_accuracy": metrics["ablation_accuracy"][n],
                "silent_examples": metrics["silent_examples"][n],
                "top_examples": metrics["top_examples"][n],
            }
        )
    return rows


def digit_rows(metrics: dict) -> list[dict]:
    rows = []
    for d in range(10):
        share_neuron = metrics["claim"]["best_share_neuron"][d]
        rows.append(
            {
                "digit": d,
                "count": metrics["digit_counts"][d],
                "accuracy": metrics["per_digit_accuracy"][d],
                "dominant": metrics["dominant_neuron"][d],
                "runner_up": metrics["runner_up_neuron"][d],
                "margin": metrics["dominant_margin"][d],
                "mean": metrics["mean_activation"][d],
                "std": metrics["std_activation"][d],
                "dominance": metrics["dominance"][d],
                "best_share": metrics["claim"]["best_share"][d],
                "best_share_neuron": share_neuron,
                "has_dominant": d in metrics["claim"]["digits_with_dominant_neuron"],
                "drop_by_neuron": [metrics["ablation_drop"][n][d] for n in range(len(metrics["selectivity"]))],
            }
        )
    return rows


def build_context(metrics: dict, examples: int) -> dict:
    neurons = neuron_rows(metrics)
    by_selectivity = sorted(neurons, key=lambda r: -r["selectivity"])
    by_importance = sorted(neurons, key=lambda r: -r["importance"])
    shared = metrics["claim"]["shared_neurons"]
    widest = max(shared.items(), key=lambda item: len(item[1]), default=(None, []))
    return {
        "m": metrics,
        "mean_preferred_drop": sum(r["preferred_drop"] for r in neurons) / len(neurons),
        "digits_sharing": sum(len(ds) for ds in shared.values()),
        "widest_shared": {"neuron": widest[0], "digits": widest[1]},
        "cfg": metrics["config"],
        "examples": examples,
        "digits": digit_rows(metrics),
        "neurons": neurons,
        "most_selective": by_selectivity[:3],
        "most_important": by_importance[:3],
        "top3_overlap": sorted({r["index"] for r in by_selectivity[:3]} & {r["index"] for r in by_importance[:3]}),
        "dead_units": [r["index"] for r in neurons if r["dead_fraction"] >= 0.99],
        "sparse_units": [r["index"] for r in neurons if 0.5 <= r["dead_fraction"] < 0.99],
    }


def sweep_context(sweep: dict | None, width: int) -> dict | None:
    """The seed sweep as the pages print it: widths in order, and the paper-width entry up front."""
    if not sweep:
        return None
    widths = sorted(({"width": int(w), **entry} for w, entry in sweep["widths"].items()), key=lambda r: r["width"])
    paper = next((w for w in widths if w["width"] == width), None)
    return {**sweep, "rows": widths, "paper": paper, "width": width, "narrowest": widths[0], "widest": widths[-1]}


def render_all(
    metrics: dict,
    examples: int,
    template_dir: Path,
    out_dir: Path,
    sweep: dict | None = None,
    explore: dict | None = None,
) -> int:
    """Write every page into `out_dir`; returns how many were written.

    `explore` is what nu_keras.explore.write_script exported; without it there is no Explore page and
    the Digit and Neuron pages do not link to one.
    """
    env = environment(template_dir)
    context = build_context(metrics, examples)
    context["sweep"] = sweep_context(sweep, metrics["config"]["hidden_units"])
    context["explore"] = explore
    jobs = [(name, target, {}) for name, target in PAGES.items()]
    if explore:
        jobs.append(("explore.md.j2", "explore.md", {}))
    if sweep:
        jobs.append(("robustness.md.j2", "robustness.md", {}))
    jobs += [("digit.md.j2", f"digits/digit-{row['digit']}.md", {"row": row}) for row in context["digits"]]
    jobs += [("neuron.md.j2", f"neurons/neuron-{row['index']}.md", {"row": row}) for row in context["neurons"]]
    for template, target, extra in jobs:
        try:
            text = env.get_template(template).render(**context, **extra)
        except jinja2.TemplateNotFound as exc:
            raise NuKerasError(f"template {exc.name} not found in {template_dir}") from exc
        except (OSError, UnicodeDecodeError) as exc:  # an unreadable or binary file among the templates
            raise NuKerasError(f"cannot read template {template} in {template_dir}: {exc}") from exc
        except jinja2.TemplateError as exc:  # a missing value, a syntax error in an edited template
            raise NuKerasError(f"template {template} failed: {exc}") from exc
        artifacts.write_text(Path(out_dir) / target, text)
    return len(jobs)
