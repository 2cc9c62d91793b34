"""srgan.training.fonts and srgan.training.synth: installed families, the held-out split, the renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srgan.training.data import spread_x_heights
from srgan.training.fonts import (
    CATEGORIES,
    FAMILIES,
    HELD_OUT_DESIGNS,
    held_out_families,
    installed_families,
    training_families,
)
from srgan.training.synth import RVL_CLASSES, synth_document


@pytest.fixture(scope="module")
def families():
    found = installed_families()
    if len(training_families()) < 2 or not held_out_families():
        pytest.skip("the font packages of the Makefile's system target are not installed")
    return found


def test_held_out_split_is_by_design_and_fixed():
    held = {f.name for f in FAMILIES if f.held_out}
    train = {f.name for f in FAMILIES if not f.held_out}
    assert held and train and not held & train
    # every family of a held-out design is held out: no clone of it is trained on
    assert {f.design for f in FAMILIES if f.name in train}.isdisjoint(HELD_OUT_DESIGNS)
    assert {f.category for f in FAMILIES if f.held_out} == set(CATEGORIES)  # one of each kind kept back
    assert all(f.files[0][0] == "regular" for f in FAMILIES)


def test_installed_families_found_by_file(families):
    assert {f.category for f in families} == set(CATEGORIES)
    for fam in families:
        assert fam.path("regular").endswith(dict(fam.family.files)["regular"])
        assert fam.path("bold_italic")  # the regular file when a style is missing
    assert not {f.name for f in training_families()} & {f.name for f in held_out_families()}
    many_styles = [f for f in families if len(f.styles) == 4]
    assert len(many_styles) >= 10


def test_document_is_deterministic_and_uses_the_given_families(families):
    train = training_families()
    a = synth_document(11, 8.0, train, max_side=500)
    b = synth_document(11, 8.0, train, max_side=500)
    assert np.array_equal(a.image, b.image) and a.families == b.families
    assert a.image.dtype == np.uint8 and a.image.min() < 64 and a.image.max() == 255
    assert set(a.families) <= {f.name for f in train}
    held = held_out_families()
    h = synth_document(11, 8.0, held, max_side=500)
    assert set(h.families) <= {f.name for f in held}


def test_page_differs_by_family(families):
    train = training_families()
    one = synth_document(5, 8.0, [train[0]], label=0, max_side=500)
    two = synth_document(5, 8.0, [train[1]], label=0, max_side=500)
    assert one.families == [train[0].name] and two.families == [train[1].name]
    assert not np.array_equal(one.image, two.image)


def test_body_x_height_follows_the_request(families):
    for x_height in (5.0, 12.0, 40.0):
        doc = synth_document(3, x_height, training_families(), label=15, max_side=600)
        assert abs(doc.x_height - x_height) <= max(1.0, 0.08 * x_height)


def test_every_rvl_class_renders_with_ink(families):
    for label in range(len(RVL_CLASSES)):
        doc = synth_document(label, 6.0, training_families(), label=label, max_side=400)
        assert doc.label == label and doc.elements
        assert (doc.image < 128).mean() > 0.005, RVL_CLASSES[label]
    kinds = {e for label in range(16) for e in synth_document(label, 6.0, training_families(), label=label,
                                                                max_side=400).elements}
    assert {"table", "form", "halftone", "stamp", "signature", "logo", "heading", "small_print"} <= kinds


def test_x_height_spread_covers_the_range():
    heights = spread_x_heights(16, 2.5 * 4, 16.0 * 4, seed=0)
    assert len(heights) == 16 and all(10.0 <= h <= 64.0 for h in heights)
    logs = sorted(math.log(h) for h in heights)
    width = (math.log(64) - math.log(10)) / 16
    # one per log-even bin: the smallest and the largest sit in the end bins, no gap wider than two bins
    assert logs[0] < math.log(10) + width and logs[-1] > math.log(64) - width
    assert max(b - a for a, b in zip(logs, logs[1:], strict=False)) < 2 * width
    assert spread_x_heights(16, 10, 64, seed=0) == heights and spread_x_heights(0, 1, 2, 0) == []
