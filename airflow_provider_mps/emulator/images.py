"""
Deterministic stand-in images: the same prompt and parameters always give the same bytes.

Colours come from a hash of the request, the prompt is written on the picture, and the size
follows ``AspectRatio`` / ``Resolution`` / ``AdditionalParameters.size`` scaled down so the long
side stays at most :data:`MAX_LONG_SIDE` pixels.
"""

from __future__ import annotations

import hashlib
import io
import json
import textwrap
from typing import Any

#: Long side of the rendered image per requested ``Resolution`` (kept small on purpose).
LONG_SIDE_BY_RESOLUTION: dict[str, int] = {
    "720P": 320,
    "1K": 384,
    "1080P": 384,
    "2K": 448,
    "4K": 512,
}
DEFAULT_LONG_SIDE = 384
MAX_LONG_SIDE = 512
MIN_SIDE = 64

CONTENT_TYPES: dict[str, str] = {"png": "image/png", "jpg": "image/jpeg"}


def image_extension(request: dict[str, Any]) -> str:
    """Return the file extension (``png`` or ``jpg``) of the images a create request asks for."""
    extra = request.get("ExtraParameters") or {}
    return "jpg" if str(extra.get("OutputFormat", "")).lower() in ("jpeg", "jpg") else "png"


def _aspect(request: dict[str, Any]) -> tuple[float, float]:
    extra = request.get("ExtraParameters") or {}
    ratio = extra.get("AspectRatio")
    if isinstance(ratio, str) and ":" in ratio:
        width, _, height = ratio.partition(":")
        return float(width), float(height)
    additional = request.get("AdditionalParameters")
    if isinstance(additional, str):
        try:
            size = json.loads(additional).get("size", "")
            width, _, height = str(size).lower().partition("x")
            return float(width), float(height)
        except (ValueError, AttributeError):
            pass
    return 1.0, 1.0


def image_size(request: dict[str, Any]) -> tuple[int, int]:
    """Return the ``(width, height)`` in pixels of the images rendered for ``request``."""
    extra = request.get("ExtraParameters") or {}
    long_side = min(
        LONG_SIDE_BY_RESOLUTION.get(str(extra.get("Resolution", "")), DEFAULT_LONG_SIDE), MAX_LONG_SIDE
    )
    width, height = _aspect(request)
    if width <= 0 or height <= 0:
        width = height = 1.0
    scale = long_side / max(width, height)
    return max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))


def _colour(digest: bytes, offset: int) -> tuple[int, int, int]:
    return digest[offset], digest[offset + 1], digest[offset + 2]


def render_image(request: dict[str, Any], index: int) -> bytes:
    """
    Render image number ``index`` of the task created with ``request``.

    :param request: the CreateAigcImageTask parameters as received.
    :param index: zero-based position of the image in the task's ``ImageUrls``.
    :return: the encoded PNG or JPEG bytes (see :func:`image_extension`).
    """
    from PIL import Image, ImageDraw, ImageFont

    seed = json.dumps({"request": request, "index": index}, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    width, height = image_size(request)
    top, bottom = _colour(digest, 0), _colour(digest, 3)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        mix = y / max(1, height - 1)
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True)),
        )
    for i in range(4):
        x, y, r = (
            digest[6 + 3 * i] * width // 256,
            digest[7 + 3 * i] * height // 256,
            8 + digest[8 + 3 * i] // 6,
        )
        draw.ellipse([(x - r, y - r), (x + r, y + r)], fill=_colour(digest, 18 + i))

    font = ImageFont.load_default(size=max(10, width // 24))
    text_colour = (255, 255, 255) if sum(top) + sum(bottom) < 3 * 255 else (0, 0, 0)
    prompt = str(request.get("Prompt") or "(reference images only)")
    lines = textwrap.wrap(prompt, width=max(10, width // max(6, width // 40)))[:8]
    lines.append(f"#{index} {request.get('ModelName') or 'default model'}")
    text = "\n".join(lines)
    try:
        draw.multiline_text((8, 8), text, fill=text_colour, font=font)
    except UnicodeEncodeError:  # a bitmap fallback font without the characters: draw them escaped
        escaped = text.encode("ascii", "backslashreplace").decode("ascii")
        draw.multiline_text((8, 8), escaped, fill=text_colour, font=font)
    if (request.get("ExtraParameters") or {}).get("LogoAdd") == 1:
        draw.text((width - 60, height - 20), "AI-MPS", fill=text_colour, font=font)

    buffer = io.BytesIO()
    if image_extension(request) == "jpg":
        image.save(buffer, format="JPEG", quality=85)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
