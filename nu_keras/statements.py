"""The sentences that state a result, each chosen by the numbers: Home's summary, the Abstract, the result
headings. Templates print these; they never decide a direction, a side or a verdict themselves.

Every function takes the render context (`pages.build_context` plus `sweep`, its `m` the measurement
record) and returns Markdown built
only from numbers and our own words; the class and unit nouns come from `pages.dataset_words` and are
escaped here like any other text.
"""

from __future__ import annotations

from markupsafe import Markup

from nu_keras import inference
from nu_keras.formats import count, escape_markup, fixed, pct, pvalue
from nu_keras.record import Measurements

NULL_NAMES = {"eta_squared": "η²", "d_prime": "d′", "rescaled_matched_share": "the matched share"}
CLAIM_NAMES = {
    "verdict": "dominant units (the paper's claim)",
    "specificity_verdict": "a different dominant unit per {noun}",
    "privileged_verdict": "a privileged neuron basis",
}
LEVEL = 1 - inference.CONFIDENCE


def relation(correlation: dict | None, adjusted_p: float | None = None) -> str:
    """ "positively related", "negatively related", "no clear relation" or "cannot be compared": a rank
    correlation's direction only where its p-value (Holm-adjusted when given) is below the level."""
    if correlation is None:
        return "cannot be compared"
    p = adjusted_p if adjusted_p is not None else correlation["p"]
    if p >= LEVEL:
        return "no clear relation"
    return "positively related" if correlation["rho"] > 0 else "negatively related"


def rho_brief(correlation: dict | None, adjusted_p: float | None = None) -> str:
    if correlation is None:
        return "ρ undefined"
    text = f"ρ = {fixed(correlation['rho'])}, {pvalue(correlation['p'])}"
    if adjusted_p is not None:
        text += f"; Holm-adjusted over the family of tests on the [Method](method.md) page, {pvalue(adjusted_p)}"
    return text


def selectivity_correlation(context: dict) -> tuple[dict | None, float | None]:
    """Selectivity against zero-ablation importance, pooled over seeds where there is a sweep, with its
    Holm-adjusted p-value where the run corrected it (None otherwise)."""
    record, sweep = context["m"], context.get("sweep")
    if sweep and sweep.get("paper"):
        name, tests = "pooled_selectivity_vs_zero_ablation", sweep.get("tests") or {}
        correlation = sweep["paper"]["summary"]["selectivity_vs_ablation_pooled"]["zero"]
    else:
        name, tests = "selectivity_vs_zero_ablation", record.tests or {}
        correlation = context["correlations"]["selectivity_vs_ablation"]["zero"]
    return correlation, (tests.get(name) or {}).get("adjusted")


def selectivity_heading(correlation: dict | None, adjusted_p: float | None = None) -> str:
    """The heading over selectivity against importance, in the direction the data chose."""
    word = relation(correlation, adjusted_p)
    if word == "positively related":
        return "Selective units are the ones the network needs"
    if word == "negatively related":
        return "Selective units are the ones the network needs least"
    if word == "cannot be compared":
        return "Selectivity and importance cannot be compared here"
    return "Selectivity does not predict importance"


def sides(places: dict | None) -> dict[str, list[str]]:
    """Measures grouped by where the neurons sit against the rotation null: {"above": [...], ...}."""
    grouped: dict[str, list[str]] = {inference.ABOVE: [], inference.WITHIN: [], inference.BELOW: []}
    for key, place in (places or {}).items():
        if place.get("side") in grouped and key in NULL_NAMES:  # only our own words reach the page
            grouped[place["side"]].append(NULL_NAMES[key])
    return grouped


def basis_phrase(places: dict | None) -> str:
    """ "above random on η² and d′, within it on the matched share" (each side named only if it holds)."""
    grouped = sides(places)
    parts = [f"{side} random on {_and(names)}" for side, names in grouped.items() if names]
    return "; ".join(parts) if parts else "not compared with rotations"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def verdicts_sentence(sweep: dict, noun: str) -> str:
    """The three claims together, each with its three-valued verdict and pass count."""
    parts = []
    for key, name in CLAIM_NAMES.items():
        verdict = sweep.get(key)
        if verdict:
            label = Markup(name.format(noun=noun))  # our own words
            word = escape_markup(verdict["verdict"])
            passing, seeds = int(verdict["seeds_passing"]), int(verdict["seeds"])
            parts.append(f"{label}: **{word}** ({passing} of {seeds} seeds pass)")
    return "; ".join(parts)


def network_claims_sentence(record: Measurements, nouns: str) -> str:
    """The three claims judged on this one network by the same thresholds (no interval: one network, one
    test each); "" where the analyze stage did not judge them."""
    claims = record.claims
    if not claims:
        return ""
    classes = len(record.classes)
    dominance, specific = claims["dominance"], claims["specificity"]
    percentile = record.method.privileged_percentile
    parts = [
        f"a dominant unit for {int(dominance['classes'])} of {classes} {nouns} (at least "
        f"{int(dominance['required'])} required): **{_passes(dominance)}**",
        f"a dominant unit of its own for {int(specific['classes'])} (at least {int(specific['required'])} "
        f"required): **{_passes(specific)}**",
        f"a privileged basis (above {pct(percentile, 0)} of the rotations on every measure): "
        f"**{_passes(claims['privileged'])}**",
    ]
    return "Judged on this network alone by the thresholds fixed before the run: " + "; ".join(parts)


def _passes(claim: dict) -> str:
    return inference.HOLDS if claim["passes"] else inference.FAILS


def specificity_sentence(specificity: dict | None, nouns: str) -> str:
    if not specificity:
        return ""
    own = len(specificity["classes_with_own_unit"])
    dominated = specificity["classes_with_dominant_unit"]
    distinct = specificity["distinct_dominant_units"]
    return (
        f"{dominated} {nouns} have a dominant unit, from {distinct} distinct unit{'' if distinct == 1 else 's'}; "
        f"{own} have one of their own (chance: {fixed(specificity['chance_own'], 1)}, {pvalue(specificity['p'])})"
    )


def dead_sentence(record: Measurements, sweep_summary: dict | None, units_word: str) -> str:
    dead = record.layer.dead_units
    verb = "is" if len(dead) == 1 else "are"
    here = f"{len(dead)} of {len(record.units)} {units_word} {verb} dead (zero on every test image)"
    if not dead:
        here = f"no {units_word[:-1] if units_word.endswith('s') else units_word} is dead"
    if sweep_summary:
        total = sum(sweep_summary["dead_units"])
        here += f"; over the seeds, {total} dead in all"
    return here + "; dead units are left out of every statistic over units"


def bullets(context: dict) -> list[str]:
    """Home's "In plain words": at most six short bullets, each a result with its number."""
    record, sweep = context["m"], context.get("sweep")
    words = context["dataset"]
    nouns, noun = escape_markup(words["nouns"]), escape_markup(words["noun"])
    units_word = escape_markup(context["subject"]["units_word"])
    summary = sweep["paper"]["summary"] if sweep and sweep.get("paper") else None
    out = []
    accuracy = f"Test accuracy {pct(record.test_accuracy, 2)}"
    if summary:
        accuracy += f"; over {summary['accuracy']['n']} seeds {pct(summary['accuracy']['mean'], 2)}"
    out.append(accuracy + ".")
    if sweep and sweep.get("verdict"):
        out.append("Claims fixed before the run: " + verdicts_sentence(sweep, noun) + ".")
    spec = specificity_sentence(record.specificity, nouns)
    if spec:
        who = f"Seed {record.provenance.config['seed']}" if context["subject"]["trained_here"] else "This layer"
        out.append(f"{who}: {spec}.")
    null = record.null or (sweep["paper"]["models"][0]["null"] if summary else None)
    if null and null.get("place"):
        out.append(
            f"Against {count(null['place']['eta_squared']['rotations'])} random rotations of the same layer, the "
            f"{units_word} sit {basis_phrase(null['place'])}."
        )
    correlation, adjusted = selectivity_correlation(context)
    if correlation is not None and not context["subject"]["signed"]:
        scope = "over the live units of all seeds" if summary else "over the live units"
        out.append(
            f"Selectivity and the accuracy lost without a unit: {relation(correlation, adjusted)} {scope} "
            f"({rho_brief(correlation, adjusted)})."
        )
    noise = ablation_sentence(record, units_word)
    if noise and not summary:
        out.append(noise + ".")
    out.append(_sentence(dead_sentence(record, summary, units_word)))
    return [Markup(line) for line in out[:6]]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def ablation_sentence(record: Measurements, units_word: str) -> str:
    """How many units have a measurable ablation effect (the drop's paired interval excludes 0)."""
    noise = record.ablation_noise
    if not noise:
        return ""
    measurable = sum(entry["measurable"] for entry in noise["zero"])
    return (
        f"{measurable} of {len(noise['zero'])} {units_word} have a measurable effect when zeroed "
        "(the accuracy drop's 95 % interval, paired over the same images, excludes 0)"
    )


def abstract(context: dict) -> Markup:
    """The Findings Abstract: what was measured and what all three claims say together, under 150 words."""
    record, sweep = context["m"], context.get("sweep")
    words = context["dataset"]
    nouns, noun = escape_markup(words["nouns"]), escape_markup(words["noun"])
    units_word = escape_markup(context["subject"]["units_word"])
    summary = sweep["paper"]["summary"] if sweep and sweep.get("paper") else None
    classes, config = len(record.classes), record.provenance.config
    if context["subject"]["trained_here"]:
        opening = (
            f"We retrained the paper's 784-{config['hidden_units']}-{classes} network on "
            f"{escape_markup(words['title'])} (seed {config['seed']}) to {pct(record.test_accuracy, 2)} "
            f"test accuracy and read its hidden layer on {count(record.n_test)} test images."
        )
    else:
        opening = (
            f"We read one layer of a model trained elsewhere ({pct(record.test_accuracy, 2)} test accuracy) "
            f"on {count(record.n_test)} test images."
        )
    raw = len(record.claim["classes_with_dominant_unit"])
    rescaled = int(record.invariant["rescaled_dominant_classes"])
    parts = [
        opening,
        f"By the paper's measure {raw} of {classes} {nouns} have a dominant unit; with each unit divided by its "
        f"spread, which changes no prediction, {rescaled} do.",
    ]
    spec = specificity_sentence(record.specificity, nouns)
    if spec:
        parts.append(_sentence(spec))
    null = record.null or (sweep["paper"]["models"][0]["null"] if summary else None)
    if null and null.get("place"):
        parts.append(f"Against random rotations of the same layer the {units_word} sit {basis_phrase(null['place'])}.")
    if sweep and sweep.get("verdict"):
        parts.append(
            f"Over {sweep['verdict']['seeds']} seeds, the claims fixed before the run: "
            f"{verdicts_sentence(sweep, noun)}."
        )
    else:
        judged = network_claims_sentence(record, nouns)
        if judged:
            parts.append(_sentence(judged))
        elif context["subject"]["trained_here"]:
            parts.append("This run has no seed sweep, so no claim is judged over seeds.")
    return Markup(" ".join(parts))


def silence_sentence(context: dict) -> str:
    """Whether the most selective units are the ones silent on most images, as the data say."""
    units = [r for r in context["unit_rows"] if r["selectivity"] is not None and r["dead_fraction"] < 1.0]
    if context["subject"]["signed"] or not units:
        return ""
    top = sorted(units, key=lambda r: -r["selectivity"])[:3]
    silent = [r for r in top if r["dead_fraction"] > 0.5]
    units_word = escape_markup(context["subject"]["units_word"])
    if len(silent) == len(top):
        return (
            f"The {len(top)} most selective {units_word} are each silent on more than half of the test images, so "
            "zeroing them changes few predictions."
        )
    return (
        f"Of the {len(top)} most selective {units_word}, {len(silent)} {'is' if len(silent) == 1 else 'are'} silent "
        "on more than half of the test images: selectivity here is not only a matter of being off most of the time."
    )


def matching_sentence(summary: dict) -> str:
    """Do units recur across seeds more than the matching finds in structureless baselines?"""
    matching = summary["matching"]
    trained = matching["trained"]
    baselines = {name: matching[name] for name in ("shuffled", "untrained", "rotated")}
    beaten = [name for name, b in baselines.items() if trained["low"] > b["high"]]
    if len(beaten) == len(baselines):
        return "the trained units' roles recur across seeds more than the matching finds in any baseline."
    close = [name for name in baselines if name not in beaten]
    return (
        f"the trained units match no better than {_and([f'{n} profiles' for n in close])} "
        f"({fixed(trained['mean'])} against {_and([fixed(baselines[n]['mean']) for n in close])}): the matching "
        "itself finds this much correlation where there is no shared role."
    )


def dynamics_sentences(record: Measurements, nouns: str) -> str:
    """Two sentences on when dominance appeared during the fit, from the per-epoch record (epoch 0 is the
    initialisation); "" for a network not trained here."""
    d = record.dynamics
    if not d or len(d["epoch"]) < 2:
        return ""
    counts = d["dominant_classes"]
    final = counts[-1]
    reached = next(e for e, c in zip(d["epoch"], counts, strict=True) if c >= final)
    if counts[0] >= final:
        when = "training did not raise it"
    elif reached == d["epoch"][-1]:
        when = "the count was still rising at the last epoch"
    else:
        when = f"the final count was first reached after epoch {reached}"
    first = (
        f"Before training, {counts[0]} {nouns} have a dominant unit (test accuracy "
        f"{pct(d['test_accuracy'][0], 1)}); after the first epoch {counts[1]}, and after the last "
        f"{final} ({pct(d['test_accuracy'][-1], 1)}): {when}."
    )
    second = (
        f"Over the same epochs the distinct dominant units go from {d['distinct_dominant_units'][0]} to "
        f"{d['distinct_dominant_units'][-1]}, the {nouns} with a unit of their own from {d['own_unit_classes'][0]} to "
        f"{d['own_unit_classes'][-1]}, the count after dividing each unit by its spread from "
        f"{d['rescaled_dominant_classes'][0]} to {d['rescaled_dominant_classes'][-1]}, the mean η² from "
        f"{fixed(d['mean_eta_squared'][0])} to {fixed(d['mean_eta_squared'][-1])}, and the dead units from "
        f"{d['dead_units'][0]} to {d['dead_units'][-1]}."
    )
    return first + " " + second


def said(context: dict) -> dict:
    """Everything the templates print that states a result."""
    record, sweep = context["m"], context.get("sweep")
    summary = sweep["paper"]["summary"] if sweep and sweep.get("paper") else None
    correlation, adjusted = selectivity_correlation(context)
    return {
        "bullets": bullets(context),
        "abstract": abstract(context),
        "selectivity_heading": selectivity_heading(correlation, adjusted),
        "selectivity_relation": relation(correlation, adjusted),
        "silence": silence_sentence(context),
        "matching": matching_sentence(summary) if summary and len(sweep["paper"]["models"]) > 1 else "",
        "dynamics": Markup(dynamics_sentences(record, escape_markup(context["dataset"]["nouns"]))),
    }
