"""Fitting from co-location data and `minewatch-calibrate`: known coefficients recovered from noisy
synthetic data, statistics against hand-computed values, bad input refused naming file, row, column."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from calibration import files, stats
from calibration.cli import main
from calibration.fit import Pairs, fit
from calibration.models import Linear, Multilinear, Polynomial
from contract.flags import Flag

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def test_statistics_match_hand_computed_values() -> None:
    # reference 1..5, sensor 2,4,5,4,5: means 3 and 4; Σ(r−3)(s−4) = 6, Σ(r−3)² = 10, Σ(s−4)² = 6
    s = stats.compute([2, 4, 5, 4, 5], [1, 2, 3, 4, 5])
    assert s.n == 5
    assert s.slope == pytest.approx(0.6)  # 6 / 10
    assert s.intercept == pytest.approx(2.2)  # 4 − 0.6·3
    assert s.r2 == pytest.approx(0.6)  # 6² / (10·6)
    assert s.rmse == pytest.approx(1.8**0.5)  # differences 1,2,2,0,0: (1+4+4)/5 = 1.8
    assert s.nrmse_pct == pytest.approx(1.8**0.5 / 3 * 100)


def test_epa_targets_are_judged_as_published() -> None:
    good = files.Stats(n=30, r2=0.8, slope=1.2, intercept=-4.0, rmse=8.0, nrmse_pct=25.0)
    bad = files.Stats(n=30, r2=0.6, slope=1.4, intercept=5.5, rmse=8.0, nrmse_pct=35.0)
    assert [t.met(getattr(good, t.key)) for t in stats.PM25_TARGETS] == [True, True, True, False, True]
    assert stats.error_target_met(good) is True  # NRMSE ≤ 30 % is enough
    assert [t.met(getattr(bad, t.key)) for t in stats.PM25_TARGETS] == [False] * 5
    assert stats.error_target_met(bad) is False


def synthetic(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(2, 120, n), rng.uniform(20, 90, n)


def pairs_of(x: np.ndarray, y: np.ndarray, rh: np.ndarray | None = None) -> Pairs:
    starts = [T0 + timedelta(hours=i) for i in range(len(x))]
    return Pairs(starts, list(x), list(y), None if rh is None else list(rh), "synthetic")


def test_linear_fit_recovers_known_coefficients_from_noisy_data() -> None:
    x, _ = synthetic(400)
    y = 0.6 * x + 3.0 + np.random.default_rng(1).normal(0, 1.0, x.size)
    model = fit("linear", pairs_of(x, y))
    assert isinstance(model, Linear)
    # σ = 1 and n = 400: standard errors ≈ 0.003 (slope) and 0.2 (intercept); tolerances are ~3σ
    assert model.slope == pytest.approx(0.6, abs=0.01)
    assert model.intercept == pytest.approx(3.0, abs=0.6)


def test_multilinear_fit_recovers_the_epa_form() -> None:
    x, rh = synthetic(600)
    y = 0.524 * x - 0.0862 * rh + 5.75 + np.random.default_rng(2).normal(0, 1.0, x.size)
    model = fit("multilinear", pairs_of(x, y, rh))
    assert isinstance(model, Multilinear)
    assert model.a == pytest.approx(0.524, abs=0.01)
    assert model.b == pytest.approx(-0.0862, abs=0.015)
    assert model.c == pytest.approx(5.75, abs=1.0)


def test_polynomial_fit_recovers_a_turbidity_curve() -> None:
    volts = np.random.default_rng(3).uniform(2.5, 4.2, 300)
    ntu = -1120.4 * volts**2 + 5742.3 * volts - 4352.9 + np.random.default_rng(4).normal(0, 5.0, 300)
    model = fit("polynomial", pairs_of(volts, ntu), degree=2)
    assert isinstance(model, Polynomial)
    assert model.apply(3.0) == pytest.approx(2790.4, abs=5)
    assert model.c[2] == pytest.approx(-1120.4, rel=0.03)


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def colocation(path: Path, hours: int = 48, per_hour: int = 6) -> Path:
    rng = np.random.default_rng(11)
    rows: list[list[object]] = []
    for i in range(hours * per_hour):
        ts = T0 + timedelta(minutes=60 // per_hour * i)
        ref = 10 + 30 * rng.random()
        rh = 30 + 50 * rng.random()
        sensor = (ref + 0.0862 * rh - 5.75) / 0.524 + rng.normal(0, 0.5)
        rows.append([ts.isoformat(), round(sensor, 3), round(ref, 3), round(rh, 1)])
    return write_csv(path, ["timestamp", "sensor", "reference", "rh"], rows)


def test_fit_writes_a_calibration_file_and_prints_the_epa_statistics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = colocation(tmp_path / "colocation.csv")
    out = tmp_path / "cal" / "pms5003-a12.toml"
    code = main(
        [
            "fit",
            "--input",
            str(data),
            "--metric",
            "pm2_5",
            "--model",
            "multilinear",
            "--rh-column",
            "rh",
            "--average",
            "1h",
            "--out",
            str(out),
            "--serial",
            "a12",
            "--site",
            "UB-4",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for word in ("R²", "slope", "intercept", "RMSE", "NRMSE", "before misses, after meets", "EPA target"):
        assert word in printed
    cal = files.load(out)
    assert cal.id == "pms5003-a12@2026-10-01"
    assert cal.sensor.types == ("pms5003",)
    assert cal.provenance.n == 48 and cal.provenance.site == "UB-4"
    assert cal.provenance.after is not None and cal.provenance.after.rmse is not None
    assert cal.provenance.after.rmse < 0.5 < (cal.provenance.before.rmse or 0)  # type: ignore[union-attr]
    assert isinstance(cal.model, Multilinear) and cal.model.a == pytest.approx(0.524, abs=0.02)
    assert cal.valid_from == T0 and cal.rh_fallback is not None and 30 < cal.rh_fallback < 80


def test_fit_plot_writes_a_png_that_matplotlib_reads_back(tmp_path: Path) -> None:
    data = colocation(tmp_path / "colocation.csv", hours=24)
    png = tmp_path / "fit.png"
    args = ["fit", "--input", str(data), "--metric", "pm2_5", "--out", str(tmp_path / "c.toml")]
    assert main([*args, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[0] > 400 and image.shape[1] > 600


def test_two_files_are_aligned_by_time_and_averaged(tmp_path: Path) -> None:
    sensor = write_csv(
        tmp_path / "sensor.csv",
        ["timestamp", "pm"],
        [[(T0 + timedelta(minutes=10 * i)).isoformat(), 2.0 * (i // 6) + 1.0 + (i % 2)] for i in range(36)],
    )
    # the reference reports hourly, stamped at the start of the hour, with an offset
    reference = write_csv(
        tmp_path / "ref.csv",
        ["time", "ref"],
        [[(T0 + timedelta(hours=h)).astimezone().isoformat(), 1.0 * h + 2.0] for h in range(6)],
    )
    out = tmp_path / "c.toml"
    args = [
        "fit",
        "--input",
        str(sensor),
        "--reference",
        str(reference),
        "--metric",
        "pm10",
        "--sensor-column",
        "pm",
        "--reference-column",
        "ref",
        "--timestamp-column",
        "time",
        "--out",
        str(out),
    ]
    assert main(args) == 2  # the sensor file has no 'time' column
    (tmp_path / "sensor.csv").write_text(sensor.read_text().replace("timestamp", "time", 1))
    assert main(args) == 0
    model = files.load(out).model
    assert isinstance(model, Linear)  # hourly sensor means 2h + 1.5 against reference h + 2
    assert model.slope == pytest.approx(0.5) and model.intercept == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([["2026-10-01T00:00:00Z", "1", "2"]], ["--sensor-column", "pm"], "row 1: no column 'pm'"),
        (
            [["2026-10-01T00:00:00Z", "1", "2"], ["2026-10-01T01:00:00Z", "x1", "2"]],
            [],
            "row 3: column 'sensor': 'x1' is not a number",
        ),
        (
            [["2026-10-01T00:00:00Z", "1", "2"], ["yesterday", "1", "2"]],
            [],
            "row 3: column 'timestamp': 'yesterday' is not an ISO 8601 timestamp",
        ),
        ([["2026-10-01T00:00:00Z", "nan", "2"]], [], "row 2: column 'sensor': 'nan' is not a finite number"),
        (
            [[f"2026-10-01T0{h}:00:00Z", h, h] for h in range(3)],
            [],
            "only 3 averaging period(s) with paired values; a linear fit needs at least 4",
        ),
        (
            [[f"2026-10-01T0{h}:00:00Z", 12, h] for h in range(8)],
            [],
            "column 'sensor': singular fit, the sensor reads 12 in every period",
        ),
        ([[f"2026-10-01T0{h}:00:00Z", h, ""] for h in range(8)], [], "column 'reference': no values at all"),
    ],
)
def test_bad_input_names_file_row_and_column_and_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rows: list[list[object]],
    extra: list[str],
    message: str,
) -> None:
    data = write_csv(tmp_path / "in.csv", ["timestamp", "sensor", "reference"], rows)
    code = main(["fit", "--input", str(data), "--metric", "pm2_5", "--out", str(tmp_path / "c.toml"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{data}" in err and message in err
    assert not (tmp_path / "c.toml").exists()


def test_collinear_rh_is_a_singular_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [[f"2026-10-01T0{h}:00:00Z", h + 1, 2 * h, 3 * (h + 1)] for h in range(8)]
    data = write_csv(tmp_path / "in.csv", ["timestamp", "sensor", "reference", "rh"], rows)
    code = main(
        [
            "fit",
            "--input",
            str(data),
            "--metric",
            "pm2_5",
            "--model",
            "multilinear",
            "--rh-column",
            "rh",
            "--out",
            str(tmp_path / "c.toml"),
        ]
    )
    assert code == 2
    assert "columns 'sensor' and 'rh': singular fit" in capsys.readouterr().err


def test_timestamps_that_do_not_overlap_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sensor = write_csv(tmp_path / "s.csv", ["timestamp", "sensor"], [["2026-10-01T00:00:00Z", 1]])
    reference = write_csv(tmp_path / "r.csv", ["timestamp", "reference"], [["2026-11-01T00:00:00Z", 1]])
    code = main(
        [
            "fit",
            "--input",
            str(sensor),
            "--reference",
            str(reference),
            "--metric",
            "pm2_5",
            "--out",
            str(tmp_path / "c.toml"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"{sensor}" in err and f"{reference}" in err and "share no averaging period" in err


def test_standards_build_a_monotonic_turbidity_curve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [[4.10, 0], [4.12, 0], [3.60, 100], [3.62, 100], [3.00, 400], [2.60, 1000]]
    data = write_csv(tmp_path / "std.csv", ["raw", "ntu"], rows)
    out = tmp_path / "sen0189-b07.toml"
    assert main(["standards", "--input", str(data), "--out", str(out), "--serial", "b07"]) == 0
    printed = capsys.readouterr().out
    assert "residual" in printed and "+0.00" in printed
    cal = files.load(out)
    assert cal.apply(3.61).value == 100.0  # mean of the two readings of the 100 NTU standard
    assert cal.apply(3.305).value == 250.0  # halfway between 3.61 V (100 NTU) and 3.00 V (400)
    bad = write_csv(tmp_path / "bad.csv", ["raw", "ntu"], [[4.1, 0], [3.0, 100], [3.5, 400]])
    assert main(["standards", "--input", str(bad), "--out", str(tmp_path / "x.toml")]) == 2
    assert "not monotonic" in capsys.readouterr().err


def test_apply_recomputes_values_as_the_node_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_csv(
        tmp_path / "raw.csv",
        ["time", "pm2_5_raw", "rh_raw"],
        [["a", 20, 40], ["b", 10, ""], ["c", "", 50], ["d", 0, 95]],
    )
    out = tmp_path / "out.csv"
    assert main(["apply", "--cal", "epa-us-2021", "--input", str(data), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["value"] for r in rows] == ["12.782", repr(round(0.524 * 10 - 0.0862 * 50 + 5.75, 4)), "", ""]
    assert rows[1]["flags"] == Flag.CAL_FALLBACK.value  # no RH: the documented 50 % assumed
    assert rows[3]["flags"] == Flag.OUT_OF_RANGE.value  # −2.439 µg/m³ cannot be: null, as the node sends
    assert {r["cal"] for r in rows if r["pm2_5_raw"]} == {"epa-us-2021"}


def test_apply_writes_no_formula_and_keeps_negative_numbers(tmp_path: Path) -> None:
    """The cells apply copies from its input (an export, a colleague's sheet) pass the same guard
    as every CSV we write; a cell our export already quoted is not quoted twice."""
    data = write_csv(
        tmp_path / "raw.csv",
        ["time", "note", "air_temp", "pm2_5_raw", "pm2_5_cal"],
        [["a", '=HYPERLINK("http://evil.example")', "-5.2", 20, "'=old"], ["b", "@x", "-1e-05", 10, "pms"]],
    )
    out = tmp_path / "out.csv"
    assert main(["apply", "--cal", "epa-us-2021", "--input", str(data), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert [r["note"] for r in rows] == ['\'=HYPERLINK("http://evil.example")', "'@x"]
    assert [r["air_temp"] for r in rows] == ["-5.2", "-1e-05"]
    assert [r["pm2_5_cal"] for r in rows] == ["'=old", "pms"]


def test_show_explains_a_preset_in_plain_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "epa-us-2021"]) == 0
    text = capsys.readouterr().out
    assert "y = 0.524·x − 0.0862·RH + 5.75" in text
    assert "assumes RH = 50 %" in text and "doi.org/10.5194/amt-14-4617-2021" in text
    assert main(["show", "no-such-thing"]) == 2


def test_apply_names_a_missing_column_and_a_bad_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(tmp_path / "raw.csv", ["time", "volts"], [["a", "3.0"], ["b", "4.5"], ["c", "x"]])
    assert main(["apply", "--cal", "dfrobot-sen0189", "--input", str(data)]) == 2
    assert f"{data}: row 1: no column 'raw' or 'turbidity_raw'" in capsys.readouterr().err
    assert main(["apply", "--cal", "dfrobot-sen0189", "--input", str(data), "--column", "volts"]) == 2
    captured = capsys.readouterr()
    assert f"{data}: row 4: column 'volts': 'x' is not a number" in captured.err
    lines = captured.out.splitlines()  # rows before the bad one were written: nothing is hidden
    assert lines[1:] == ["a,3.0,2790.4,dfrobot-sen0189,", "b,4.5,,dfrobot-sen0189,out_of_range"]


def test_a_spreadsheet_csv_with_a_byte_order_mark_reads_like_any_other(tmp_path: Path) -> None:
    data = colocation(tmp_path / "colocation.csv", hours=12)
    data.write_bytes(b"\xef\xbb\xbf" + data.read_bytes())  # what Excel writes as "CSV UTF-8"
    assert main(["fit", "--input", str(data), "--metric", "pm2_5", "--out", str(tmp_path / "c.toml")]) == 0
