"""The registry of measures: every number the pages report about a layer, named once with its place in the
record, its axes and its definition.

A new measure is one entry here, its function (analysis.py) and its field in the record (record.py); the
Method page and the Glossary print their entries from this registry, and tests/test_registry.py checks that
every measure field of the record has an entry, that every entry's field exists in a record `measure` makes,
and that both pages show every entry.

Texts are plain (the pages escape them) and name the class and the unit by placeholders, so MNIST's pages say
"digit" where another data set's say "class": {class}, {classes}, {unit}, {units}, and the run's
{threshold} (the dominance threshold) and {near_dead} (the near-dead share).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measure:
    name: str  # as the pages print it
    field: str  # where the record holds it: "section.field" or "part.key" (record.Measurements)
    axes: tuple[str, ...]  # its axes in the record: "class", "unit"; () for one number of the layer
    formula: str  # the Method page's definition
    meaning: str  # the Glossary's plain words
    companions: tuple[str, ...] = ()  # record fields that belong to it (a runner-up, an interval)


MEASURES = (
    Measure(
        "Top unit",
        "per_class.top_unit",
        ("class",),
        "of a {class}: the unit with the largest mean activation μ_d over the {class}'s images; every {class} has "
        "one. The runner-up has the second largest, and the margin is the difference between the two means.",
        "of a {class}, the unit with the largest mean activation over its images. Not to be confused with its "
        "dominant unit.",
        ("per_class.runner_up_unit", "per_class.top_unit_margin"),
    ),
    Measure(
        "Preferred {class}",
        "per_unit.preferred_class",
        ("unit",),
        "of a unit: the {class} d with its largest mean activation μ_d.",
        "of a unit, the {class} on whose images it is most active on average.",
    ),
    Measure(
        "Mean activation",
        "class_unit.mean",
        ("class", "unit"),
        "μ_d, a unit's mean activation over the images of {class} d, with its standard deviation and the 95 % "
        "interval of the mean, μ_d ± 1.96 · sd / √n_d (0 for a {class} with a single image: no spread to estimate).",
        "a unit's average activation over the images of one {class}.",
        ("class_unit.std", "class_unit.ci95", "class_unit.boxplot", "per_unit.mean"),
    ),
    Measure(
        "Dominance share",
        "class_unit.dominance_share",
        ("class", "unit"),
        "the share of a {class}'s images on which a unit is the most active one (the largest activation; an "
        "image on which every unit is zero, or two units tie for the largest, has none). The paper's dominance.",
        "the share of a {class}'s images on which a unit is the most active one.",
    ),
    Measure(
        "Dominant unit",
        "per_class.dominant_unit",
        ("class",),
        "of a {class}: the unit whose dominance share exceeds {threshold} (the threshold fixed before the run); "
        "a {class} may have none.",
        "of a {class}, the unit that is the most active one on more than {threshold} of its images. A {class} may "
        "have none. Not to be confused with its top unit.",
    ),
    Measure(
        "Rescaled dominance share",
        "class_unit.rescaled_dominance_share",
        ("class", "unit"),
        "the dominance share after dividing each unit's activation by its spread over the test images, "
        "z_i = h_i / σ (σ its standard deviation; not centred). Scaling a ReLU unit by c > 0 and its outgoing "
        "weights by 1/c changes no prediction but can change which unit is the most active; after dividing by the "
        "spread it cannot. The mean is not subtracted: shifting a ReLU unit is not such a symmetry (it changes "
        "what the network computes and which unit is largest), so a unit keeps its zero. A {class}'s rescaled "
        "dominant unit is the one whose rescaled share exceeds {threshold}.",
        "the dominance share once every unit is divided by its standard deviation (not centred), so that "
        "rescaling a unit, which changes no prediction, cannot change it.",
        ("per_class.rescaled_dominant_unit", "invariant.rescaled_dominant_classes"),
    ),
    Measure(
        "Matched share",
        "invariant.rescaled_matched_share",
        (),
        "the rescaled dominance shares, each {class} assigned one unit and each unit at most one {class} (the "
        "assignment maximising the total, Hungarian), averaged over {classes}: high only when different {classes} "
        "have different units that win their images.",
        "each {class} paired with one unit, each unit with at most one {class}, and the share of each {class}'s "
        "images its unit wins, averaged: high only when different {classes} have different winning units.",
    ),
    Measure(
        "Specificity",
        "specificity.classes_with_own_unit",
        ("class",),
        "a {class}'s dominant unit is its own when it is the dominant unit of no other {class}. The number of "
        "{classes} with a unit of their own is compared with chance: the same {classes} keep a dominant unit, each "
        "drawn at random from the units (10,000 draws); p is the share of draws with at least as many. One unit "
        "that wins on most images gives many {classes} a dominant unit but none a unit of its own.",
        "whether different {classes} have different dominant units: a {class}'s dominant unit is its own when it "
        "dominates no other {class}. One unit that wins on most images gives many {classes} a dominant unit but "
        "none its own.",
        ("rescaled_specificity.classes_with_own_unit",),
    ),
    Measure(
        "η² (eta squared)",
        "per_unit.eta_squared",
        ("unit",),
        "the share of a unit's variance explained by the {class}, η² = Σ_d n_d (μ_d − μ)² / Σ_i (h_i − μ)², "
        "between 0 (the {class} tells nothing about the unit's mean) and 1 (the unit is constant within each "
        "{class}). Unchanged when a unit is shifted or scaled; the layer's value is the mean over live units.",
        "the share of a unit's variance over all test images that the {class} explains.",
        ("invariant.eta_squared",),
    ),
    Measure(
        "d′ (d-prime)",
        "per_unit.d_prime",
        ("unit",),
        "how far a unit's preferred {class} p stands from all other images, in units of their pooled spread, "
        "d′ = (μ_p − μ_rest) / √((σ_p² + σ_rest²) / 2). Unchanged by a shift or a positive scale; the layer's "
        "value is the mean over live units.",
        "how far a unit's response to its preferred {class} stands from its response to all other images, in "
        "units of their spread. 0: no separation; even at 2, two bell-shaped groups of equal spread still overlap "
        "by about a third (32 %).",
        ("invariant.d_prime",),
    ),
    Measure(
        "Selectivity index",
        "per_unit.selectivity",
        ("unit",),
        "(μ_max − μ_rest) / (μ_max + μ_rest), with μ_max a unit's largest per-{class} mean and μ_rest the mean of "
        "the others (Morcos et al., 2018). It needs non-negative activations and rewards units that are off most "
        "of the time.",
        "0 for a unit that responds equally to all {classes}, 1 for a unit that responds to one {class} only.",
    ),
    Measure(
        "Dead fraction",
        "per_unit.dead_fraction",
        ("unit",),
        "the share of test images on which a unit is exactly zero. A unit zero on every image is dead; one zero "
        "on at least {near_dead} of them is near-dead.",
        "the share of test images on which a unit outputs exactly zero.",
    ),
    Measure(
        "Silent fraction",
        "per_class.silent_fraction",
        ("class",),
        "the share of a {class}'s images on which every unit is exactly zero: those images have no most active unit.",
        "the share of a {class}'s images on which the whole layer is zero.",
    ),
    Measure(
        "Accuracy per {class}",
        "per_class.accuracy",
        ("class",),
        "the share of a {class}'s test images the model classifies correctly.",
        "the model's accuracy on one {class}'s test images.",
    ),
    Measure(
        "Ablation drop",
        "ablation.zero.drop",
        ("unit", "class"),
        "a unit's activation is replaced and the per-{class} test accuracy measured again: zero ablation sets it "
        "to 0, mean ablation to its mean over the test set. The drop is the accuracy a {class} loses; a {class}'s "
        "most-needed unit is the one whose removal costs it the most.",
        "the accuracy a {class} loses when one unit is removed (set to 0, or to its mean over the test set).",
        ("ablation.mean.drop", "ablation.zero.most_needed_unit", "ablation.mean.most_needed_unit"),
    ),
    Measure(
        "Preferred-{class} drop",
        "per_unit.preferred_class_drop",
        ("unit",),
        "the zero-ablation drop of a unit on its preferred {class}.",
        "the accuracy a unit's preferred {class} loses when the unit is zeroed.",
    ),
    Measure(
        "Ablation importance",
        "ablation.zero.importance",
        ("unit",),
        "the overall test accuracy lost when the unit is ablated: the per-{class} drops weighted by the {classes}' "
        "sizes. It is measurable when the 95 % interval of the drop, paired over the same test images, excludes 0.",
        "the test accuracy the whole network loses when one unit is removed.",
        ("ablation.mean.importance", "important_units.zero", "important_units.mean"),
    ),
    Measure(
        "Linear read-out accuracy",
        "layer.linear_readout_accuracy",
        (),
        "the share of test images a linear read-out of the layer classifies correctly: ridge regression (penalty "
        "0.001 per image) of the one-hot {class} on the standardised units and a bias, the largest output taken as "
        "the {class}; fit on the even-numbered test images and scored on the odd ones, then the other way round. "
        "A lower bound on what the layer carries about the {class}: a logistic or non-linear read-out may recover "
        "more.",
        "how well a straight-line classifier reading only this layer's units predicts the {class}.",
    ),
)


def worded(words: dict) -> list[dict]:
    """The entries as the pages print them: placeholders filled from `words` (class, classes, unit, units,
    threshold, near_dead)."""
    return [
        {
            "name": m.name.format(**words),
            "field": m.field,
            "axes": m.axes,
            "formula": m.formula.format(**words),
            "meaning": m.meaning.format(**words),
        }
        for m in MEASURES
    ]


def fields() -> set[str]:
    """Every record field an entry names, its companions included."""
    return {m.field for m in MEASURES} | {c for m in MEASURES for c in m.companions}


# Fields of the measure sections that are no measure, each with its reason: a field of those sections is either
# a registry entry's (or its companion) or listed here, so a new one cannot be forgotten (tests/test_registry.py).
NOT_MEASURES = {
    "per_class.count": "the data: how many test images each class has",
    "per_class.examples": "which test images the class pages show",
    "per_unit.top_examples": "which test images a unit page shows",
    "per_unit.silent_examples": "which test images a unit page shows",
    "per_unit.output_weights": "the model's own weights, shown as they are",
    "per_unit.input_weights": "the model's own weights, shown as they are",
    "per_unit.filters": "the model's own weights, shown as they are",
    "per_unit.top_maps": "the maps behind the top images a unit page shows",
    "per_unit.feature_visualisation": "a picture of what drives a unit, not a number the claims use",
    "class_unit.mean_maps": "the maps behind class_unit.mean, shown as pictures",
}
MEASURE_SECTIONS = ("per_class", "per_unit", "class_unit")  # every field of these sections
MEASURE_PARTS = ("invariant",)  # and every key of these dict parts


def record_fields(record: Any) -> set[str]:
    """The record's measure fields: every field of MEASURE_SECTIONS and every key of MEASURE_PARTS."""
    found = {f"{s}.{f.name}" for s in MEASURE_SECTIONS for f in dataclasses.fields(getattr(record, s))}
    return found | {f"{part}.{key}" for part in MEASURE_PARTS for key in getattr(record, part)}


def unregistered(record: Any) -> list[str]:
    """Measure fields of the record that no entry names and NOT_MEASURES does not exempt (should be none)."""
    return sorted(record_fields(record) - fields() - set(NOT_MEASURES))


def resolve(record: Any, path: str) -> Any:
    """The value at a registry path: attributes of the record's sections, then keys of its dict parts."""
    value = record
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def unresolved(record: Any) -> list[str]:
    """Fields named by entries that the record does not hold (should be none)."""
    missing = []
    for path in sorted(fields()):
        try:
            resolve(record, path)
        except (AttributeError, KeyError, TypeError):
            missing.append(path)
    return missing
