"""Calibration models, files and presets against values computed by hand from the published formulas."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration import files, presets, tomlwrite
from calibration.models import EpaExtended, Linear, Multilinear, PiecewiseLinear, Polynomial
from contract.configfile import ConfigError
from contract.flags import Flag


def test_each_model_applies_its_formula() -> None:
    assert Linear(slope=0.5, intercept=2.0).apply(10.0) == 7.0
    assert Multilinear(a=0.524, b=-0.0862, c=5.75).apply(20.0, rh=40.0) == pytest.approx(12.782)
    assert Polynomial(c=(1.0, 2.0, 3.0)).apply(2.0) == 1 + 4 + 12
    table = PiecewiseLinear(points=((1.0, 100.0), (2.0, 50.0), (4.0, 0.0)))
    assert table.apply(1.5) == 75.0
    assert table.apply(3.0) == 25.0
    assert table.apply(0.0) == 150.0  # end segment extended
    assert table.apply(5.0) == -25.0


# The US EPA US-wide correction (Barkjohn et al. 2021): 0.524·x − 0.0862·RH + 5.75, by hand.
@pytest.mark.parametrize(
    ("x", "rh", "expected"),
    [(0.0, 0.0, 5.75), (20.0, 40.0, 12.782), (100.0, 60.0, 52.978), (10.0, 90.0, 3.232)],
)
def test_epa_us_2021_preset_matches_the_published_formula(x: float, rh: float, expected: float) -> None:
    cal = presets.load_preset("epa-us-2021")
    result = cal.apply(x, rh=rh)
    assert result.value == round(expected, 4)
    assert result.flags == frozenset()
    assert cal.id == "epa-us-2021"


# The extended (smoke) version at RH 50 %, each breakpoint and each piece, computed by hand:
# 0.0862·50 = 4.31.
@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (29.9, 0.524 * 29.9 - 4.31 + 5.75),  # 17.1076, first piece
        (30.0, 17.16),  # w = 0: still 0.524·30 − 4.31 + 5.75
        (40.0, 27.64),  # w = 0.5: (0.786·0.5 + 0.524·0.5)·40 = 26.2
        (50.0, 40.74),  # 0.786·50 − 4.31 + 5.75
        (209.99, 0.786 * 209.99 - 4.31 + 5.75),
        (210.0, 166.5),  # w = 0: 0.786·210 − 4.31 + 5.75
        (235.0, 200.04245),  # w = 0.5: 173.43 − 2.155 + 1.483 + 2.875 + 24.40945
        (260.0, 242.1244),  # 2.966 + 179.4 + 59.7584
        (500.0, 568.966),  # 2.966 + 345 + 221, no RH term
    ],
)
def test_epa_extended_preset_at_each_breakpoint(x: float, expected: float) -> None:
    cal = presets.load_preset("epa-us-2021-extended")
    assert cal.apply(x, rh=50.0).value == round(expected, 4)


@pytest.mark.parametrize("edge", [30.0, 50.0, 210.0, 260.0])
def test_epa_extended_is_continuous_at_its_breakpoints(edge: float) -> None:
    model = EpaExtended()
    below, at = model.apply(edge - 1e-9, rh=35.0), model.apply(edge, rh=35.0)
    assert below == pytest.approx(at, abs=1e-5)


def test_epa_extended_needs_no_rh_above_260_and_falls_back_below() -> None:
    cal = presets.load_preset("epa-us-2021-extended")
    assert cal.apply(500.0).value == 568.966
    assert cal.apply(500.0).flags == frozenset()
    no_rh = cal.apply(20.0)
    assert no_rh.value == round(0.524 * 20 - 0.0862 * 50 + 5.75, 4)  # the documented 50 % RH
    assert no_rh.flags == {Flag.CAL_FALLBACK}


def test_sen0189_preset_follows_the_manufacturer_curve_and_gives_no_value_outside_it() -> None:
    cal = presets.load_preset("dfrobot-sen0189")
    assert cal.apply(3.0).value == 2790.4  # −1120.4·9 + 5742.3·3 − 4352.9
    assert cal.apply(4.2).value == 0.904
    assert cal.apply(2.5).value == 3000.35
    for volts in (4.5, 2.0):  # where the parabola goes negative, or turns back
        outside = cal.apply(volts)
        assert outside.value is None
        assert outside.flags == {Flag.OUT_OF_RANGE}


def test_clamp_holds_the_input_at_the_end_of_the_range(tmp_path: Path) -> None:
    path = tmp_path / "cal.toml"
    path.write_text(BASE.replace("max = 100", 'max = 100\noutside = "clamp"'))
    cal = files.load(path)
    assert cal.apply(200.0, water_temp=20.0) == files.Result(51.0, frozenset({Flag.OUT_OF_RANGE}))


def test_every_preset_names_its_source() -> None:
    assert set(presets.names()) == {"epa-us-2021", "epa-us-2021-extended", "dfrobot-sen0189"}
    for name in presets.names():
        cal = presets.load_preset(name)
        assert cal.id == name
        assert cal.provenance.source and "http" in cal.provenance.source


BASE = """
id = "pms5003-a12@2026-10-01"
metric = "pm2_5"
model = "linear"
valid_from = 2026-10-01T00:00:00Z
valid_to = 2027-04-01T00:00:00Z
[sensor]
type = "pms5003"
serial = "A12"
[coefficients]
slope = 0.5
intercept = 1.0
[range]
min = 0
max = 100
[water_temp]
coefficient_per_c = 0.1
reference_c = 20
[provenance]
method = "co-location"
"""


def test_range_and_water_temperature_compensation(tmp_path: Path) -> None:
    path = tmp_path / "cal.toml"
    path.write_text(BASE)
    cal = files.load(path)
    assert cal.apply(10.0, water_temp=20.0).value == 6.0
    assert cal.apply(10.0, water_temp=30.0).value == 5.5  # x_ref = 10 − 0.1·10 = 9
    assert cal.apply(10.0).flags == {Flag.CAL_FALLBACK}  # no water temperature: uncompensated
    high = cal.apply(200.0, water_temp=20.0)
    assert high.value == 101.0 and high.flags == {Flag.OUT_OF_RANGE}  # extrapolated, flagged


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("slope = 0.5", ""), "cal.toml: coefficients.slope: Field required"),
        (("slope = 0.5", "slope = 0.5\nslop = 1"), "cal.toml: coefficients.slop: unknown key"),
        (('model = "linear"', 'model = "cubic"'), "cal.toml: model: 'cubic' is not a calibration model"),
        (('metric = "pm2_5"', 'metric = "dust"'), "cal.toml: metric: 'dust' is not one of"),
        (("valid_to = 2027-04-01T00:00:00Z", "valid_to = 2020-01-01T00:00:00Z"), "valid_to must be after"),
        (("valid_from = 2026-10-01T00:00:00Z", "valid_from = 2026-10-01"), "cal.toml: valid_from:"),
        (
            ('id = "pms5003-a12@2026-10-01"', 'id = "has space"'),
            "cal.toml: id: 'has space' does not fit this key's form",
        ),
        (("max = 100", "max = -1"), "cal.toml: range: Value error, min (0) must be below max (-1)"),
        (('model = "linear"', 'model = "multilinear"'), "cal.toml: coefficients.a: Field required"),
    ],
)
def test_bad_calibration_files_name_the_file_and_the_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "cal.toml"
    path.write_text(BASE.replace(*change))
    with pytest.raises(ConfigError) as err:
        files.load(path)
    assert str(err.value).startswith(str(tmp_path)) and message in str(err.value)


def test_multilinear_file_must_say_what_rh_it_assumes(tmp_path: Path) -> None:
    text = BASE.replace('model = "linear"', 'model = "multilinear"').replace(
        "slope = 0.5\nintercept = 1.0", "a = 1\nb = 2\nc = 3"
    )
    path = tmp_path / "cal.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="rh_fallback: required"):
        files.load(path)
    path.write_text("rh_fallback = 45\n" + text)
    assert files.load(path).apply(1.0).value == 1 + 90 + 3


@given(
    st.dictionaries(
        st.sampled_from(["id", "metric", "model", "valid_from", "sensor", "coefficients", "extra"]),
        st.one_of(st.integers(), st.text(max_size=5), st.lists(st.floats(allow_nan=True)), st.none()),
    )
)
def test_any_garbage_document_is_a_config_error_never_a_crash(doc: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        files.parse(doc, "garbage.toml")


def test_dumps_writes_toml_that_reads_back_the_same() -> None:
    doc = tomllib.loads(BASE)
    assert tomllib.loads(tomlwrite.dumps(doc)) == doc


@given(
    st.floats(0, 2000, allow_nan=False),
    st.floats(0, 2000, allow_nan=False),
    st.floats(0, 100, allow_nan=False),
)
def test_epa_extended_never_decreases_as_the_sensor_reads_more(a: float, b: float, rh: float) -> None:
    low, high = sorted((a, b))
    model = EpaExtended()
    assert model.apply(low, rh=rh) <= model.apply(high, rh=rh) + 1e-9


@given(
    st.lists(
        st.tuples(st.floats(-1e3, 1e3, allow_nan=False), st.floats(-1e3, 1e3, allow_nan=False)),
        min_size=2,
        max_size=8,
        unique_by=lambda p: round(p[0], 3),
    )
)
def test_a_piecewise_curve_passes_through_its_points(points: list[tuple[float, float]]) -> None:
    table = PiecewiseLinear(points=tuple(sorted(points)))
    for x, y in table.points:
        assert table.apply(x) == pytest.approx(y, abs=1e-6)
