"""Generated images: real, deterministic, shaped by the request, gone after their TTL."""

from __future__ import annotations

import io
import urllib.request

import httpx
from PIL import Image

from tests.emulator.sdk import create, describe, sync_client


def finished_urls(handle, **params) -> list[str]:
    handle.configure(wait_seconds=0, run_seconds=0)
    client = sync_client(handle)
    return describe(client, create(client, **params))["ImageUrls"]


def fetch(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)


def test_image_differs_by_prompt_and_repeats_for_the_same_request(mps_emulator):
    cat, cat_again, dog = (
        fetch(finished_urls(mps_emulator, Prompt=prompt)[0]).content for prompt in ("a cat", "a cat", "a dog")
    )

    assert cat == cat_again
    assert cat != dog


def test_jpeg_output_format_serves_jpeg_under_a_jpg_url(mps_emulator):
    [url] = finished_urls(mps_emulator, Prompt="a cat", ExtraParameters={"OutputFormat": "jpeg"})
    response = fetch(url)

    assert url.endswith("/0.jpg")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-length"] == str(len(response.content))
    assert Image.open(io.BytesIO(response.content)).format == "JPEG"


def test_aspect_ratio_and_resolution_shape_the_image(mps_emulator):
    wide = finished_urls(
        mps_emulator, Prompt="a", ExtraParameters={"AspectRatio": "16:9", "Resolution": "4K"}
    )[0]
    tall = finished_urls(mps_emulator, Prompt="a", ExtraParameters={"AspectRatio": "9:16"})[0]
    square = finished_urls(mps_emulator, Prompt="a")[0]

    sizes = [Image.open(io.BytesIO(fetch(url).content)).size for url in (wide, tall, square)]

    assert sizes == [(512, 288), (216, 384), (384, 384)]


def test_output_image_count_gives_that_many_distinct_images(mps_emulator):
    urls = finished_urls(mps_emulator, Prompt="a cat", OutputImageCount=3)
    bodies = [fetch(url).content for url in urls]

    assert [url.rsplit("/", 1)[1] for url in urls] == ["0.png", "1.png", "2.png"]
    assert len(set(bodies)) == 3


def test_head_reports_type_and_length_without_a_body(mps_emulator):
    [url] = finished_urls(mps_emulator, Prompt="a cat")
    full = fetch(url)

    head = httpx.head(url, timeout=10)

    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == "image/png"
    assert head.headers["content-length"] == str(len(full.content))


def test_images_of_unknown_unfinished_or_wrong_paths_are_404(mps_emulator):
    client = sync_client(mps_emulator)
    waiting = create(client, Prompt="not yet")
    [url] = finished_urls(mps_emulator, Prompt="a cat")
    base = url.rsplit("/", 1)[0]

    statuses = [
        fetch(f"{mps_emulator.endpoint}/images/1-AigcImage-nope/0.png").status_code,
        fetch(f"{mps_emulator.endpoint}/images/{waiting}/0.png").status_code,
        fetch(f"{base}/1.png").status_code,
        fetch(f"{base}/0.jpg").status_code,
        fetch(f"{base}/first.png").status_code,
    ]

    assert statuses == [404, 404, 404, 404, 404]


def test_images_expire_after_the_ttl(mps_emulator):
    [url] = finished_urls(mps_emulator, Prompt="a cat")
    assert fetch(url).status_code == 200

    mps_emulator.configure(image_ttl_seconds=0)

    response = fetch(url)
    assert (response.status_code, response.text) == (404, "Not Found\n")


def test_image_opens_in_a_browser_like_client(mps_emulator):
    [url] = finished_urls(mps_emulator, Prompt="水墨画的猫 ink cat", ExtraParameters={"LogoAdd": 1})

    with urllib.request.urlopen(url, timeout=10) as response:
        image = Image.open(io.BytesIO(response.read()))

    assert (image.format, image.mode) == ("PNG", "RGB")


def test_downloads_are_logged(mps_emulator):
    [url] = finished_urls(mps_emulator, Prompt="a cat")
    fetch(url)
    fetch(url.replace("/0.png", "/5.png"))

    assert [(d["Path"], d["StatusCode"], d["Fault"]) for d in mps_emulator.downloads()] == [
        (url.removeprefix(mps_emulator.endpoint), 200, None),
        (url.removeprefix(mps_emulator.endpoint).replace("/0.png", "/5.png"), 404, None),
    ]
