"""A submitted photo, re-encoded on the gateway: whatever the phone sent (its canvas already drops
the metadata), only the pixels are kept, so no EXIF position or camera serial can leak even from a
phone whose script did not run. Pillow is part of the `web` extra."""

from __future__ import annotations

import hashlib
import io
import warnings

MAX_BYTES = 3 * 1024 * 1024
"""A photo the phone resized is ~200 KB; three megabytes leaves room and stops a flood."""
MAX_TOTAL_BYTES = 6 * 1024 * 1024
"""All the photos of one observation (up to records.MAX_PHOTOS): four resized ones are under 1 MB,
and one large photo from a phone whose script did not run still fits beside a small one."""
MAX_PIXELS = 40_000_000
"""More than a phone camera makes: a larger image is a decompression bomb, not a photo."""
MAX_SIDE = 1600
FORMATS = ("JPEG", "PNG", "WEBP")


class NotAnImage(ValueError):
    """The upload is not a JPEG, PNG or WebP picture Pillow can read whole."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clean(data: bytes) -> bytes:
    """The picture as a new JPEG without metadata, at most MAX_SIDE pixels on its longer side."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in FORMATS:
                    raise NotAnImage(f"a photo must be JPEG, PNG or WebP, not {probe.format}")
                if probe.width * probe.height > MAX_PIXELS:
                    raise NotAnImage("the picture is too large")
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                rgb = img.convert("RGB")  # drops palette and alpha; `info` (EXIF, XMP, ICC) is not copied
    except NotAnImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise NotAnImage("the picture is too large") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises for a file it cannot read
        raise NotAnImage("the upload is not a picture that can be read") from exc
    rgb.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()
