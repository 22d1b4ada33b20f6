"""The takeaways' words follow the numbers: each helper against the comparison written out."""

from simcse_lab.apps.narrative import all_or_some, change, compared, how_closely


def test_change_names_the_direction_the_numbers_move():
    assert change(0.43, 0.61) == "rises from 0.43 to 0.61"
    assert change(66.83, 62.74, 1) == "falls from 66.8 to 62.7"
    assert change(0.431, 0.434) == "stays at 0.43"


def test_compared_and_adverbs():
    assert compared(60.2, 57.9) == "2.3 points above" and compared(54.0, 54.35) == "0.4 points below"
    assert compared(54.02, 54.04) == "level with"
    assert [how_closely(r) for r in (0.84, 0.7, 0.5, 0.1)] == ["closely", "largely", "partly", "hardly"]
    assert [all_or_some(f) for f in ([True, True], [False, False], [True, False])] == ["both", "neither", "one of them"]
