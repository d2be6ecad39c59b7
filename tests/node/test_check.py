"""`minewatch-node check` against ptys, a fake Modbus probe, a missing port and real brokers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract import i18n
from gateway import devservices
from node.cli import main
from tests.contract.test_i18n_mn import english_words
from tests.fakes.frames import load
from tests.fakes.modbus import ModbusSlave
from tests.fakes.pty import PtySensor
from tests.gateway.web.test_i18n import _flat
from tests.helpers import node_toml

I18N = Path(i18n.__file__).parent


@pytest.fixture
def locked_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservices.Service]:
    """A broker that wants a username and password (node1 / s3cret)."""
    workdir = tmp_path_factory.mktemp("locked-mosquitto")
    # started as root, mosquitto reads its files as user `mosquitto`: keep this one where it can
    public = Path(tempfile.mkdtemp(prefix="mw-passwd-"))
    public.chmod(0o755)
    passwd = public / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "node1", "s3cret"], check=True)
    passwd.chmod(0o644)
    service = devservices.mosquitto(workdir, extra=f"allow_anonymous false\npassword_file {passwd}\n")
    service.start()
    yield service
    service.stop()
    shutil.rmtree(public)


def sensors(pms: PtySensor, probe: PtySensor, missing: Path | None = None) -> str:
    text = (
        f'[[sensors]]\ntype = "pms5003"\nport = "{pms.path}"\nwarm_up_s = 0\n'
        f'[[sensors]]\ntype = "turbidity-modbus"\nname = "river-probe"\nport = "{probe.path}"\n'
        f'preset = "dfrobot-sen0710"\ntimeout_s = 0.3\n'
    )
    if missing:  # its pm2_5 and pm10, not the PMS's: one sensor per metric (node.config)
        text = text.replace("warm_up_s = 0\n", 'warm_up_s = 0\nmetrics = ["pm1_0", "pc0_3"]\n', 1)
        text += f'[[sensors]]\ntype = "sds011"\nport = "{missing}"\n'
    return text


def test_check_reports_each_sensor_and_the_broker(
    tmp_path: Path, mosquitto: devservices.Service, capsys: pytest.CaptureFixture[str]
) -> None:
    pms, probe = PtySensor(tmp_path, "ttyAMA0"), PtySensor(tmp_path, "ttyUSB0")
    slave = ModbusSlave(probe, 1, {0: 57, 1: 112})
    cfg = node_toml(
        tmp_path / "node.toml",
        site="s",
        node="n",
        port=mosquitto.port,
        prefix="mw",
        sensors=sensors(pms, probe, missing=tmp_path / "ttyUSB7"),
    )
    try:
        with pms.streaming(load("pms5003"), period_s=0.2):
            code = main(["check", "--config", str(cfg), "--seconds", "1", "--json"])
    finally:
        slave.stop()
        pms.close()
        probe.close()
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["ok"] is False
    by_name = {s["name"]: s for s in doc["sensors"]}
    assert by_name["pms5003"]["status"] == "ok" and by_name["pms5003"]["values"]["pc0_3"] > 0
    assert set(by_name["pms5003"]["values"]) == {"pm1_0", "pc0_3"}, (
        "its `metrics` key: the SDS011 gives PM2.5"
    )
    assert by_name["river-probe"]["values"] == {"turbidity": 5.7, "water_temp": 11.2}
    assert by_name["sds011"]["status"] == "fault" and by_name["sds011"]["ok"] is False
    assert "ttyUSB7 does not exist: is the USB adapter plugged in" in by_name["sds011"]["hint"]
    assert doc["broker"] == {"ok": True, "address": f"127.0.0.1:{mosquitto.port}", "problem": None}


def test_check_in_plain_words_exit_0_then_bad_credentials_exit_1(
    tmp_path: Path, locked_broker: devservices.Service, capsys: pytest.CaptureFixture[str]
) -> None:
    pms, probe = PtySensor(tmp_path, "serial0"), PtySensor(tmp_path, "ttyUSB0")
    slave = ModbusSlave(probe, 1, {0: 57, 1: 112})
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    cfg = node_toml(
        tmp_path / "node.toml", site="s", node="n", port=locked_broker.port, prefix="mw", sensors=""
    )
    base = cfg.read_text()
    good = base.replace("[buffer]", f'username = "node1"\npassword_file = "{secret}"\n[buffer]')
    try:
        with pms.streaming(load("pms5003"), period_s=0.2):
            cfg.write_text(good + sensors(pms, probe))
            assert main(["check", "--config", str(cfg), "--seconds", "0.8"]) == 0
            first = capsys.readouterr().out
            cfg.write_text(good.replace("node1", "node2") + sensors(pms, probe))
            assert main(["check", "--config", str(cfg), "--seconds", "0.5"]) == 1
            second = capsys.readouterr().out
    finally:
        slave.stop()
        pms.close()
        probe.close()
    # the mean of the frames read in 0.8 s: which of the recording's frames that is depends on the
    # machine's load (7.2 on a quiet one, 7.0 seen under load), so the words are checked, not the value
    assert re.search(r"pms5003              ok — PM1\.0 0\.0 µg/m³, PM2\.5 \d+\.\d µg/m³", first), first
    assert "river-probe          ok — Turbidity 5.7 NTU, Water temperature 11.2 °C (2 samples)" in first
    assert "accepted the node's credentials" in first and first.rstrip().endswith("all is well")
    assert "refused us: Not authorized: check [mqtt] username and password_file" in second
    assert "something needs attention" in second


def test_check_says_warming_up_while_a_pms_sends_only_zeros(
    tmp_path: Path, mosquitto: devservices.Service, capsys: pytest.CaptureFixture[str]
) -> None:
    pms = PtySensor(tmp_path, "serial0")
    cfg = node_toml(
        tmp_path / "node.toml",
        site="s",
        node="n",
        port=mosquitto.port,
        prefix="mw",
        sensors=f'[[sensors]]\ntype = "pms5003"\nport = "{pms.path}"\n',
    )
    try:
        with pms.streaming(load("pms5003-warmup"), period_s=0.2):
            assert main(["check", "--config", str(cfg), "--seconds", "0.8"]) == 0
    finally:
        pms.close()
    out = capsys.readouterr().out
    assert "pms5003              warming up — found, still warming up" in out


def test_check_tests_the_sensors_then_names_the_key_of_a_missing_password_file(
    tmp_path: Path, mosquitto: devservices.Service, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/node-kit-dust.toml on a desk: check stopped at the password file before any sensor,
    and its message did not say which key named the file (issue 18)."""
    cfg = node_toml(
        tmp_path / "node.toml",
        site="s",
        node="n",
        port=mosquitto.port,
        prefix="mw",
        mqtt=f'username = "s/n"\npassword_file = "{tmp_path / "no-such-password"}"\n',
        sensors=SIMULATED,
    )
    assert main(["check", "--config", str(cfg), "--seconds", "0.3"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("simulated-pm         ok — PM1.0 ") and "PM2.5" in lines[0]
    assert lines[2] == (
        f"broker               FAULT — {cfg}: [mqtt] password_file: {tmp_path / 'no-such-password'} does not "
        "exist: write the node's MQTT password there (chmod 600), or set MINEWATCH_MQTT_PASSWORD"
    )


SIMULATED = (
    '[[sensors]]\ntype = "simulated-pm"\nsample_interval_s = 0.1\nmetrics = ["pm1_0", "pm2_5"]\n'
    '[[sensors]]\ntype = "simulated-turbidity"\nsample_interval_s = 0.1\n'
)


def test_check_in_mongolian_has_no_english_word_of_the_english_file(
    tmp_path: Path, mosquitto: devservices.Service, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every line `check` prints is a `[check]` message, and a driver's error a `[sensor]` one: in
    mn, none of the English file's words is left."""
    missing = tmp_path / "ttyUSB7"
    # the SDS011 keeps to pm10: simulated-pm reports pm2_5 too, and one metric has one sensor
    sensors = SIMULATED + f'[[sensors]]\ntype = "sds011"\nport = "{missing}"\nmetrics = ["pm10"]\n'
    cfg = node_toml(
        tmp_path / "node.toml", site="s", node="n", port=mosquitto.port, prefix="mw", sensors=sensors
    )
    assert main(["check", "--config", str(cfg), "--seconds", "0.3", "--lang", "mn"]) == 1
    ok_run = capsys.readouterr().out
    secret = f'password_file = "{tmp_path / "none"}"\n'
    cfg = node_toml(
        tmp_path / "n2.toml", site="s", node="n", port=1, prefix="mw", mqtt=secret, sensors=SIMULATED
    )
    assert main(["check", "--config", str(cfg), "--seconds", "0.1", "--lang", "mn"]) == 2
    secret_run = capsys.readouterr().out
    out = ok_run + secret_run
    assert "хэвийн — PM1.0 " in out and "булингар" in out and "брокер" in out and "файл алга" in out
    assert "ГЭМТЭЛ — портын асуудал: " in out and "порт алга: USB адаптер залгаатай" in out
    english = _words_of(_flat(I18N / "en.toml"), "check.") | _words_of(_flat(I18N / "en.toml"), "sensor.")
    leaks = {w for w in english_words(out.replace(str(tmp_path), " ")) if w.lower() in english}
    assert leaks == set()


def _words_of(texts: dict[str, str], prefix: str) -> set[str]:
    """The Latin words of the English file's messages under `prefix`, in lower case."""
    return {w.lower() for key, text in texts.items() if key.startswith(prefix) for w in english_words(text)}


WRONG = (
    '[[sensors]]\ntype = "pms5004"\n'  # misspelt: the known types, and a guess
    '[[sensors]]\nport = "/dev/ttyUSB0"\n'  # no type at all
    '[[sensors]]\ntype = "bme280"\naddress = "0x7g"\n'  # not an address
    '[[sensors]]\ntype = "bme280"\naddress = 0x50\nsample_interval = 5\n'  # not its address; a misspelt key
    '[[sensors]]\ntype = "replay-csv"\n'  # a key it needs
)


def test_check_words_a_wrong_config_in_its_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The common config mistakes are said in `[config]`'s words: under `--lang mn` in Mongolian, the
    file, the keys and the values as written; in English as before. Nothing is read or connected."""
    cfg = node_toml(tmp_path / "node.toml", site="s", node="n", port=1, prefix="mw", sensors=WRONG)
    said = {}
    for lang in ("en", "mn"):
        assert main(["check", "--config", str(cfg), "--lang", lang]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        said[lang] = err.replace(str(cfg), "node.toml")
    en = said["en"].splitlines()
    assert en == [
        "minewatch-node: node.toml: sensors[0].type: 'pms5004' is not a type we know"
        " (did you mean 'pms5003'?); use one of: bme280, ds18b20, pms5003, pmsa003i, replay-csv,"
        " sds011, sht4x, simulated-pm, simulated-turbidity, turbidity-ads1115, turbidity-modbus",
        "node.toml: sensors[1].type: missing: every table here says which kind it is with `type = ...`",
        "node.toml: sensors[2].address: '0x7g' is not an I2C address: write it in hex, like 0x76",
        "node.toml: sensors[3].address: 0x50 is not an address this part answers on: use 0x76 or 0x77",
        "node.toml: sensors[3].sample_interval: unknown key (misspelt? see docs/configuration.md)",
        "node.toml: sensors[4].path: Field required",
    ]
    mn = said["mn"].splitlines()
    assert [line.split(": ")[:2] for line in mn] == [line.split(": ")[:2] for line in en]  # the same places
    assert "`type = 'pms5004'` гэсэн төрлийг бид мэдэхгүй ('pms5003' гэж бичих гэсэн үү?)" in mn[0]
    assert mn[3].endswith("0x76 эсвэл 0x77 хаягийг бичнэ үү") and mn[5].endswith("заавал бичих утга дутуу")
    # what is left in Latin letters is what the reader wrote or types: the file, keys, types, values
    typed = (
        r"minewatch-node|node\.toml|docs/configuration\.md|sensors\[\d\]\.\w+|`[^`]*`|'[^']*'|0x[0-9a-f]+"
        r"|(?:[a-z0-9-]+, )+[a-z0-9-]+$"  # the known types
    )
    prose = " ".join(re.sub(typed, " ", line.split(": ", 2)[-1]) for line in mn)
    assert english_words(prose) == [], prose


def test_check_words_wrong_values_in_its_language_not_pydantics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A unit after a number, an id with capitals, a port out of range, a word for a boolean: said in
    `[config]`'s words, in Mongolian under `--lang mn`, never as pydantic's pattern or type names."""
    cfg = node_toml(tmp_path / "node.toml", site="s", node="n", port=1, prefix="mw", sensors=SIMULATED)
    text = (
        cfg.read_text()
        .replace('site = "s"', 'site = "Tsagaan"')
        .replace("interval_s = 1", 'interval_s = "60s"')
    )
    cfg.write_text(text.replace("port = 1\n", 'port = 99999\ntls = "maybe"\n'))
    said = {}
    for lang in ("en", "mn"):
        assert main(["check", "--config", str(cfg), "--lang", lang]) == 2
        said[lang] = capsys.readouterr().err.replace(str(cfg), "node.toml").splitlines()
    assert said["en"] == [
        "minewatch-node: node.toml: site: 'Tsagaan' is not an id: up to 32 small Latin letters, digits,"
        " - and _, starting with a letter or digit (like haul-road)",
        "node.toml: interval_s: '60s' is not a whole number: write the number alone, without a unit"
        ' (60, not "60 seconds")',
        "node.toml: mqtt.port: 99999 is too large: it must be 65535 or less",
        "node.toml: mqtt.tls: 'maybe' is neither true nor false: write true or false, without quotes",
    ]
    mn = said["mn"]
    assert [line.split(": ")[:2] for line in mn] == [line.split(": ")[:2] for line in said["en"]]
    assert not any("pattern" in line or "Input should" in line or "String should" in line for line in mn)
    typed = (
        r"minewatch-node|node\.toml|\b(?:site|interval_s|mqtt\.port|mqtt\.tls)\b|'[^']*'|\"[^\"]*\""
        r"|\b(?:true|false)\b"
    )
    prose = " ".join(re.sub(typed, " ", line.split(": ", 2)[-1]) for line in mn)
    assert english_words(prose) == [], prose


@pytest.mark.parametrize(
    ("sensors", "english", "mongolian"),
    [
        (
            '[[sensors]]\ntype = "sht4x"\n[[sensors]]\ntype = "bme280"\n',
            "sensors[1] (bme280, bme280): reports air_temp, and so does sensors[0] (sht4x, sht4x);",
            "sensors[1] (bme280, bme280): air_temp үзүүлэлтийг хэмждэг, sensors[0] (sht4x, sht4x) төхөөрөмж"
            " ч мөн адил хэмждэг;",
        ),
        (
            '[[sensors]]\ntype = "bme280"\nmetrics = ["pressure", "pm2_5"]\n',
            "sensors[0].metrics: pm2_5: a bme280 does not report it (it reports air_temp, rh, pressure)",
            "sensors[0].metrics: pm2_5: bme280 төхөөрөмж үүнийг хэмждэггүй"
            " (хэмждэг нь: air_temp, rh, pressure)",
        ),
    ],
)
def test_check_words_sensors_that_cannot_go_together_in_its_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sensors: str, english: str, mongolian: str
) -> None:
    """Two sensors giving one metric, or a `metrics` key naming what a part cannot measure: said
    after the sensors are each valid, in `[config]`'s words too."""
    cfg = node_toml(tmp_path / "node.toml", site="s", node="n", port=1, prefix="mw", sensors=sensors)
    said = {}
    for lang in ("en", "mn"):
        assert main(["check", "--config", str(cfg), "--lang", lang]) == 2
        said[lang] = capsys.readouterr().err
    assert f"minewatch-node: {cfg}: {english}" in said["en"]
    assert f"minewatch-node: {cfg}: {mongolian}" in said["mn"]
    # what is left in Latin letters is what the reader wrote: the file, keys, types and metrics
    typed = r"minewatch-node|sensors\[\d\]|`[^`]*`|node\.toml|\b(?:bme280|sht4x|rh|pressure|air_temp|pm2_5)\b"
    prose = re.sub(typed, " ", said["mn"].replace(str(cfg), " "))
    assert english_words(prose) == [], prose
