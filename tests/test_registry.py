"""The registry of measures against the record and the pages: every measure field of the record has an entry,
every entry's field is in a record `measure` makes, and the Method page and the Glossary print every entry."""

import dataclasses

import numpy as np
import pytest
from conftest import measured, synthetic_run

from nu_keras import measures, pages
from nu_keras.config import PROJECT_ROOT, RunConfig

WORDS = {"class": "class", "classes": "classes", "unit": "unit", "units": "units"}
WORDS |= {"threshold": "50 %", "near_dead": "95 %"}


@pytest.fixture(scope="module")
def record():
    acts, weights = synthetic_run(units=6)
    return measured(acts, weights, RunConfig(rotation_null_samples=100))


def test_every_entry_names_a_field_the_record_holds_with_the_entrys_axes(record):
    assert measures.unresolved(record) == []
    sizes = {"class": len(record.classes), "unit": len(record.units)}
    for entry in measures.MEASURES:
        value = measures.resolve(record, entry.field)
        assert value is not None, entry.name
        if entry.field.split(".")[0] in ("per_class", "per_unit", "class_unit", "ablation"):
            assert np.shape(value) == tuple(sizes[axis] for axis in entry.axes), entry.name
        elif not entry.axes:
            assert np.ndim(value) == 0, entry.name


def test_every_measure_field_of_the_record_has_an_entry_or_a_reason(record):
    assert measures.unregistered(record) == []
    assert not set(measures.NOT_MEASURES) & measures.fields()  # exempt means no entry


def test_a_record_field_left_out_of_the_registry_fails_the_guard(record, monkeypatch):
    without_eta = tuple(m for m in measures.MEASURES if m.field != "per_unit.eta_squared")
    monkeypatch.setattr(measures, "MEASURES", without_eta)
    assert measures.unregistered(record) == ["invariant.eta_squared", "per_unit.eta_squared"]  # and its companion


def test_an_entry_whose_field_the_record_lacks_fails_the_guard(record, monkeypatch):
    ghost = measures.Measure("Ghost", "per_unit.ghost", ("unit",), "none", "none")
    monkeypatch.setattr(measures, "MEASURES", (*measures.MEASURES, ghost))
    assert measures.unresolved(record) == ["per_unit.ghost"]


def test_a_new_field_of_a_measure_section_without_an_entry_fails_the_guard(record):
    # a record whose per_unit section grew a field: a stand-in with one more attribute than PerUnit
    # (with a default: PerUnit's last fields have defaults, the optional pictures)
    novelty = ("novelty", int, dataclasses.field(default=0))
    grown = dataclasses.make_dataclass("Grown", [novelty], bases=(type(record.per_unit),), frozen=True)
    per_unit = grown(
        **{f.name: getattr(record.per_unit, f.name) for f in dataclasses.fields(record.per_unit)}, novelty=1
    )
    assert measures.unregistered(dataclasses.replace(record, per_unit=per_unit)) == ["per_unit.novelty"]


@pytest.mark.parametrize("template", ["method.md.j2", "glossary.md.j2"])
def test_the_method_page_and_the_glossary_print_every_entry(template):
    page = pages.environment(PROJECT_ROOT / "report_templates").get_template(template)
    assert "measures" in page.blocks, f"{template} has no measures block"
    entries = measures.worded(WORDS)
    text = "".join(page.blocks["measures"](page.new_context({"measures": entries})))
    for entry in entries:
        assert f"**{pages.escape_markup(entry['name'])}**" in text, entry["name"]
    assert "{class}" not in text and "{threshold}" not in text  # every placeholder filled


def test_the_entries_are_worded_for_mnist():
    digits = WORDS | {"class": "digit", "classes": "digits"}
    entries = {entry["name"]: entry for entry in measures.worded(digits)}
    assert "Preferred digit" in entries and "Accuracy per digit" in entries
    assert "exceeds 50 %" in entries["Dominant unit"]["formula"]
    assert not any("{" in e["formula"] + e["meaning"] for e in entries.values())  # no placeholder left
