"""`minewatch-gateway ack --list` writes each value in its own unit: a sensor fault's value and peak
are how long it has lasted (minutes), not its metric's µg/m³; `ack <id>` says what became of the
request in the command's language."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from gateway.alerts.engine import Engine
from gateway.alerts.machine import MachineState
from gateway.alerts.store import AlertStore
from gateway.cli import main
from tests.alert_helpers import T0, Feed, rules
from tests.contract.test_i18n_mn import english_words
from tests.fakes.clock import FakeClock

ALERT = "tsagaan.haul-road.pm-fault.20261122T101500Z"


def test_a_sensor_faults_value_is_listed_in_minutes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        '[[alerts.rules]]\nname = "pm-fault"\ntype = "sensor_fault"\nmetric = "pm2_5"\nafter = "30m"\n'
    )
    store = AlertStore(tmp_path / "data" / "alerts.sqlite")
    machine = MachineState(
        "pm-fault", "tsagaan", "haul-road", alert_id=ALERT, started_ms=1795342500000, value=45.0, peak=45.0
    )
    doc = {"id": ALERT, "state": "raised", "severity": "warning", "message": "the PM2.5 sensor is faulty"}
    store.commit([machine], [(doc, [])])
    store.close()
    assert main(["ack", "--list", "--config", str(cfg)]) == 0
    listing = capsys.readouterr().out
    assert f"{ALERT}  WARNING  since 2026-11-22 10:15 UTC  value 45 min  peak 45 min" in listing
    assert "    the PM2.5 sensor is faulty\n" in listing


def test_ack_says_what_became_of_it_in_the_commands_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ack <id> --by NAME` prints from the language files, in `--lang` (or `[web] language`): the
    request recorded for a gateway that is not running, acknowledged by one that is, and what was
    wrong with the command."""
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    store = AlertStore(tmp_path / "data" / "alerts.sqlite")
    machine = MachineState("pm-fault", "tsagaan", "haul-road", alert_id=ALERT, started_ms=1795342500000)
    store.commit([machine], [({"id": ALERT, "state": "raised", "severity": "warning"}, [])])
    said: dict[str, tuple[int, str, str]] = {}
    for lang in ("en", "mn"):
        for case, args in (
            ("recorded", [ALERT, "--by", "oyuna", "--wait", "0"]),
            ("unknown", ["tsagaan.haul-road.x.20261122T000000Z", "--by", "oyuna"]),
            ("no name", [ALERT]),
        ):
            code = main(["ack", *args, "--lang", lang, "--config", str(cfg)])
            out, err = capsys.readouterr()
            said[f"{lang} {case}"] = (code, out, err)
        # a running gateway answers (`Alerts.tick`: the store's open requests, then their result)
        done = threading.Event()
        answer = threading.Thread(target=_answer, args=(store, "acknowledged", done))
        answer.start()
        code = main(["ack", ALERT, "--by", "oyuna", "--lang", lang, "--wait", "10", "--config", str(cfg)])
        done.set()
        answer.join()
        said[f"{lang} acknowledged"] = (code, *capsys.readouterr())
    store.close()
    assert said["en recorded"] == (0, f"{ALERT}: recorded; the gateway applies it when it runs\n", "")
    assert said["en acknowledged"] == (0, f"{ALERT}: acknowledged\n", "")
    assert said["en unknown"][0] == 2 and "no active alert 'tsagaan.haul-road.x." in said["en unknown"][2]
    assert "see `minewatch-gateway ack --list`" in said["en unknown"][2]
    assert (
        said["en no name"][0] == 2
        and "ack needs an alert id and --by NAME (or --list)" in said["en no name"][2]
    )
    assert said["mn recorded"] == (0, f"{ALERT}: бүртгэлээ; шлюз ажиллаж эхэлмэгц хэрэгжүүлнэ\n", "")
    assert said["mn acknowledged"] == (0, f"{ALERT}: хүлээн авлаа\n", "")
    assert said["mn unknown"][0] == 2 and said["mn no name"][0] == 2
    for key in ("mn recorded", "mn acknowledged", "mn unknown", "mn no name"):
        text = "".join(said[key][1:])
        text = re.sub(r"minewatch-gateway|\back\b|--by|--list|tsagaan\.haul-road\S*", " ", text)
        assert english_words(text) == [], (key, text)


def _answer(store: AlertStore, result: str, done: threading.Event) -> None:
    while not done.wait(0.05):
        for ack_id, _, _ in store.open_acks():
            store.ack_result(ack_id, result)


NOT_EVALUATED = [
    {"name": "dust-24h", "type": "threshold", "metric": "pm2_5", "limit": 50, "average": "24h"},
    {"name": "dust-aqi", "type": "nowcast"},
    {
        "name": "river",
        "type": "difference",
        "metric": "pm2_5",
        "node": "haul-road",
        "reference": "upwind",
        "limit": 5,
    },
]


def test_why_a_rule_is_not_evaluated_is_listed_in_the_readers_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real engine's reasons (an incomplete 24-hour window, no NowCast yet, no reading from a
    difference rule's reference), kept as keys with parameters, worded by `ack --list --lang`."""
    clock = FakeClock(T0)
    engine = Engine(rules(*NOT_EVALUATED), clock=clock)
    Feed(engine, clock).series("haul-road", T0, [20.0] * 6, step_s=600)
    machines = list(engine.machines.values())
    assert {m.rule for m in machines if not m.evaluable} >= {"dust-24h", "dust-aqi", "river"}
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    store = AlertStore(tmp_path / "data" / "alerts.sqlite")
    store.commit(machines, [])
    store.close()
    said = {}
    for lang in ("en", "mn"):
        assert main(["ack", "--list", "--lang", lang, "--config", str(cfg)]) == 0
        said[lang] = [
            line for line in capsys.readouterr().out.splitlines() if "dust" in line or "river" in line
        ]
    en = "\n".join(said["en"])
    assert "dust-24h at haul-road (tsagaan): window 4% complete, below the 75% needed" in en
    assert "fewer than two of the last three hours complete" in en
    assert "river at haul-road (tsagaan): no PM2.5 from upwind yet" in en
    assert len(said["mn"]) == len(said["en"]) >= 3
    mn = "\n".join(said["mn"])
    assert "өгөгдлийн бүрэн байдал 4%, дор хаяж 75% хэрэгтэй" in mn
    assert "upwind мэдрэгчээс PM2.5 хэмжилт хараахан ирээгүй" in mn
    data = r"dust-24h|dust-aqi|river|haul-road|tsagaan|upwind"
    assert english_words(re.sub(data, " ", mn)) == [], mn
