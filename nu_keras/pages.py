"""Fill the Jinja2 Markdown templates in report_templates/ from the measurement record (nu_keras.record).

Templates only loop and format; every number they print comes from the context built here, and a
missing value fails the render (StrictUndefined) instead of printing a blank.

Every string printed with `{{ }}` is escaped for Markdown *and* HTML unless it is `Markup` (what our
macros and the `untrusted` filter produce): a path, a data source or a layer name can hold
`[x](javascript:...)` or `<script>`, and must reach the page as text. Templates run sandboxed, since
`--templates` lets a user bring their own.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.sandbox
from markupsafe import Markup

from nu_keras import artifacts, measures, resources, statements
from nu_keras.errors import NuKerasError
from nu_keras.formats import (
    count,
    escape_markup,
    fixed,
    listing,
    pct,
    plural,
    plus_minus,
    pp,
    pp_interval,
    pvalue,
    untrusted,
)
from nu_keras.names import display_words, shown
from nu_keras.record import Measurements, Method

PAGES = {  # template -> output path (relative to the pages folder); class and unit pages follow `Layout`
    "index.md.j2": "index.md",
    "method.md.j2": "method.md",
    "findings.md.j2": "findings.md",
    "glossary.md.j2": "glossary.md",
    "run.md.j2": "run.md",
    "api.md.j2": "api.md",  # "Use from Python": the public API (nu_keras/api.py)
}


def _strict(filter_function):
    """Make a filter fail on a missing value, as StrictUndefined does for plain printing."""

    def checked(value, *args):
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        return filter_function(value, *args)

    checked.__doc__ = filter_function.__doc__
    return checked


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
    filters = {
        "pct": pct,
        "pp": pp,
        "pp_interval": pp_interval,
        "plus_minus": plus_minus,
        "fixed": fixed,
        "count": count,
        "pvalue": pvalue,
        "listing": listing,
        "plural": plural,
        "untrusted": untrusted,
    }
    env.filters.update({name: _strict(function) for name, function in filters.items()})
    return env


@dataclass(frozen=True)
class Layout:
    """Where the per-class and per-unit pages live, relative to the pages folder: named here once, handed
    to the templates and to the nav. MNIST keeps its digit pages, the paper's network its neuron pages."""

    class_folder: str  # "digits" on MNIST, otherwise "classes"
    class_stem: str  # "digit" / "class": digits/digit-3.md, classes/class-3.md
    unit_folder: str  # "neurons" for the paper's network, otherwise "units"
    unit_stem: str  # "neuron" / "unit"

    def class_page(self, d: int) -> str:
        return f"{self.class_folder}/{self.class_stem}-{d}.md"

    def unit_page(self, n: int) -> str:
        return f"{self.unit_folder}/{self.unit_stem}-{n}.md"

    @property
    def units_index(self) -> str:
        return f"{self.unit_folder}/index.md"

    @property
    def classes_index(self) -> str:
        return f"{self.class_folder}/index.md"


def layout(record: Measurements) -> Layout:
    """The page paths of this run: `layout(m).class_page(3)` -> 'digits/digit-3.md' on MNIST."""
    class_word, unit_word = words(record)
    unit_stem = "neuron" if unit_word == "neuron" else "unit"  # a conv layer's channels live on unit pages
    return Layout(plural_noun(class_word), class_word, unit_stem + "s", unit_stem)


def plural_noun(noun: str) -> str:
    """'digits', 'classes'."""
    return noun + "es" if noun.endswith("s") else noun + "s"


def words(record: Measurements) -> tuple[str, str]:
    """The word for one class and for one unit ("digit", "neuron"): names.display_words, as the figures use it."""
    return display_words(record.provenance.dataset, record.provenance.subject)


def dataset_words(dataset: dict, noun: str) -> dict:
    """The data set as pages print it, with the word for one of its classes (`noun`: 'digit' only on MNIST)."""
    nouns = plural_noun(noun)
    words = {"noun": noun, "nouns": nouns, "Noun": noun.capitalize(), "Nouns": nouns.capitalize()}
    shape = dataset["image_shape"]  # [H, W] or [H, W, channels]
    sizes = {"size": f"{shape[0]}×{shape[1]}", "inputs": math.prod(shape)}  # '28×28' image, 784 inputs
    return {**dataset, **words, **sizes, "bits": math.log2(len(dataset["class_names"]))}  # bits: knowing the class


def subject_words(subject: dict, unit: str, signed: bool) -> dict:
    """The analysed layer, with the word for one of its units (`unit`: 'neuron' only for the paper's network)."""
    return {
        **subject,
        "signed": signed,
        "unit": unit,
        "units_word": unit + "s",
        "Unit": unit.capitalize(),
        "Units": unit.capitalize() + "s",
    }


def class_rows(record: Measurements, pages: Layout) -> list[dict]:
    """Per class its index, name, label ('digit 3' on MNIST, the class name elsewhere), title and page."""
    mnist = words(record)[0] == "digit"
    rows = []
    for d, name in enumerate(record.classes):
        name = str(name).strip() or f"class {d}"  # an empty name would leave an empty link
        label = f"digit {d}" if mnist else name
        rows.append(
            {
                "index": d,
                "name": name,
                "label": label,
                "title": label[:1].upper() + label[1:],
                "page": pages.class_page(d),
            }
        )
    return rows


class Figures(dict):
    """One page's chart files by key (from `charts.chart_names`); a figure this run does not draw reads as None,
    so a template can say `{% if row.charts.silent %}` where StrictUndefined would fail on the missing key."""

    def __missing__(self, key: str) -> None:
        return None


def _units_by_class(units: list) -> dict[int, list[int]]:
    """{unit: [classes]} of a per-class list of units (None for a class without one), built once."""
    found: dict[int, list[int]] = {}
    for d, n in enumerate(units):
        if n is not None:
            found.setdefault(n, []).append(d)
    return found


def _arg(values: list[float] | None, pick) -> int | None:
    return None if values is None else pick(range(len(values)), key=lambda d: values[d])


def unit_rows(record: Measurements, charts: list[dict], pages: Layout) -> list[dict]:
    """Per unit, what the pages say of it, gathered once so templates need no index arithmetic.

    O(C) per unit: whatever a unit page prints about the other units is counted here, not in its template.
    """
    per_unit, per_class, class_unit = record.per_unit, record.per_class, record.class_unit
    classes = len(record.classes)
    zero, mean_ablation = record.ablation["zero"], record.ablation["mean"]
    dead, near_dead = set(record.layer.dead_units), set(record.layer.near_dead_units)
    noise = record.ablation_noise or None
    dominant_for = _units_by_class(per_class.dominant_unit)
    preferred_by = _units_by_class(per_class.top_unit.tolist())
    most_needed_by = _units_by_class(zero["most_needed_unit"])
    rescaled_winner_of = _units_by_class(per_class.rescaled_dominant_unit)
    outgoing_weights = None if per_unit.output_weights is None else per_unit.output_weights.tolist()
    spatial_max = (record.layer.spatial_max or {}).get("mean")  # (C, U), conv layers only
    mean, ci95 = class_unit.mean.tolist(), class_unit.ci95.tolist()
    share, rescaled_share = class_unit.dominance_share.tolist(), class_unit.rescaled_dominance_share.tolist()
    rows = []
    for n, unit_charts in enumerate(charts):
        tuning = [mean[d][n] for d in range(classes)]
        ranking = [
            {
                "class_index": d,
                "mean": tuning[d],
                "ci95": ci95[d][n],
                "spatial_max": None if spatial_max is None else spatial_max[d][n],
                "dominance_share": share[d][n],
                "rescaled_dominance_share": rescaled_share[d][n],
                "zero_drop": zero["drop"][n][d],
                "mean_drop": mean_ablation["drop"][n][d],
            }
            for d in sorted(range(classes), key=lambda d: -tuning[d])
        ]
        outgoing = outgoing_weights[n] if outgoing_weights is not None else None
        rows.append(
            {
                "index": n,
                "page": pages.unit_page(n),
                "charts": Figures(unit_charts),
                "selectivity": per_unit.selectivity[n],
                "eta_squared": float(per_unit.eta_squared[n]),
                "d_prime": float(per_unit.d_prime[n]),
                "preferred_class": int(per_unit.preferred_class[n]),
                "dead_fraction": float(per_unit.dead_fraction[n]),
                "dead": n in dead,
                "near_dead": n in near_dead,
                "importance": zero["importance"][n],
                "mean_importance": mean_ablation["importance"][n],
                # the paired 95 % interval of each drop (inference.paired_drop); None in records without it
                "zero_noise": noise["zero"][n] if noise else None,
                "mean_noise": noise["mean"][n] if noise else None,
                "cheaper_by_mean": mean_ablation["importance"][n] < zero["importance"][n],
                "preferred_drop": float(per_unit.preferred_class_drop[n]),
                "outgoing": outgoing,
                "votes_for": _arg(outgoing, max),
                "votes_against": _arg(outgoing, min),
                "dominant_for": dominant_for.get(n, []),
                "preferred_by": preferred_by.get(n, []),
                "most_needed_by": most_needed_by.get(n, []),
                "rescaled_winner_of": [
                    {"class_index": d, "share": rescaled_share[d][n]} for d in rescaled_winner_of.get(n, [])
                ],
                "ranking": ranking,
                "tuning": tuning,
                "drop": zero["drop"][n],
                "mean_drop": mean_ablation["drop"][n],
                "ablation_accuracy": zero["accuracy"][n],
                "silent_examples": list(per_unit.silent_examples[n]),
                "top_examples": per_unit.top_examples[n].tolist(),
            }
        )
    return rows


def class_page_rows(record: Measurements, charts: list[dict], classes: list[dict]) -> list[dict]:
    """Per class, its preferred and dominant units, its ranking of the units and its ablation results."""
    per_class, class_unit = record.per_class, record.class_unit
    units = len(record.units)
    zero, mean_ablation = record.ablation["zero"], record.ablation["mean"]
    std = class_unit.std.tolist()
    share, rescaled_share = class_unit.dominance_share.tolist(), class_unit.rescaled_dominance_share.tolist()
    rows = []
    for d, class_charts in enumerate(charts):
        means = class_unit.mean[d].tolist()
        ranking = [
            {
                "unit": n,
                "mean": means[n],
                "sd": std[d][n],
                "dominance_share": share[d][n],
                "rescaled_dominance_share": rescaled_share[d][n],
                "zero_drop": zero["drop"][n][d],
                "mean_drop": mean_ablation["drop"][n][d],
            }
            for n in sorted(range(units), key=lambda n: -means[n])
        ]
        rows.append(
            {
                **classes[d],
                "class_index": d,
                "charts": Figures(class_charts),
                "count": int(per_class.count[d]),
                "accuracy": float(per_class.accuracy[d]),
                "preferred": int(per_class.top_unit[d]),
                "runner_up": int(per_class.runner_up_unit[d]),
                "margin": float(per_class.top_unit_margin[d]),
                "dominant": per_class.dominant_unit[d],
                "rescaled_dominant": per_class.rescaled_dominant_unit[d],
                "best_share": record.claim["best_share"][d],
                "best_share_unit": record.claim["best_share_unit"][d],
                "rescaled_matched_share": max(rescaled_share[d]),
                "mean": means,
                "ranking": ranking,
                "needed": {
                    kind: {
                        "unit": table["most_needed_unit"][d],
                        "drop": table["most_needed_drop"][d],
                        "confusion": table["confusion_without_most_needed"][d],
                    }
                    for kind, table in (("zero", zero), ("mean", mean_ablation))
                },
            }
        )
    return rows


TOP = 10  # how many units the static "top" lists of the units overview name


def measurable(rows: list[dict], kind: str) -> list[dict]:
    """The rows whose drop under `kind` ("zero_noise", "mean_noise") has a measurable effect: its paired
    interval excludes 0. A drop within the noise is no ranking of importance, so top lists leave it out."""
    return [r for r in rows if r[kind] is None or r[kind]["measurable"]]


def top_units(rows: list[dict], key: str, count: int = TOP) -> list[dict]:
    """The `count` rows with the largest `key`, largest first; rows where it is undefined (None) left out."""
    return sorted((r for r in rows if r[key] is not None), key=lambda r: -r[key])[:count]


def build_context(record: Measurements, examples: int, charts: dict) -> dict:
    """Everything the templates print, from the record alone."""
    pages = layout(record)
    class_word, unit_word = words(record)
    provenance, config = record.provenance, record.provenance.config
    subject = subject_words(provenance.subject, unit_word, record.layer.signed)
    subject["model"] = shown_path(subject["model"], config["project_root"]) if subject["model"] else None
    classes = class_rows(record, pages)
    units = unit_rows(record, charts["units"], pages)
    silent = [] if subject["signed"] else top_units([r for r in units if r["dead_fraction"] > 0], "dead_fraction")
    most_selective = top_units(units, "selectivity", 3)
    most_important = top_units(measurable(units, "zero_noise"), "importance", 3)
    shared = record.claim["units_preferred_by_several_classes"]
    widest = max(shared.items(), key=lambda item: len(item[1]), default=(None, []))
    method = record.method
    return {
        "m": record,
        "dataset": dataset_words(provenance.dataset, class_word),
        "subject": subject,
        "classes": classes,
        "unit_pages": [r["page"] for r in units],
        "units_index": pages.units_index,
        "classes_index": pages.classes_index,
        "classes_listed": len(classes) <= NAV_LISTED_CLASSES,  # Home links each class, or only their overview
        "charts": Figures(charts["overview"]),
        "mean_preferred_drop": sum(r["preferred_drop"] for r in units) / len(units),
        "classes_sharing": sum(len(ds) for ds in shared.values()),
        "widest_shared": {"unit": widest[0], "classes": widest[1]},
        "cfg": config,
        "method": {  # the interval settings the numbers were computed with, as the Method page prints them
            "t_quantile": 0.5 + method.confidence / 2,
            "normal_quantile": method.normal_quantile,
            "whiskers": method.null_whiskers,
            # a place against a rotation null is "above" or "below" past these shares (inference.null_place)
            "null_sides": (method.null_tail / 2, 1 - method.null_tail / 2),
        },
        "settings": shown_settings(config | {"examples": examples}),  # and how it is published here
        "data_source": shown_text(provenance.data_source, config["project_root"]),
        "examples": examples,
        "class_rows": class_page_rows(record, charts["classes"], classes),
        "unit_rows": units,
        "most_selective": most_selective,
        "most_important": most_important,
        "top3_overlap": sorted({r["index"] for r in most_selective} & {r["index"] for r in most_important}),
        "top": {
            "selective": top_units(units, "selectivity"),
            "eta_squared": top_units(units, "eta_squared"),
            "important": top_units(measurable(units, "zero_noise"), "importance"),
            "mean_important": top_units(measurable(units, "mean_noise"), "mean_importance"),
            "silent": silent,
        },
        "dead_units": list(record.layer.dead_units),
        "near_dead_units": list(record.layer.near_dead_units),
        "sparse_units": []
        if subject["signed"]
        else [r["index"] for r in units if 0.5 <= r["dead_fraction"] < method.near_dead],
        "near_dead_share": method.near_dead,
        "measures": measures.worded(measure_words(dataset_words(provenance.dataset, class_word), method)),
    }


def measure_words(dataset: dict, method: Method) -> dict:
    """What the registry's texts name by placeholder (nu_keras.measures), as these pages word it."""
    threshold, near_dead = pct(method.dominance_threshold, 0), pct(method.near_dead, 0)
    return {"class": dataset["noun"], "classes": dataset["nouns"], "unit": "unit", "units": "units"} | {
        "threshold": str(threshold),
        "near_dead": str(near_dead),
    }


def shown_path(value: str | None, root: str | None) -> str:
    """A path as the Run page shows it: relative to the project (the working folder when nu_keras runs from a
    wheel, with no project), under ~ for the home folder, otherwise only its last two parts (a machine's
    absolute paths say nothing to a reader and leak its layout)."""
    if value is None:
        return "none"
    path, project = Path(value), Path(root) if root is not None else Path.cwd()
    if path == project:
        return "."
    if path.is_relative_to(project):
        return str(path.relative_to(project))
    if not path.is_absolute():
        return str(path)
    if path.is_relative_to(Path.home()):
        return str(Path("~") / path.relative_to(Path.home()))
    return str(Path("…", *path.parts[-2:]))


def shown_text(text: str, root: str | None) -> str:
    """A message that may hold paths (a data source), with the project (or, from a wheel, the working folder)
    and home folders abbreviated."""
    project = Path(root) if root is not None else Path.cwd()
    if project != Path(project.anchor):  # from the file-system root, "/" would become "." everywhere
        text = str(text).replace(str(project), ".")
    return str(text).replace(str(Path.home()), "~")


PATH_SETTINGS = ("data", "cache_path", "out", "pages_dir", "site_dir", "project_root", "templates")


def shown_settings(config: dict) -> dict:
    """The configuration as the Run page prints it, paths made relative (see `shown_path`)."""
    root = config["project_root"]
    return {k: shown_path(v, root) if k in PATH_SETTINGS else v for k, v in config.items()}


def seed_rank(values: list[float], index: int) -> dict:
    """Where values[index] ranks among all values, highest first: rank, how many, ties, and whether it is
    the highest or the lowest."""
    value = values[index]
    return {
        "rank": 1 + sum(v > value for v in values),
        "of": len(values),
        "ties": sum(v == value for v in values) - 1,
        "highest": value == max(values),
        "lowest": value == min(values),
        "value": value,
    }


def sweep_context(sweep: dict | None, width: int, seed: int) -> dict | None:
    """The seed sweep as the pages print it: widths in order, and the paper-width entry up front."""
    if not sweep:
        return None
    widths = sorted(({"width": int(w), **entry} for w, entry in sweep["widths"].items()), key=lambda r: r["width"])
    paper = next((w for w in widths if w["width"] == width), None)
    rank = None
    if paper and len(paper["models"]) > 1 and seed in [m["seed"] for m in paper["models"]]:
        counts = [m["trained"]["classes_with_dominant_unit"] for m in paper["models"]]
        rank = seed_rank(counts, [m["seed"] for m in paper["models"]].index(seed))
    return {
        **sweep,
        "rows": widths,
        "paper": paper,
        "width": width,
        "narrowest": widths[0],
        "widest": widths[-1],
        "report_seed_rank": rank,
        "data_source_shown": shown_text(sweep["provenance"]["data_source"], resources.checkout_root()),
    }


RENDER_GLOBALS = (
    "dataset",
    "subject",
    "classes",
    "unit_pages",
)  # globals of the render: macros imported without context see them
NAV_FILE = (
    ".nav.json"  # site name and generated nav sections; MkDocs 1.6 leaves dotfiles out of the site (exclude_docs)
)
# Every page carries the whole nav, so a nav that grew with the classes or units would grow the site with their
# square (1 000 classes: about 290 KB of nav on each of 1 000 pages). Past these counts the nav lists only the
# overview page, whose table links every class or unit.
NAV_LISTED_UNITS = 32
NAV_LISTED_CLASSES = 32


def nav_sections(context: dict) -> list[dict]:
    """The nav's class and unit sections, in mkdocs.yml's nav form:
    [{"Digits": [{"Overview": "digits/index.md"}, {"Digit 0": path}, ...]}, {"Neurons": [...]}]."""
    units = [{"Overview": context["units_index"]}]
    if len(context["unit_rows"]) <= NAV_LISTED_UNITS:
        units += [{f"{context['subject']['Unit']} {r['index']}": r["page"]} for r in context["unit_rows"]]
    classes = [{"Overview": context["classes_index"]}]
    if len(context["classes"]) <= NAV_LISTED_CLASSES:
        classes += [{theme_text(c["title"]): c["page"]} for c in context["classes"]]
    return [{context["dataset"]["Nouns"]: classes}, {context["subject"]["Units"]: units}]


def site_name(context: dict) -> str:
    """The site's title in the header and the browser tab: which network, or which layer of which model."""
    subject = context["subject"]
    if subject["kind"] == "paper":
        shape = f"784-{subject['units']}-{len(context['classes'])}"
        return f"nu_keras — inside a {shape} {context['dataset']['title']} network"
    return f"nu_keras — {subject['model_name']}, layer {subject['layer']}"


# Look-alikes for the characters that make HTML: Material prints the site name and nav titles unescaped in places
# (the nav links) and un-escapes them in others (`striptags` in <title>), so no escaping survives both.
_THEME_LOOKALIKES = str.maketrans({"<": "\u2039", ">": "\u203a", "&": "\uff06", '"': "\u201d", "'": "\u2019"})


def theme_text(value: str) -> str:
    """A user-given name (a class, a model, a layer) as the theme may print it raw: '<b>' -> '‹b›', and its
    control, bidi and invisible characters as escapes (see `nu_keras.names.shown`)."""
    return shown(value).translate(_THEME_LOOKALIKES)


def site_settings(context: dict) -> dict:
    """What `site.build` sets in MkDocs' config for these pages (written to NAV_FILE)."""
    return {"site_name": theme_text(site_name(context)), "nav": nav_sections(context)}


ABLATIONS = ("zero", "mean")  # the fills the record's ablation holds, in the pages' order


def adjusted_correlations(record: Measurements, sweep: dict | None) -> dict:
    """Every correlation the pages print with its Holm-adjusted p-value ("adjusted"), from the one family the
    Method page lists: the sweep's when there is one (the report network is its first seed), else the single
    network's. `rho_words` then states a direction only where the adjusted p is below 0.05. The record's
    correlations are returned adjusted (a new dict); the sweep's are adjusted in place."""
    family = (sweep.get("tests") if sweep else record.tests) or {}
    prefix = f"seed_{record.provenance.config['seed']}_" if sweep else ""

    def adjusted(correlation: dict | None, name: str) -> dict | None:
        return None if correlation is None else {**correlation, "adjusted": (family.get(name) or {}).get("adjusted")}

    measured = record.correlations
    correlations = {
        "selectivity_vs_ablation": {
            kind: adjusted(measured["selectivity_vs_ablation"][kind], f"{prefix}selectivity_vs_{kind}_ablation")
            for kind in ABLATIONS
        },
        "selectivity_vs_preferred_class_drop": adjusted(
            measured["selectivity_vs_preferred_class_drop"], prefix + "selectivity_vs_preferred_drop"
        ),
    }
    if sweep and sweep.get("paper"):
        pooled = sweep["paper"]["summary"]["selectivity_vs_ablation_pooled"]
        for kind in ABLATIONS:
            pooled[kind] = adjusted(pooled[kind], f"pooled_selectivity_vs_{kind}_ablation")
        for model in sweep["paper"]["models"]:
            for kind in ABLATIONS:
                name = f"seed_{model['seed']}_selectivity_vs_{kind}_ablation"
                model["selectivity_vs_ablation"][kind] = adjusted(model["selectivity_vs_ablation"][kind], name)
    return correlations


def render_all(
    record: Measurements,
    examples: int,
    template_dir: Path,
    out_dir: Path,
    sweep: dict | None = None,
    explore: dict | None = None,
    *,
    charts: dict,
) -> int:
    """Write every page into `out_dir`, and the site name and the nav sections of its class and unit pages
    into `out_dir/.nav.json` (read by `site.build`); returns how many pages were written.

    `charts` is `nu_keras.charts.chart_names(record, sweep)`: the templates show exactly these figures.
    `explore` is what nu_keras.explore.write_script exported; without it there is no Explore page and
    the class and unit pages do not link to one.
    """
    env = environment(template_dir)
    context = build_context(record, examples, charts)
    env.globals.update({key: context[key] for key in RENDER_GLOBALS})  # what the macros name classes and units by
    config = record.provenance.config
    context["sweep"] = sweep_context(sweep, config["hidden_units"], config["seed"])
    context["explore"] = explore
    context["correlations"] = adjusted_correlations(record, context["sweep"])
    context["said"] = statements.said(context)
    jobs = [(name, target, {}) for name, target in PAGES.items()]
    jobs.append(("units.md.j2", context["units_index"], {}))
    jobs.append(("classes.md.j2", context["classes_index"], {}))
    if explore:
        jobs.append(("explore.md.j2", "explore.md", {}))
    if sweep:
        jobs.append(("robustness.md.j2", "robustness.md", {}))
    jobs += [("class.md.j2", row["page"], {"row": row}) for row in context["class_rows"]]
    jobs += [("unit.md.j2", row["page"], {"row": row}) for row in context["unit_rows"]]
    for template, target, extra in jobs:
        artifacts.write_text(Path(out_dir) / target, render_template(env, template, template_dir, {**context, **extra}))
    artifacts.write_text(Path(out_dir) / NAV_FILE, json.dumps(site_settings(context), ensure_ascii=False, indent=1))
    return len(jobs)


def render_template(env: jinja2.Environment, template: str, template_dir: Path, context: dict) -> str:
    """One page, every way a template can fail turned into a NuKerasError that names it."""
    try:
        return env.get_template(template).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise NuKerasError(f"template {exc.name} not found in {template_dir}") from exc
    except (OSError, UnicodeDecodeError) as exc:  # an unreadable or binary file among the templates
        raise NuKerasError(f"cannot read template {template} in {template_dir}: {exc}") from exc
    except jinja2.TemplateError as exc:  # a missing value, a syntax error in an edited template
        raise NuKerasError(f"template {template} failed: {exc}") from exc
