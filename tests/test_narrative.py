"""The takeaways' words follow the numbers: each helper against the comparison written out."""

from simcse_lab.apps.narrative import ablation_reading, all_or_some, change, compared, how_closely


def test_change_names_the_direction_the_numbers_move():
    assert change(0.43, 0.61) == "rises from 0.43 to 0.61"
    assert change(66.83, 62.74, 1) == "falls from 66.8 to 62.7"
    assert change(0.431, 0.434) == "stays at 0.43"


def test_compared_and_adverbs():
    assert compared(60.2, 57.9) == "2.3 points above" and compared(54.0, 54.35) == "0.4 points below"
    assert compared(54.02, 54.04) == "level with"
    assert [how_closely(r) for r in (0.84, 0.7, 0.5, 0.1)] == ["closely", "largely", "partly", "hardly"]
    assert [all_or_some(f) for f in ([True, True], [False, False], [True, False])] == ["both", "neither", "one of them"]


def test_ablation_reading_says_what_the_table_shows():
    ours = {"p=0.0": 66.33, "p=0.05": 64.88, "p=0.1": 66.15, "p=0.5": 64.54, "fixed 0.1": float("nan")}
    paper = {"p=0.0": 71.1, "p=0.1": 82.5, "p=0.15": 81.4}
    assert ablation_reading(ours, 66.83, paper) == (
        "In this run p=0.0 scores highest (66.33) and p=0.5 lowest (64.54), 1.8 points apart; 4 of 4 settings ended below "
        "the raw encoder (66.83). The paper's best is p=0.1.")
    assert ablation_reading({"a": 67.0, "b": 60.0}, 66.83, {"a": 80.0, "b": 70.0}).endswith(
        "1 of 2 settings ended below the raw encoder (66.83). The paper's best, a, is this run's best too.")
    assert ablation_reading({"a": 67.0}, 66.83, {"z": 90.0}) == (
        "In this run a scores highest (67.00); 0 of 1 setting ended below the raw encoder (66.83). The paper's best, z, was not run here.")
    assert ablation_reading({"a": None}, 66.83) == "This run measured none of these settings."
