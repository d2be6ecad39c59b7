"""Bad input to the trust commands and files: a clear message naming the file, exit status 2."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract.configfile import ConfigError
from contract.signing import Signer, public_b64
from gateway.cli import main as gateway_cli
from gateway.config import load as load_gateway
from gateway.trust.broker import reload_broker
from gateway.trust.registry import KeyRecord, KeyRegistry, RegistryError, save

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def _gateway_toml(tmp_path: Path) -> Path:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "gw"}"\n')
    return cfg


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site", "Tsagaan", "--node", "haul-road", "--out", "x"], "must be ids"),
        (["--site", "tsagaan", "--node", "haul-road"], "--out DIR is required"),
        (["--monitor", "Alice Smith", "--out", "x"], "--monitor 'Alice Smith'"),
        (["--site", "tsagaan", "--node", "haul-road", "--out", "x", "--tls"], "no site CA"),
    ],
)
def test_provision_refuses_bad_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    args = [a if a != "x" else str(tmp_path / "out") for a in args]
    assert gateway_cli(["provision", "--config", str(_gateway_toml(tmp_path)), *args]) == 2
    assert message in capsys.readouterr().err


def test_verify_refuses_an_export_without_signatures_and_an_empty_key_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    good = Signer.from_seed(b"\x01" * 32)
    good_pub = public_b64(good.private.public_key())
    export = tmp_path / "export.csv"
    export.write_text("time,site,node,seq,pm2_5\n2026-11-22T10:00:00Z,tsagaan,haul-road,1,12.0\n")
    assert gateway_cli(["verify", "--keys", str(keys), "--input", str(export)]) == 2
    assert "no keys" in capsys.readouterr().err
    (keys / "0123456789abcdef.json").write_text("{}")
    assert gateway_cli(["verify", "--keys", str(keys), "--input", str(export)]) == 2
    assert "0123456789abcdef.json: not a key record" in capsys.readouterr().err
    save(keys, KeyRecord(kid=good.kid, site="tsagaan", node="haul-road", public_key=good_pub, created=T0))
    (keys / "0123456789abcdef.json").unlink()
    assert gateway_cli(["verify", "--keys", str(keys), "--input", str(export)]) == 2
    assert "no column(s) flags, kid, period_s, sig: a signature covers every field" in capsys.readouterr().err


def test_a_key_file_that_is_not_a_key_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "node.key"
    path.write_text("not a key\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"node\.key: not a PEM private key"):
        Signer.from_file(path)
    assert "readable by other users; run: chmod 600" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="cannot read the node's key"):
        Signer.from_file(tmp_path / "missing.key")


def test_a_misnamed_or_broken_key_record_is_refused(tmp_path: Path) -> None:
    good = Signer.from_seed(b"\x01" * 32)
    record = (
        f'{{"kid": "{good.kid}", "site": "tsagaan", "node": "haul-road", "public_key": "{{key}}", '
        '"created": "2026-11-22T00:00:00Z"}'
    )
    misnamed = tmp_path / "ffffffffffffffff.json"
    misnamed.write_text(record.replace("{key}", public_b64(good.private.public_key())))
    with pytest.raises(RegistryError, match=f"must be named {good.kid}.json"):
        KeyRegistry(tmp_path)
    misnamed.unlink()
    (tmp_path / f"{good.kid}.json").write_text(record.replace("{key}", "bm90IGEga2V5"))
    with pytest.raises(RegistryError, match="not a base64 raw Ed25519 public key"):
        KeyRegistry(tmp_path)
    other = Signer.from_seed(b"\x02" * 32)
    (tmp_path / f"{good.kid}.json").write_text(
        record.replace("{key}", public_b64(other.private.public_key()))
    )
    with pytest.raises(RegistryError, match=f"kid {good.kid} is not the id of this public key"):
        KeyRegistry(tmp_path)


def test_trust_config_keys(tmp_path: Path) -> None:
    cfg_path = tmp_path / "gateway.toml"
    cfg_path.write_text(
        'data_dir = "gw"\n[trust]\nkeys_dir = "published-keys"\nrequire_signatures = "always"\n'
    )
    cfg = load_gateway(cfg_path)
    assert cfg.keys_dir == tmp_path / "published-keys"
    assert cfg.trust.require_signatures == "always"
    assert load_gateway(_gateway_toml(tmp_path)).keys_dir == tmp_path / "gw" / "keys"
    cfg_path.write_text('[trust]\nrequire_signatures = "sometimes"\n')
    with pytest.raises(
        ConfigError, match=r"gateway\.toml: trust\.require_signatures: 'sometimes' is not one of 'auto'"
    ):
        load_gateway(cfg_path)


def test_a_stale_pid_file_naming_another_process_is_not_signalled(tmp_path: Path) -> None:
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # this pytest process: it must not receive SIGHUP
    assert reload_broker(pid_file) is None
    assert reload_broker(tmp_path / "missing.pid") is None
