"""Issuing, rotating and revoking a node's identity, and monitor accounts (docs/trust.md).

Everything is idempotent: what already exists in the output directory (key, password, certificate)
is kept, so running the same command twice leaves the same identity, and a half-finished run can
simply be rerun. Secrets are written mode 600 into the output directory only; the gateway keeps
public keys and password hashes.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from contract.signing import Signer, public_b64, write_secret
from gateway.trust.broker import BrokerLayout, delete_user, node_username, set_password, usernames
from gateway.trust.registry import KeyRecord, KeyStatus, load_dir, save


class ProvisionError(ValueError):
    """Refused: the message says what to do instead."""


@dataclass
class Outcome:
    """What a run did, for the command to print."""

    kid: str | None = None
    changed: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.changed.append(what)


@dataclass(frozen=True)
class NodeTarget:
    site: str
    node: str
    out: Path
    mqtt_host: str
    mqtt_port: int
    tls: bool
    topic_prefix: str
    sensor: str = "simulated-pm"


def _password(path: Path, outcome: Outcome) -> tuple[str, bool]:
    """The password kept in `path`, or a new one written there; (password, is_new)."""
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(24)
    write_secret(path, (password + "\n").encode())
    outcome.note(f"wrote {path}")
    return password, True


def register(keys_dir: Path, site: str, node: str, signer: Signer, *, now: datetime | None = None) -> None:
    """Put a node's public key into the registry as active (the demo uses this alone)."""
    record = KeyRecord(
        kid=signer.kid,
        site=site,
        node=node,
        public_key=public_b64(signer.private.public_key()),
        created=now or datetime.now(UTC),
    )
    save(keys_dir, record)


def provision_node(
    target: NodeTarget,
    keys_dir: Path,
    layout: BrokerLayout,
    *,
    rotate: bool = False,
    now: datetime | None = None,
) -> Outcome:
    now = now or datetime.now(UTC)
    out, outcome = target.out, Outcome()
    out.mkdir(parents=True, exist_ok=True)
    key_path = out / "node.key"
    mine = [r for r in load_dir(keys_dir).values() if (r.site, r.node) == (target.site, target.node)]
    if key_path.exists() and not rotate:
        signer = Signer.from_file(key_path)
    else:
        active = [r for r in mine if r.status is KeyStatus.ACTIVE]
        if active and not rotate:
            raise ProvisionError(
                f"{target.site}/{target.node} already has key {active[0].kid}, "
                f"but {key_path} does not exist: provision into the directory that holds its node.key, "
                "or use --rotate to issue a new key"
            )
        signer = Signer.generate()
        signer.write(key_path)
        outcome.note(f"wrote {key_path}")
        for old in active:
            save(keys_dir, old.model_copy(update={"status": KeyStatus.RETIRED, "since": now}))
            outcome.note(f"retired key {old.kid}")
    outcome.kid = signer.kid
    known = {r.kid: r for r in mine}
    if signer.kid not in known:
        register(keys_dir, target.site, target.node, signer, now=now)
        outcome.note(f"registered key {signer.kid} in {keys_dir}")
    elif known[signer.kid].status is KeyStatus.REVOKED:
        raise ProvisionError(f"key {signer.kid} in {key_path} was revoked: use --rotate to issue a new key")

    username = node_username(target.site, target.node)
    password, is_new = _password(out / "mqtt.password", outcome)
    if is_new or username not in usernames(layout.passwd):
        set_password(layout, username, password)
        outcome.note(f"set MQTT password of {username} in {layout.passwd}")

    tls_files = ""
    if target.tls:
        if not (layout.ca_dir / "ca.crt").exists():
            raise ProvisionError(f"no site CA in {layout.ca_dir}: run broker-config first, or use --no-tls")
        ca_copy = out / "ca.crt"
        ca_text = (layout.ca_dir / "ca.crt").read_bytes()
        if not ca_copy.exists() or ca_copy.read_bytes() != ca_text:
            ca_copy.write_bytes(ca_text)
            outcome.note(f"wrote {ca_copy}")
        from gateway.trust import ca  # here: cryptography's X.509 costs every gateway process ~7 MB

        if ca.issue(layout.ca_dir, out / "client.crt", out / "client.key", username):
            outcome.note(f"issued client certificate {out / 'client.crt'}")
        tls_files = 'tls = true\nca_file = "ca.crt"\ncert_file = "client.crt"\ncert_key_file = "client.key"\n'
    toml = (
        f"# Written by `minewatch-gateway provision`. node.key and mqtt.password are secrets: keep them\n"
        f"# mode 600 and never share this directory. List your real sensors below (docs/configuration.md).\n"
        f'site = "{target.site}"\nnode = "{target.node}"\ntopic_prefix = "{target.topic_prefix}"\n'
        f"interval_s = 60\n\n"
        f'[mqtt]\nhost = "{target.mqtt_host}"\nport = {target.mqtt_port}\nusername = "{username}"\n'
        f'password_file = "mqtt.password"\n{tls_files}\n'
        f'[identity]\nkey_file = "node.key"\n\n'
        f'[buffer]\npath = "/var/lib/minewatch/node/outbox.sqlite"\n\n'
        f'[[sensors]]\ntype = "{target.sensor}"\n'
    )
    _write_if_changed(out / "node.toml", toml, outcome)
    return outcome


def revoke_node(
    site: str,
    node: str,
    keys_dir: Path,
    layout: BrokerLayout,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
) -> Outcome:
    """Revoke every key of the node (it was compromised) and delete its MQTT account.

    `since` is when the key stopped being trustworthy (default: now; never later than now, so
    nothing stored after the revocation can pass). Readings the gateway stored before then stay
    evidence: their stored time (`received`) is the gateway's, which a stolen key cannot change.
    The key files stay, marked revoked, so old exports still verify and say which key was
    withdrawn when. A key already revoked keeps the earlier of the two times."""
    now = now or datetime.now(UTC)
    since = now if since is None else since
    if since > now:
        raise ProvisionError(
            f"--since {since.isoformat()} is in the future: a revocation starts at the latest now"
        )
    outcome = Outcome()
    for record in load_dir(keys_dir).values():
        if (record.site, record.node) != (site, node):
            continue
        if record.status is KeyStatus.REVOKED and record.since is not None and record.since <= since:
            continue
        save(keys_dir, record.model_copy(update={"status": KeyStatus.REVOKED, "since": since}))
        outcome.note(f"revoked key {record.kid} (untrusted since {since.isoformat()})")
    if delete_user(layout, node_username(site, node)):
        outcome.note(f"deleted MQTT account {node_username(site, node)}")
    return outcome


def retire_node(
    site: str, node: str, keys_dir: Path, layout: BrokerLayout, *, now: datetime | None = None
) -> Outcome:
    """Decommission a node: its active keys become retired from now (everything they signed before
    stays evidence, nothing newer is accepted) and its MQTT account is deleted."""
    now = now or datetime.now(UTC)
    outcome = Outcome()
    for record in load_dir(keys_dir).values():
        if (record.site, record.node) == (site, node) and record.status is KeyStatus.ACTIVE:
            save(keys_dir, record.model_copy(update={"status": KeyStatus.RETIRED, "since": now}))
            outcome.note(f"retired key {record.kid}")
    if delete_user(layout, node_username(site, node)):
        outcome.note(f"deleted MQTT account {node_username(site, node)}")
    return outcome


def provision_account(name: str, out: Path, layout: BrokerLayout) -> Outcome:
    """A monitor's (or the gateway's) MQTT account; its rights come from the ACL by name."""
    outcome = Outcome()
    out.mkdir(parents=True, exist_ok=True)
    password, is_new = _password(out / f"{name}.password", outcome)
    if is_new or name not in usernames(layout.passwd):
        set_password(layout, name, password)
        outcome.note(f"set MQTT password of {name} in {layout.passwd}")
    return outcome


def revoke_account(name: str, layout: BrokerLayout) -> Outcome:
    outcome = Outcome()
    if delete_user(layout, name):
        outcome.note(f"deleted MQTT account {name}")
    return outcome


def _write_if_changed(path: Path, text: str, outcome: Outcome) -> None:
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    outcome.note(f"wrote {path}")
