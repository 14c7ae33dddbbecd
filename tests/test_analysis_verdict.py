"""Verdicts: each observable within/outside its stated tolerance, not judged when the comparison is unfair."""

import pytest

from trajcast_dist.analysis.verdict import NOT_JUDGED, OUTSIDE, TOLERANCES, WITHIN, judge, overall_verdict


def summary(gap=0.02, peak_g=3.1, bin_A=0.031, overlap=0.95, d=2.0, fit_start_ps=2.0):
    return {
        "temperature": {"forecast": {"species_mean_K": {"H": 300.0, "O": 290.0}, "equipartition_gap": gap}},
        "rdf": {"O-O": {"forecast": {"peak_r_A": 2.75, "peak_g": peak_g, "bin_A": bin_A},
                        "reference": {"peak_r_A": 2.75, "peak_g": 3.0, "bin_A": 0.031}}},
        "vdos": {"H": {"overlap": overlap, "cosine": 0.99}},
        "diffusion": {"O": {"forecast": {"D": d, "err": 0.1, "fit_window_ps": [fit_start_ps, 5.0]},
                            "reference": {"D": 2.0, "err": 0.1, "fit_window_ps": [2.0, 5.0]}}},
    }


def statuses(s):
    return {v.key: v.status for v in judge(s)}


def test_agreeing_forecast_is_within_on_every_observable():
    assert statuses(summary()) == {"equipartition": WITHIN, "rdf_peak O-O": WITHIN, "vdos_overlap H": WITHIN,
                                   "D O": WITHIN}
    assert overall_verdict(judge(summary())) == "verdict: within tolerance on all 4 judged observables"


@pytest.mark.parametrize("change, key", [
    ({"gap": TOLERANCES.equipartition_gap + 0.01}, "equipartition"),
    ({"peak_g": 3.0 * (1 + TOLERANCES.rdf_peak_height) + 0.01}, "rdf_peak O-O"),
    ({"peak_g": 3.0 * (1 - TOLERANCES.rdf_peak_height) - 0.01}, "rdf_peak O-O"),
    ({"overlap": TOLERANCES.vdos_overlap - 0.01}, "vdos_overlap H"),
    ({"d": 2.0 * (1 + TOLERANCES.diffusion) + 0.01}, "D O"),
])
def test_each_observable_past_its_tolerance_is_outside_and_named_in_the_verdict(change, key):
    verdicts = judge(summary(**change))
    assert {v.key for v in verdicts if v.status == OUTSIDE} == {key}
    line = overall_verdict(verdicts)
    assert line.startswith("verdict: OUTSIDE tolerance on 1 of 4 judged observables")
    assert next(v.label for v in verdicts if v.key == key) in line


def test_tolerance_edges_are_within():
    edge = summary(gap=TOLERANCES.equipartition_gap, overlap=TOLERANCES.vdos_overlap)
    assert statuses(edge)["equipartition"] == WITHIN and statuses(edge)["vdos_overlap H"] == WITHIN


def test_short_fit_window_and_other_bin_width_are_not_judged_and_say_why():
    verdicts = {v.key: v for v in judge(summary(fit_start_ps=0.03, bin_A=0.062, d=9.0, peak_g=9.0))}
    assert verdicts["D O"].status == NOT_JUDGED and "0.03 ps < 1 ps" in verdicts["D O"].reason
    assert verdicts["rdf_peak O-O"].status == NOT_JUDGED and "0.062" in verdicts["rdf_peak O-O"].reason
    line = overall_verdict(list(verdicts.values()))
    assert line == "verdict: within tolerance on all 2 judged observables; not judged: g O-O first peak, D O"


def test_without_a_reference_only_equipartition_is_judged():
    s = summary()
    for key in ("rdf", "diffusion"):
        for entry in s[key].values():
            entry.pop("reference")
    del s["vdos"]
    assert statuses(s) == {"equipartition": WITHIN}


def with_temperature(mean_K, t0_K=300.0, n_frames=2001, dt_fs=5.0):
    s = summary()
    s["temperature"]["forecast"]["mean_K"] = mean_K
    s["settings"] = {"t0_K": t0_K}
    s["forecast"] = {"n_frames": n_frames, "dt_fs": dt_fs}
    return s


def test_mean_temperature_is_judged_against_an_explicit_target_only():
    edge = 300.0 * (1 + TOLERANCES.temperature_mean)
    assert statuses(with_temperature(edge - 0.01))["temperature"] == WITHIN
    verdicts = judge(with_temperature(edge + 0.01))
    assert {v.key for v in verdicts if v.status == OUTSIDE} == {"temperature"}
    assert overall_verdict(verdicts) == "verdict: OUTSIDE tolerance on 1 of 5 judged observables (T mean)"
    # a run that ran away late: the mean of a 550 K run 12 % high
    assert statuses(with_temperature(614.0, t0_K=550.0))["temperature"] == OUTSIDE
    # without --t0 the target defaults to the mean: nothing to judge
    assert "temperature" not in statuses(with_temperature(310.0, t0_K=None))


def test_mean_temperature_of_a_short_run_is_not_judged_and_says_why():
    short = {v.key: v for v in judge(with_temperature(320.0, n_frames=101))}["temperature"]
    assert short.status == NOT_JUDGED and "0.5 ps analysed < 5 ps" in short.reason
