"""Residents' observations over real HTTP (uvicorn, a real influxd behind the pages): codes made and
revoked with the CLI, a submission with a photo, moderation with every decision recorded, and each
usual attack refused with a clear error and nothing stored."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3
from PIL import Image

from gateway import devservices
from gateway.cli import main
from gateway.config import load
from gateway.observations import records
from gateway.observations.records import Observation
from gateway.observations.store import RATE_PER_HOUR
from gateway.web.server import app_for
from gateway.web.status import StatusBoard
from tests.webdata import NOW, Site, served_site

GPS_TAG = 0x8825


def _jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


SMALL = _jpeg((64, 48), (20, 90, 160))


def gps_jpeg(size: tuple[int, int] = (2400, 1800)) -> bytes:
    """A camera-like JPEG whose EXIF holds a position (an observer's home)."""
    img = Image.new("RGB", size, (180, 120, 60))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS_TAG).update({1: "N", 2: (47.0, 55.0, 1.0), 3: "E", 4: (106.0, 55.0, 2.0)})
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_TAG)  # the fixture does carry a position
    return data


@dataclass
class Field:
    site: Site
    config: Path
    http: urllib3.PoolManager

    def stored(self) -> list[Observation]:
        """Every observation in InfluxDB, read through the read seam."""
        assert self.site.field is not None
        return records.listed(self.site.field.reader)

    @property
    def photos(self) -> Path:
        assert self.site.field is not None
        return self.site.field.photos

    def code(self, name: str = "Dorj", capsys: pytest.CaptureFixture[str] | None = None) -> str:
        assert capsys is not None
        capsys.readouterr()
        assert main(["observers", "add", "--config", str(self.config), "--name", name]) == 0
        found = re.search(r"code (\S+)", capsys.readouterr().out)
        assert found is not None
        return found.group(1)

    def form(self) -> tuple[str, str]:
        """(cookie header, csrf field) as the form page hands them out."""
        resp = self.http.request("GET", self.site.url + "/observe")
        assert resp.status == 200
        cookie = resp.headers["set-cookie"].split(";")[0]
        token = re.search(r'name="csrf" value="([^"]+)"', resp.data.decode())
        assert token is not None and cookie.split("=", 1)[1] == token.group(1)
        return cookie, token.group(1)

    def post(
        self,
        fields: dict[str, Any],
        *,
        photo: bytes | list[bytes] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Post the form; `photo` one photo, or a list sent as parts of the same name, as the page does."""
        parts: list[tuple[str, Any]] = [(k, str(v)) for k, v in fields.items()]
        sent = [] if photo is None else [photo] if isinstance(photo, bytes) else photo
        parts += [("photo", (f"photo-{n}.jpg", p, "image/jpeg")) for n, p in enumerate(sent, 1)]
        data, ctype = urllib3.encode_multipart_formdata(parts)
        resp = self.http.request(
            "POST",
            self.site.url + "/api/v1/observations",
            body=data if body is None else body,
            headers={"Content-Type": ctype, **(headers or {})},
        )
        return resp.status, json.loads(resp.data)

    def submission(self, code: str, token: str, /, **changes: Any) -> dict[str, Any]:
        return {
            "csrf": token,
            "code": code,
            "id": str(uuid.uuid4()),
            "kind": "dust",
            "text": "plume from the pit",
            "at": "2026-11-22T11:40:00Z",
            "site": "tsagaan",
            "node": "haul-road",
            **changes,
        }


def gateway_config(path: Path, data: Path, port: int, site: Site) -> Path:
    """The gateway.toml the CLI reads: the dashboard's data directory and database."""
    path.write_text(
        f'data_dir = "{data}"\n[influxdb]\nurl = "http://127.0.0.1:{port}"\n'
        f'database = "{site.db.db}"\napi = "v1"\n'
    )
    return path


@pytest.fixture
def field(influxd: devservices.Service, tmp_path: Path) -> Iterator[Field]:
    data = tmp_path / "gateway-data"
    with served_site(influxd.port, data_dir=data) as site:
        config = gateway_config(tmp_path / "gateway.toml", data, influxd.port, site)
        yield Field(site, config, urllib3.PoolManager(retries=False))


def _decide(field: Field, verb: str, obs_id: str, why: str) -> None:
    args = [verb, obs_id, "--by", "Saraa (monitor)", "--why", why]
    assert main(["observations", *args[:2], "--config", str(field.config), *args[2:]]) == 0


def test_a_submission_is_public_only_once_accepted_and_its_photo_has_no_position(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    photo = gps_jpeg()
    sub = field.submission(code, token)
    status, doc = field.post(sub, photo=photo, headers={"Cookie": cookie})
    assert status == 201 and doc["state"] == "pending"
    assert doc["photo_received_sha256"] == hashlib.sha256(photo).hexdigest()
    # nothing public before a monitor's decision
    assert json.loads(field.http.request("GET", field.site.url + "/api/v1/observations").data) == []
    assert field.http.request("GET", f"{field.site.url}/observations/{sub['id']}/photo.jpg").status == 404
    other = field.submission(code, token, kind="trucks", text="at 02:00")
    assert field.post(other, headers={"Cookie": cookie})[0] == 201

    _decide(field, "accept", sub["id"], "seen on the PM10 chart at 11:40")
    _decide(field, "reject", other["id"], "no trucks on the camera")
    public = json.loads(field.http.request("GET", field.site.url + "/api/v1/observations").data)
    assert [(o["id"], o["kind"], o["accepted_by"]) for o in public] == [
        (sub["id"], "dust", "Saraa (monitor)")
    ]
    served = field.http.request("GET", field.site.url + public[0]["photo"])
    assert served.status == 200 and served.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(served.data))
    assert not img.getexif() and not img.getexif().get_ifd(GPS_TAG)
    assert max(img.size) <= 1600
    assert hashlib.sha256(served.data).hexdigest() == public[0]["photo_sha256"]
    page = field.http.request("GET", field.site.url + "/observations").data.decode()
    assert "plume from the pit" in page and "at 02:00" not in page
    # every decision kept: who, when, why
    capsys.readouterr()
    assert main(["observations", "list", "--config", str(field.config), "--json"]) == 0
    docs = {d["id"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert docs[other["id"]]["state"] == "rejected"
    assert docs[other["id"]]["decisions"] == [
        {"decision": "rejected", "by": "Saraa (monitor)", "at": docs[other["id"]]["decisions"][0]["at"],
         "why": "no trucks on the camera"}
    ]  # fmt: skip


def test_the_same_observation_sent_twice_is_stored_once(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    sub = field.submission(code, token)
    assert field.post(sub, headers={"Cookie": cookie})[0] == 201
    status, doc = field.post(sub, headers={"Cookie": cookie})
    assert (status, doc["state"]) == (200, "already received")
    assert len(field.stored()) == 1


def test_a_revoked_code_is_refused(field: Field, capsys: pytest.CaptureFixture[str]) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    assert main(["observers", "revoke", "--config", str(field.config), "--id", "1", "--by", "operator"]) == 0
    status, doc = field.post(field.submission(code, token), headers={"Cookie": cookie})
    assert status == 401 and "revoked" in doc["error"]
    assert field.stored() == []


def test_a_code_is_rate_limited(field: Field, capsys: pytest.CaptureFixture[str]) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    for _ in range(RATE_PER_HOUR):
        assert field.post(field.submission(code, token), headers={"Cookie": cookie})[0] == 201
    status, doc = field.post(field.submission(code, token), headers={"Cookie": cookie})
    assert status == 429 and "an hour" in doc["error"]
    assert len(field.stored()) == RATE_PER_HOUR


ATTACKS = {
    "no CSRF token": (403, "expired", {"csrf": ""}, None, {}),
    "another site's token": (403, "expired", {"csrf": "x" * 32}, None, {}),
    "a cross-site origin": (403, "own form", {}, None, {"Origin": "https://evil.example"}),
    "a cross-site fetch": (403, "own form", {}, None, {"Sec-Fetch-Site": "cross-site"}),
    "an unknown code": (401, "unknown", {"code": "guessed-code"}, None, {}),
    "a text file as a photo": (415, "not a picture", {}, b"#!/bin/sh\nrm -rf /\n" * 20, {}),
    "an SVG with a script": (
        415,
        "not a picture",
        {},
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        {},
    ),
    "a kind not on the list": (400, "kind", {"kind": "<script>"}, None, {}),
    "a control character in the text": (400, "text", {"text": "a\x1b[2Jb"}, None, {}),
    "a script in the text": (400, "markup", {"text": '<script>alert("x")</script>'}, None, {}),
    "an image tag in the text": (400, "markup", {"text": "dust <img src=x onerror=alert(1)>"}, None, {}),
    "a comment in the text": (400, "markup", {"text": "<!-- --> fish"}, None, {}),
    "no place": (400, "say where", {"site": "", "node": ""}, None, {}),
    "a time in the future": (400, "future", {"at": "2027-01-01T00:00:00Z"}, None, {}),
    "a bad id": (400, "id", {"id": "../../etc/passwd"}, None, {}),
    "a negative age": (400, "age_s", {"at": "", "age_s": "-60"}, None, {}),
    # several photos (up to records.MAX_PHOTOS): one refused refuses them all
    "five photos": (400, "at most 4 photos", {}, [SMALL] * 5, {}),
    "a second photo that is not a picture": (415, "photo 2:", {}, [SMALL, b"#!/bin/sh\nrm -rf /\n" * 20], {}),
    "one photo too large": (
        413,
        "photo 2: the photo is too large",
        {},
        [SMALL, b"\xff" * (3 * 1024 * 1024 + 1)],
        {},
    ),
    "photos too large together": (413, "together", {}, [b"\xff" * (2 * 1024 * 1024 + 4096)] * 3, {}),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attacks_fail_clearly_and_store_nothing(
    field: Field, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    status, message, changes, photo, headers = ATTACKS[name]
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    got, doc = field.post(
        field.submission(code, token, **changes), photo=photo, headers={"Cookie": cookie, **headers}
    )
    assert got == status and message in doc["error"], doc
    assert field.stored() == []
    assert not field.photos.exists() or not any(field.photos.iterdir())


def test_an_oversized_upload_is_refused_before_it_is_read(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    big = os.urandom(7 * 1024 * 1024)  # refused by its length: what it holds is never read
    status, doc = field.post(field.submission(code, token), photo=big, headers={"Cookie": cookie})
    assert status == 413 and "KB" in doc["error"]
    assert field.stored() == []
    assert not field.photos.exists() or not any(field.photos.iterdir())


def test_three_photos_are_stored_once_with_their_hashes_and_each_served_without_metadata(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    sent = [gps_jpeg((1200, 900)), _jpeg((640, 480), (10, 200, 10)), _jpeg((480, 640), (200, 10, 10))]
    sub = field.submission(code, token, kind="dead_fish", text="fish on the bank")
    status, doc = field.post(sub, photo=sent, headers={"Cookie": cookie})
    assert status == 201
    received = [hashlib.sha256(p).hexdigest() for p in sent]
    assert doc["photos_received_sha256"] == received and doc["photo_received_sha256"] == received[0]
    assert field.post(sub, photo=sent, headers={"Cookie": cookie})[1]["state"] == "already received"
    (stored,) = field.stored()
    assert stored.photos_received_sha256 == tuple(received) and len(stored.photos_sha256) == 3
    assert stored.photo_sha256 == stored.photos_sha256[0]
    assert sorted(p.name for p in field.photos.iterdir()) == sorted(f"{h}.jpg" for h in stored.photos_sha256)
    _decide(field, "accept", sub["id"], "fish seen by the monitor too")
    (public,) = json.loads(field.http.request("GET", field.site.url + "/api/v1/observations").data)
    assert public["photos_sha256"] == list(stored.photos_sha256)
    assert public["photo"] == f"/observations/{sub['id']}/photo.jpg" and len(public["photos"]) == 3
    for path, kept, size in zip(
        public["photos"], public["photos_sha256"], [(1200, 900), (640, 480), (480, 640)], strict=True
    ):
        served = field.http.request("GET", field.site.url + path)
        assert served.status == 200 and hashlib.sha256(served.data).hexdigest() == kept
        img = Image.open(io.BytesIO(served.data))
        assert img.size == size and not img.getexif() and "exif" not in img.info
    first = field.http.request("GET", field.site.url + public["photo"])
    assert hashlib.sha256(first.data).hexdigest() == public["photos_sha256"][0]
    assert field.http.request("GET", f"{field.site.url}/observations/{sub['id']}/photos/4.jpg").status == 404
    page = field.http.request("GET", field.site.url + "/observations").data.decode()
    assert all(f"/observations/{sub['id']}/photos/{n}.jpg" in page for n in (1, 2, 3))
    assert "Photo sent with the observation: 3 / 3" in page
    # and every photo where the observation shows or travels: its node's page, the site's timeline,
    # SensorThings' Thing history
    for where in ("/node/tsagaan/haul-road", "/sites/tsagaan/timeline"):
        shown = field.http.request("GET", field.site.url + where).data.decode()
        assert all(f"/observations/{sub['id']}/photos/{n}.jpg" in shown for n in (1, 2, 3)), where
    thing = json.loads(
        field.http.request("GET", field.site.url + "/sta/v1.1/Things('tsagaan.haul-road')").data
    )
    (told,) = thing["properties"]["observations"]
    assert (told["photos"], told["photos_sha256"]) == (public["photos"], public["photos_sha256"])
    assert told["photo_sha256"] == public["photos_sha256"][0]


def test_a_body_without_its_length_or_with_too_many_files_is_refused(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    parts = {**field.submission(code, token), "photo": ("photo.jpg", gps_jpeg((64, 48)), "image/jpeg")}
    data, ctype = urllib3.encode_multipart_formdata(parts)
    # chunked: no Content-Length to refuse an oversized body by before reading it
    resp = field.http.request(
        "POST",
        field.site.url + "/api/v1/observations",
        body=iter([data[:1000], data[1000:]]),
        headers={"Content-Type": ctype, "Cookie": cookie},
        chunked=True,
    )
    assert resp.status == 411 and "length" in json.loads(resp.data)["error"]
    # more files than the parser takes (one more than records.MAX_PHOTOS, so that five get our words)
    two = urllib3.encode_multipart_formdata(
        [*field.submission(code, token).items(),
         *[("photo", (f"{n}.jpg", gps_jpeg((64, 48)), "image/jpeg")) for n in range(6)]]
    )  # fmt: skip
    resp = field.http.request(
        "POST",
        field.site.url + "/api/v1/observations",
        body=two[0],
        headers={"Content-Type": two[1], "Cookie": cookie},
    )
    assert resp.status == 400 and "files" in json.loads(resp.data)["error"]
    assert field.stored() == []
    assert not field.photos.exists() or not any(field.photos.iterdir())


def test_the_phones_position_and_a_time_left_empty_are_kept(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    here = {"site": "", "node": "", "lat": "43.10123", "lon": "106.86045", "place": "position"}
    now = field.submission(code, token, at="", **here)
    kept = field.submission(code, token, at="", age_s="5400", **here)  # queued 90 min on the phone
    for sub in (now, kept):
        assert field.post(sub, headers={"Cookie": cookie})[0] == 201
    got = {o.id: o for o in field.stored()}
    assert got[now["id"]].at == NOW and got[kept["id"]].at == NOW - timedelta(minutes=90)
    assert {(o.place, o.lat, o.lon, o.node, o.site) for o in got.values()} == {
        ("position", 43.10123, 106.86045, None, "tsagaan")
    }


def test_a_text_with_angle_brackets_but_no_markup_is_kept_and_shown_as_text(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    """Markup is refused (ATTACKS); a resident's "<" that begins no tag is a word, kept as typed."""
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    typed = 'PM2.5 < 35? no: > 150 & "orange" water, <5 m from the road'
    sub = field.submission(code, token, text=typed)
    assert field.post(sub, headers={"Cookie": cookie})[0] == 201
    assert [o.text for o in field.stored()] == [typed]
    _decide(field, "accept", sub["id"], "checked")
    page = field.http.request("GET", field.site.url + "/observations")
    text = page.data.decode()
    assert "PM2.5 &lt; 35? no: &gt; 150 &amp; &#34;orange&#34; water, &lt;5 m" in text
    # and no script could run even if one slipped through: only this site's own files
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_dashboard_that_cannot_write_its_data_directory_still_starts(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{blocked / "data"}"\n[influxdb]\nurl = "http://127.0.0.1:9"\n')
    app = app_for(load(config), StatusBoard())
    assert app.state.ctx.observations is None  # the form answers 404; every other page works


def _bomb() -> bytes:
    """A small PNG that opens as 144 megapixels: a decompression bomb, not a photo."""
    out = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(out, "PNG")
    assert len(out.getvalue()) < 1024 * 1024
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "photo", "body", "status", "message"),
    [
        ("a decompression bomb", "bomb", None, 415, "too large"),
        ("a body that is not multipart", None, b"--x\r\ngarbage", 400, "the form could not be read"),
    ],
)
def test_hostile_uploads_are_refused(
    field: Field,
    capsys: pytest.CaptureFixture[str],
    name: str,
    photo: str | None,
    body: bytes | None,
    status: int,
    message: str,
) -> None:
    code = field.code(capsys=capsys)
    cookie, token = field.form()
    data = _bomb() if photo == "bomb" else None
    got, doc = field.post(field.submission(code, token), photo=data, body=body, headers={"Cookie": cookie})
    assert got == status and message in doc["error"], (name, doc)
    assert field.stored() == []
    assert not field.photos.exists() or not any(field.photos.iterdir())  # no photo kept either
