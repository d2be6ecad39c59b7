"""The gateway's own health on the broker (retained, `<prefix>/v1/_gateway/<id>/status`), and the two
commands that show it and what was refused: `minewatch-gateway status` and `rejects`. Real broker,
real influxd, the real gateway loop in a thread."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from contract.i18n import Texts
from contract.status import STOPPED, NodeStatus, OutboxStatus
from contract.wire import gateway_status_topic
from gateway.cli import main
from gateway.commands.status import render, render_nodes
from gateway.config import load
from gateway.devservices import Service
from gateway.status import GatewayStatus
from gateway.wiring import build
from tests.contract.test_i18n_mn import english_words
from tests.helpers import Influx, Listener, gateway_toml, publish, wait_for


def test_status_is_retained_and_the_commands_show_it(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path = gateway_toml(
        workdir / "gateway.toml",
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
    )
    cfg_path.write_text('status_interval_s = 0.5\ngateway_id = "north"\n' + cfg_path.read_text())
    service = build(load(cfg_path))
    thread = threading.Thread(target=service.run)
    thread.start()
    topic = gateway_status_topic(prefix, "north")
    listener = Listener(mosquitto.port, topic)
    try:
        wait_for(lambda: service.subscriber and service.subscriber.connected.is_set(), 20, "gateway up")
        publish(mosquitto.port, f"{prefix}/v1/site-a/node-1/reading", b"\xffnot json")
        publish(mosquitto.port, f"{prefix}/v1/site-a/node-1/reading", b"[1, 2]")

        def status_with_rejects() -> dict[str, object] | None:
            for t, payload, _ in reversed(listener.messages):
                doc = json.loads(payload)
                if t == topic and doc.get("rejects"):
                    return doc  # type: ignore[no-any-return]
            return None

        doc = wait_for(status_with_rejects, 20, "a status with the rejects")
        assert doc["state"] == "up" and doc["gateway_id"] == "north"
        assert doc["rejects"] == {"not_utf8": 1, "not_object": 1}
        assert doc["spool"]["depth"] == 0 and doc["spool"]["warning"] is False  # type: ignore[index]
        assert doc["influxdb_reachable"] is None and doc["last_write"] is None  # nothing written yet

        damaged = NodeStatus(
            state="online",
            version="0.1.0",
            started="2026-11-22T10:00:00Z",
            uptime_s=60,
            outbox=OutboxStatus(depth=7, oldest_ts=None, dropped=2, recovered_from="outbox.sqlite.corrupt-1"),
            sensors={},
            clock_synced=True,
        )
        publish(mosquitto.port, f"{prefix}/v1/site-a/node-1/status", damaged.to_wire(), retain=True)
        publish(mosquitto.port, f"{prefix}/v1/site-a/node-2/status", STOPPED.to_wire(), retain=True)
        capsys.readouterr()
        assert main(["status", "--config", str(cfg_path)]) == 0
        out = capsys.readouterr().out
        assert "gateway north: UP" in out and "from broker" in out and "not UTF-8 text" in out
        assert "1 online, 1 offline" in out and "site-a/node-2" in out and "stopped as planned" in out
        assert "7 readings waiting, 2 dropped" in out and "'outbox.sqlite.corrupt-1' on the node" in out
        # the same lines in Mongolian, from the language file: --lang, or [web] language
        assert main(["status", "--config", str(cfg_path), "--lang", "mn"]) == 0
        mn = capsys.readouterr().out
        assert "шлюз north: АЖИЛЛАЖ БАЙНА" in mn and "нийт 2" in mn and "текстийн кодчилол буруу" in mn
        assert "1 холбоотой, 1 холбоо тасарсан" in mn and "төлөвлөсний дагуу зогсоосон" in mn
        assert "7 хэмжилт илгээгдэхийг хүлээж байна, 2 хаягдсан" in mn
        assert "'outbox.sqlite.corrupt-1' нэрээр хадгалсан" in mn
        assert not {"waiting", "received", "online", "WARNING"} & set(_words(mn))
        _values_line_up(mn, (*MN_LABELS, "мэдрэгчүүд"))

        assert main(["rejects", "--config", str(cfg_path), "--since", "1h"]) == 0
        out = capsys.readouterr().out
        assert "not_utf8" in out and "hex:ff6e6f74206a736f6e" in out and "[1, 2]" in out

        assert main(["rejects", "--config", str(cfg_path), "--json", "--reason", "not_object"]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        assert json.loads(line)["payload"] == "[1, 2]"
    finally:
        service.stop_event.set()
        thread.join(20)
    # a clean stop says "down", retained, so a monitor sees the gateway went away
    wait_for(lambda: any(json.loads(p).get("state") == "down" for _, p, _ in listener.messages), 10, "down")
    listener.close()
    assert main(["status", "--config", str(cfg_path)]) == 1
    assert "DOWN" in capsys.readouterr().out


def test_status_falls_back_to_the_data_dir_when_the_broker_is_away(
    influx: Influx, workdir: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.devservices import free_port

    cfg_path = gateway_toml(
        workdir / "gateway.toml", mqtt_port=free_port(), influx_url=influx.url, db=influx.db, prefix=prefix
    )
    data = load(cfg_path).data_dir
    data.mkdir(parents=True)
    (data / "status.json").write_text(
        '{"state":"up","gateway_id":"main","ts":"2026-11-22T10:00:00.000Z","rejects":{"not_json":3},'
        '"spool":{"depth":120,"bytes":500000,"max_bytes":1000000,"warning":true}}'
    )
    assert main(["status", "--config", str(cfg_path), "--timeout", "1"]) == 0
    out = capsys.readouterr().out
    assert "status.json" in out and "120 readings waiting" in out and "WARNING" in out
    _values_line_up(out)
    # a person reads the time in the site's zone, with the zone; --json keeps the payload's UTC
    cfg_path.write_text(cfg_path.read_text() + '\n[site]\ntimezone = "Asia/Ulaanbaatar"\n')
    assert main(["status", "--config", str(cfg_path), "--timeout", "1"]) == 0
    assert "  reported           2026-11-22 18:00:00 UTC+08 (" in capsys.readouterr().out
    assert main(["status", "--config", str(cfg_path), "--timeout", "1", "--json"]) == 0
    assert '"ts":"2026-11-22T10:00:00.000Z"' in capsys.readouterr().out
    # in the gateway's language ([web] language) unless --lang says otherwise
    cfg_path.write_text(cfg_path.read_text() + '\n[web]\nlanguage = "mn"\n')
    assert main(["status", "--config", str(cfg_path), "--timeout", "1"]) == 0
    mn = capsys.readouterr().out
    assert "брокер хариу өгсөнгүй" in mn and "120 хэмжилт хүлээгдэж байна, 0.5 / 1 МБ" in mn
    assert "АНХААРУУЛГА: түр сан дүүрч байна" in mn and "2026-11-22 18:00:00 UTC+08" in mn
    _values_line_up(mn, MN_LABELS)
    assert main(["status", "--config", str(cfg_path), "--timeout", "1", "--lang", "en"]) == 0
    assert "120 readings waiting" in capsys.readouterr().out
    assert main(["status", "--config", str(cfg_path), "--timeout", "1", "--lang", "xx"]) == 2
    assert "--lang: no translation xx.toml" in capsys.readouterr().err


def _words(text: str) -> list[str]:
    return text.replace(",", " ").split()


EN_LABELS = ("reported", "version, started", "InfluxDB reachable", "last write", "since start", "rejects")
MN_LABELS = (
    "мэдээлсэн",
    "хувилбар, эхэлсэн",
    "InfluxDB-тэй холбогдсон",
    "сүүлд бичсэн",
    "эхэлснээс хойш",
    "татгалзсан",
)


def _values_line_up(out: str, labels: tuple[str, ...] = EN_LABELS) -> None:
    """Each `  label  value` line of the status starts its value in the same column, whatever the
    length of the language's labels."""
    columns = []
    for label in labels:
        (line,) = [x for x in out.splitlines() if x.startswith(f"  {label} ")]
        rest = line[len(label) + 2 :]
        columns.append(len(label) + 2 + len(rest) - len(rest.lstrip(" ")))
    assert len(set(columns)) == 1, out


REASONS = ("too_large", "bad_topic", "not_utf8", "not_json", "duplicate_key", "not_finite", "not_object",
           "bad_schema_version", "invalid", "topic_mismatch", "store_refused", "unsigned", "unknown_key",
           "revoked_key", "bad_signature", "ts_in_future", "ts_too_old")  # fmt: skip
"""Every reason docs/protocol.md lists ("How the gateway refuses a message")."""
NAMES = {
    "tsagaan": {"en": "Tsagaan bag", "mn": "Цагаан баг"},
    "tsagaan/haul-road": {"en": "haul road", "mn": "тээврийн зам"},
    "tsagaan/river-up": {"en": "upper river"},  # no Mongolian name: the English one
}


def _nodes() -> dict[tuple[str, str], NodeStatus]:
    online = NodeStatus(
        state="online", version="0.1.0", started="2026-11-22T10:00:00Z", uptime_s=60,
        outbox=OutboxStatus(depth=3, oldest_ts=None, dropped=0, recovered_from=None), sensors={},
        clock_synced=True,
    )  # fmt: skip
    return {("tsagaan", "haul-road"): online, ("tsagaan", "river-up"): STOPPED, ("other", "n9"): STOPPED}


@pytest.mark.parametrize("language", ["en", "mn"])
def test_status_names_nodes_and_words_the_reject_reasons_in_the_readers_language(language: str) -> None:
    """A person reads the nodes by their friendly names (with the ids, which the other commands
    take) and the reasons in words; a node without names stays its ids, and a reason the language
    file has no words for stays its key. `--json` is the payload as it is (the test above)."""
    t = Texts(language, "Asia/Ulaanbaatar", NAMES)
    rejects = {reason: n for n, reason in enumerate(REASONS, 1)} | {"from_a_newer_gateway": 99}
    st = GatewayStatus(
        state="up", gateway_id="north", ts="2026-11-22T10:00:00.000Z", version="0.1.0",
        started="2026-11-22T09:00:00.000Z", received=300, stored=48, rejects=rejects,
    )  # fmt: skip
    out = (
        render(st, t("status_cli.from_file", path="status.json"), t)
        + "\n"
        + "\n".join(render_nodes(_nodes(), t))
    )
    lines = out.splitlines()
    columns = set()
    for n, reason in enumerate(REASONS, 1):
        if "_" in reason:
            assert reason not in out, out  # the key, where a person reads
        (line,) = [x for x in lines if x.strip().startswith(t(f"status_cli.reject.{reason}") + " ")]
        assert line.endswith(f"  {n}")
        columns.add(len(line) - len(str(n)))
    assert len(columns) == 1, out  # the counts start in one column, whatever the words' length
    assert next(x for x in lines if "from_a_newer_gateway" in x).endswith("  99")
    place = t.place("tsagaan", "haul-road")
    assert f"    {place} (tsagaan/haul-road)  " in out
    assert f"{t.place('tsagaan', 'river-up')} (tsagaan/river-up)" in out and "upper river" in out
    assert "    other/n9 " in out  # no name: its ids
    if language == "mn":
        assert "Цагаан баг" in place and "тээврийн зам" in place
        prose = out.replace("from_a_newer_gateway", " ").replace("status.json", " ")
        prose = prose.replace("upper river", " ")  # a name given in English only is the name
        words = english_words(prose.replace("north", " "))
        data = {"tsagaan", "haul", "road", "river", "up", "other", "n9"}
        assert [w for w in words if w not in data] == [], out
    else:
        assert "Tsagaan bag — haul road (tsagaan/haul-road)" in out
        assert not any("\u0400" <= c <= "\u04ff" for c in out)
