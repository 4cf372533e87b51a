"""Every layer in one run: `--layer a,b,c` or `--layer all` on a user's model.

Each layer is the one-layer report, made by the same stages into a folder of its own inside the artifacts
folder (`artifacts/layers/NAME/`: its model copy, activations, record, stage records and pages), so a layer
whose inputs did not change is reused as it would be alone. The overview stage then puts the layers' pages
side by side in the pages folder (one folder per layer) with a cross-layer overview as the home page, and
the build stage makes one site of it.

The overview compares the layers on what every record holds: units, dead share, mean η², the distribution
of the class selectivity index, the share of classes with a dominant unit, and the linear read-out accuracy.
It reads only the layers' records (metrics.json), like every page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import shutil
from pathlib import Path

import numpy as np
from markupsafe import Markup

from nu_keras import artifacts, cache, folders, resources
from nu_keras.config import ALL_LAYERS, RunConfig
from nu_keras.errors import NuKerasError
from nu_keras.names import shown

log = logging.getLogger(__name__)

LAYER_STAGES = ("train", "collect", "analyze", "render")  # run once per layer, into the layer's folder
LAYERS_FOLDER = "layers"  # inside the artifacts folder: one folder per layer
OVERVIEW_CHART = "img/layers-selectivity"  # the overview's figure, without its suffix


def is_several(cfg: RunConfig) -> bool:
    """Whether --layer may name more than one layer (a list or `all`); a layer whose own name holds a comma
    is told apart once the model is loaded (`requested_layers`)."""
    return cfg.model is not None and cfg.layer is not None and (cfg.layer == ALL_LAYERS or "," in cfg.layer)


def requested_layers(cfg: RunConfig) -> list[str] | None:
    """The layers a run reads, in the model's order, when --layer names several (or `all`); None when it names
    one, the one-layer run. Loading the model takes a second, so the answer is kept in stages.json beside the
    model file's hash and --layer's text, and a warm rerun reads it from there."""
    if not is_several(cfg):
        return None
    known = cache.read_record(artifacts.paths(cfg).stages).get("layers") or {}
    if known.get("key") == layers_key(cfg):
        return known["names"]
    return surveyed_layers(cfg)


def layers_key(cfg: RunConfig) -> dict:
    """What the layer list depends on: the model file and --layer's text."""
    return {"model": cache.file_hash(cfg.model), "layer": cfg.layer}


def surveyed_layers(cfg: RunConfig) -> list[str] | None:
    """--layer checked against the model: every named layer can be read out and splits the model in two."""
    from nu_keras.pipeline import import_keras

    import_keras()  # with signals held (pipeline.import_keras)
    from nu_keras import subject

    model = subject.load_user_model(cfg.model)
    subject.check_one_input_one_output(model)
    order = [layer.name for layer in subject.survey(model).readable]
    if cfg.layer in order:
        return None  # one layer, whose name holds a comma
    names = sorted({layer.name for layer in subject.find_layers(model, cfg.layers)}, key=order.index)
    for name in names:
        subject.split(model, name)  # refuses a layer a skip connection bypasses
    return names


def folder_name(layer: str) -> str:
    """The layer's folder, in the artifacts and in the site: its name where that is a plain file name, else
    the plain characters and a short hash of the name (two layers never share a folder)."""
    plain = re.sub(r"[^A-Za-z0-9_-]", "-", layer)[:60]
    if plain == layer and plain:
        return plain
    return f"{plain.strip('-') or 'layer'}-{hashlib.sha256(layer.encode()).hexdigest()[:8]}"


def layer_config(cfg: RunConfig, layer: str) -> RunConfig:
    """The one-layer run of `layer`: the same settings, its own artifacts and pages inside cfg.out."""
    folder = Path(cfg.out) / LAYERS_FOLDER / folder_name(layer)
    return dataclasses.replace(cfg, layer=layer, out=folder, pages_dir=folder / "pages")


def run_layers(stages: tuple[str, ...], cfg: RunConfig, names: list[str]) -> dict[str, str]:
    """The stages for every layer, then the overview and the build (called with the output folders locked)."""
    from nu_keras import pipeline

    cache.write_record(artifacts.paths(cfg).stages, "layers", {"key": layers_key(cfg), "names": names})
    outcome = {}
    for name in names:
        layer_cfg = layer_config(cfg, name)
        claim_layer_folder(layer_cfg)
        log.info("== layer %s ==", shown(name))
        done = pipeline.run_stages(tuple(s for s in stages if s in LAYER_STAGES), layer_cfg)
        outcome |= {f"{stage} {name}": result for stage, result in done.items()}
    if "render" in stages:
        outcome["overview"] = overview_stage(cfg, names)
    if "build" in stages:
        outcome |= pipeline.run_stages(("build",), cfg)
    return outcome


def claim_layer_folder(layer_cfg: RunConfig) -> None:
    """The layer's folder inside the artifacts folder is ours to fill: created and marked, or already marked;
    a folder there that nu-keras did not write is refused (it is never written into)."""
    folder = Path(layer_cfg.out)
    if folder.exists() and (not folder.is_dir() or folders.read_marker(folder) is None):
        raise NuKerasError(f"{folder} is not a layer folder nu-keras wrote; move it away and run again")
    folders.claim(folder, "artifacts")
    folders.clean_leftovers(layer_cfg.pages_dir, "pages")


# ------------------------------------------------------------------------------------------ the overview


def overview_fingerprint(cfg: RunConfig, names: list[str]) -> dict:
    """What the overview depends on: each layer's pages (their digests as each layer's render stage recorded
    them, having just run or checked them in this run), the layers' order, the templates and figure format,
    and this module's code."""
    layers = {name: rendered_pages_digest(layer_config(cfg, name)) for name in names}
    settings = {"layers": names, "figure_format": cfg.figure_format, "pages_dir": str(cfg.pages_dir)}
    inputs = layers | {"templates": cache.templates_hash(cfg.templates_dir)}
    return cache.fingerprint(settings | {"backend": cfg.backend}, inputs, ("multilayer.write_overview",))


def rendered_pages_digest(layer_cfg: RunConfig) -> str | None:
    """The digest of the layer's pages its render stage recorded (stages.json), not hashed again."""
    render = cache.read_record(artifacts.paths(layer_cfg).stages).get("render") or {}
    return (render.get("outputs") or {}).get("pages")


def overview_stage(cfg: RunConfig, names: list[str]) -> str:
    """The pages folder made whole from the layers' pages and the overview, unless nothing changed."""
    stages_file = artifacts.paths(cfg).stages
    print_ = overview_fingerprint(cfg, names)
    record = cache.read_record(stages_file).get("overview")
    outputs = {"pages": folders.verified_digest(cfg.pages_dir)}
    ready = None not in outputs.values() and outputs == (record or {}).get("outputs")
    reason = cache.why_run(print_, record, ready, cfg.force)
    if reason is None:
        log.info("== overview == reused (inputs unchanged, outputs intact)")
        return "reused"
    log.info("== overview == running (%s)", reason)
    staging = folders.staging_dir(cfg.pages_dir)
    try:
        write_overview(cfg, names, staging)
        folders.replace_folder(staging, Path(cfg.pages_dir), "pages")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    cache.write_record(stages_file, "overview", print_ | {"outputs": {"pages": folders.verified_digest(cfg.pages_dir)}})
    return f"ran ({reason})"


def write_overview(cfg: RunConfig, names: list[str], staging: Path) -> None:
    """Into `staging`: each layer's pages in its folder, the overview page and its figure, and the nav."""
    from nu_keras.record import Measurements

    records = []
    for name in names:
        layer_cfg = layer_config(cfg, name)
        shutil.copytree(layer_cfg.pages_dir, staging / folder_name(name), ignore=shutil.ignore_patterns(folders.MARKER))
        records.append(Measurements.from_json(artifacts.read_json(artifacts.paths(layer_cfg).metrics)))
    rows = [layer_row(name, record) for name, record in zip(names, records, strict=True)]
    chart = f"{OVERVIEW_CHART}.{cfg.figure_format}"
    draw_overview_chart(staging / chart, rows)
    context = {"rows": rows, "chart": chart, "said": overview_sentences(rows)} | overview_words(records[0])
    write_page(cfg, staging / "index.md", context)
    artifacts.write_text(staging / ".nav.json", overview_nav(names, staging, context["model_name"]))


def layer_row(name: str, record) -> dict:
    """One layer as the overview's table shows it, from its record."""
    live = list(record.layer.live_units)
    eta = np.asarray(record.per_unit.eta_squared, dtype=float)[live]
    selectivity = [s for u, s in enumerate(record.per_unit.selectivity) if s is not None and u in set(live)]
    dominant = [d is not None for d in record.per_class.dominant_unit]
    subject = record.provenance.subject
    return {
        "name": name,
        "folder": Markup(folder_name(name)),  # plain characters only: a link target, not text to escape
        "type": subject.get("layer_type", ""),
        "kind": subject.get("layer_kind", ""),
        "units": len(record.units),
        "dead_share": len(record.layer.dead_units) / len(record.units),
        "mean_eta_squared": float(np.mean(eta)) if len(eta) else None,
        "selectivity": selectivity,
        "median_selectivity": float(np.median(selectivity)) if selectivity else None,
        "signed": record.layer.signed,
        "dominant_share": float(np.mean(dominant)),
        # how many different units those are: one unit dominant for every class is no class-specific code
        "distinct_dominant": len({d for d in record.per_class.dominant_unit if d is not None}),
        "dominant_count": int(np.sum(dominant)),
        "readout": record.layer.linear_readout_accuracy,
    }


def overview_words(record) -> dict:
    """The model's and data set's names and the word for a class, from the first layer's record (every layer's
    record names the same model and data)."""
    from nu_keras import pages

    subject, dataset = record.provenance.subject, record.provenance.dataset
    noun = pages.words(record)[0]
    words = {"noun": noun, "nouns": pages.plural_noun(noun)}
    return {"model_name": subject["model_name"], "dataset_title": dataset["title"]} | words


def overview_sentences(rows: list[dict]) -> dict:
    """The overview's statements, chosen by the numbers: where a linear read-out recovers the class best and
    worst, where units are most class-dependent, and the layers with the lowest and highest share of classes
    with a dominant unit (None where a statement has nothing to compare)."""
    read = [r for r in rows if r["readout"] is not None]
    eta = [r for r in rows if r["mean_eta_squared"] is not None]
    low, high = min(r["dominant_share"] for r in rows), max(r["dominant_share"] for r in rows)
    return {
        "best_readout": max(read, key=lambda r: r["readout"]) if len(read) > 1 else None,
        "worst_readout": min(read, key=lambda r: r["readout"]) if len(read) > 1 else None,
        "most_eta": max(eta, key=lambda r: r["mean_eta_squared"]) if len(eta) > 1 else None,
        "dominant_low": [r for r in rows if r["dominant_share"] == low] if len(rows) > 1 else None,
        "dominant_high": [r for r in rows if r["dominant_share"] == high] if len(rows) > 1 and high > low else None,
        "one_unit_for_all": [r for r in rows if r["dominant_count"] > 1 and r["distinct_dominant"] == 1],
    }


def draw_overview_chart(path: Path, rows: list[dict]) -> None:
    """The selectivity index of every live unit, one box per layer (none for a signed layer)."""
    import matplotlib

    from nu_keras.charts import layers as layer_charts
    from nu_keras.charts.style import STYLE

    with matplotlib.rc_context(STYLE):
        layer_charts.selectivity_by_layer(path, [r["name"] for r in rows], [r["selectivity"] for r in rows])


def write_page(cfg: RunConfig, path: Path, context: dict) -> None:
    """The overview page from layers.md.j2 (of --templates when it has one, else the report's own)."""
    from nu_keras import pages

    folder = cfg.templates_dir if (Path(cfg.templates_dir) / "layers.md.j2").is_file() else resources.templates_dir()
    env = pages.environment(folder)
    artifacts.write_text(path, pages.render_template(env, "layers.md.j2", folder, context))


def overview_nav(names: list[str], staging: Path, model_name: str) -> str:
    """The site's name and nav: the overview, then per layer its own nav (mkdocs.yml's pages and its class
    and unit sections) under the layer's folder."""
    import json

    from nu_keras import pages, site

    base = site.configured_nav()
    nav = []
    for name in names:
        folder = staging / folder_name(name)
        sections = site.generated_settings(folder).get("nav", [])
        entries = site.existing_nav(site.composed_nav(base, sections), folder)
        nav.append({f"Layer {pages.theme_text(name)}": prefixed(entries, folder_name(name))})
    settings = {"site_name": pages.theme_text(f"nu_keras — {model_name}, {len(names)} layers"), "nav": nav}
    return json.dumps(settings, ensure_ascii=False, indent=1)


def prefixed(nav: list, folder: str) -> list:
    """A nav with every page moved into `folder`, its "Home" called "Layer summary" (Home is the overview)."""
    moved = []
    for entry in nav:
        ((title, target),) = entry.items()
        title = "Layer summary" if title == "Home" else title
        moved.append({title: prefixed(target, folder) if isinstance(target, list) else f"{folder}/{target}"})
    return moved
