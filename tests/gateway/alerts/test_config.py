"""Bad `[alerts]` tables stop the gateway at start-up with the file and the key, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load

BASE = '[influxdb]\nurl = "http://127.0.0.1:1"\n[mqtt]\nport = 1\n'


@pytest.mark.parametrize(
    ("table", "where", "says"),
    [
        (
            '[[alerts.rules]]\nname = "x"\ntype = "threshold"\nmetric = "pm25"\nlimit = 5.0\n',
            "alerts.rules[0].metric",
            "'pm25' is not one of 'pm1_0'",
        ),
        (
            '[[alerts.rules]]\nname = "x"\ntype = "threshold"\nmetric = "pm2_5"\n'
            'limit = 5.0\naverage = "-5m"\n',
            "alerts.rules[0].average",
            "is not a duration",
        ),
        (
            '[[alerts.rules]]\nname = "x"\ntype = "offline"\nafter = 30\n',
            "alerts.rules[0].after",
            "is a number: write a duration as text",
        ),
        (
            '[[alerts.rules]]\nname = "river"\ntype = "difference"\nmetric = "turbidity"\n'
            'node = "river-down"\nlimit = 5.0\n',
            "alerts.rules[0].reference",
            "Field required",
        ),
        (
            '[[alerts.rules]]\nname = "x"\ntype = "nowcast"\ncategory = "bad"\n',
            "alerts.rules[0].category",
            "unknown AQI category",
        ),
        (
            '[[alerts.rules]]\nname = "x"\ntype = "loud"\n',
            "alerts.rules[0]",
            "'loud' is not a type we know; use one of: ",
        ),
        ('[[alerts.channels]]\ntype = "webhook"\nurl = "not a url"\n', "alerts.channels[0].url", "URL"),
        (
            '[[alerts.channels]]\ntype = "email"\nhost = "smtp"\nfrom = "a@b.c"\nto = ["x@y.z"]\n'
            'quiet_hours = "22-7"\n',
            "alerts.channels[0].quiet_hours",
            "HH:MM-HH:MM",
        ),
        ('[alerts]\npresets = ["who-2022"]\n', "alerts.presets[0]", "'who-2022' is not one of"),
    ],
)
def test_bad_alert_config_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, where: str, says: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(BASE + table)
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {where}" in err and says in err, err


def test_rule_names_must_be_unique_across_presets_and_rules(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[alerts]\npresets = ["who-2021"]\n[[alerts.rules]]\nname = "who-2021-pm25-24h"\ntype = "offline"\n'
    )
    with pytest.raises(Exception, match="two rules are named 'who-2021-pm25-24h'"):
        load(path)


def test_the_contract_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        """
[alerts]
presets = ["mns-4585-2016"]
[[alerts.rules]]
name = "pm25-instant"
type = "threshold"
metric = "pm2_5"
limit = 50.0
average = "instant"
clear_below = 40.0
clear_after = "10m"
remind_every = "6h"
severity = "warning"
nodes = ["haul-road"]
[[alerts.rules]]
name = "river-over-background"
type = "difference"
metric = "turbidity"
node = "river-down"
reference = "river-up"
limit = 5.0
average = "15m"
[[alerts.channels]]
type = "webhook"
url = "http://127.0.0.1:9000/hook"
"""
    )
    cfg = load(path)
    names = [r.name for r in cfg.alerts.all_rules()]
    assert names == [
        "mns-4585-2016-pm25-24h",
        "mns-4585-2016-pm10-24h",
        "pm25-instant",
        "river-over-background",
    ]
    mns = cfg.alerts.all_rules()[0]
    assert mns.limit == 50.0 and mns.average == "24h" and mns.standard == "MNS 4585:2016"  # type: ignore[union-attr]


def test_the_generated_broker_acl_lets_monitors_acknowledge_and_the_gateway_hear_it() -> None:
    from gateway.trust.broker import render_acl

    acl = render_acl(["alice", "tsagaan/haul-road"], prefix="minewatch", gateway_user="gw")
    assert "user gw\n" in acl and "topic read minewatch/v1/+/+/alert/ack\n" in acl
    alice = acl.split("user alice\n", 1)[1]
    assert alice.splitlines()[:2] == [
        "topic read minewatch/v1/+/+/alert",
        "topic write minewatch/v1/+/+/alert/ack",
    ]
    assert acl.count("alert/ack") == 2  # nodes get no right to acknowledge
