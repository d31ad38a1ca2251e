"""report/widths.py: the shortest unique names a table shows."""

from __future__ import annotations

import random

from dltrain.report.widths import _candidates, unique_names


def pairwise(names: list[str], separator: str = "/") -> list[str]:
    """The definition, one name against all the others' forms (quadratic: the reference)."""
    forms = [_candidates(name, separator, True) for name in names]
    return [next((form for form in own if all(form not in other for at, other in
                                              enumerate(forms) if at != index)), names[index])
            for index, own in enumerate(forms)]


def test_each_name_gets_the_form_no_other_name_could_stand_for() -> None:
    rng = random.Random(0)
    parts = ["a", "b", "cnn", "mlp", "x.yaml", "y.yaml"]
    for _ in range(200):
        names = ["/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
                 for _ in range(rng.randint(1, 8))]
        assert unique_names(names) == pairwise(names), names


def test_predicts_thousands_of_rows_are_named_by_their_row() -> None:
    names = [f"test.csv:{row}" for row in range(20_000)] + ["images/a/cat.png", "images/b/cat.png"]
    shown = unique_names(names)
    assert shown[:2] == ["test.csv:0", "test.csv:1"] and shown[-2:] == ["a/cat", "b/cat"]
