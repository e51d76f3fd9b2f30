from __future__ import annotations

import pytest

from airflow_provider_mps.links.mps import (
    MPS_CONSOLE_AIGC_TASK_URL,
    MpsAigcImageLink,
    MpsConsoleTaskLink,
    console_task_url,
    first_image_url,
)
from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS


def test_links_have_the_names_shown_on_the_task_buttons():
    assert (MpsAigcImageLink().name, MpsConsoleTaskLink().name) == ("MPS Generated Image", "MPS Console")


@pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS, reason="Airflow 3.0 stores each link's URL in an XCom when the task ends"
)
def test_links_store_their_urls_under_airflow_link_xcom_keys():
    assert (MpsAigcImageLink().xcom_key, MpsConsoleTaskLink().xcom_key) == (
        "_link_MpsAigcImageLink",
        "_link_MpsConsoleTaskLink",
    )


@pytest.mark.parametrize(
    ("image_urls", "link"),
    [
        (["https://cos.example/0.png", "https://cos.example/1.png"], "https://cos.example/0.png"),
        (["http://127.0.0.1:1/images/t/0.jpg"], "http://127.0.0.1:1/images/t/0.jpg"),
        ([], ""),
        (None, ""),
        (["javascript:alert(1)"], ""),
        ("https://cos.example/0.png", ""),
    ],
)
def test_image_link_is_the_first_web_url_or_nothing(image_urls, link):
    assert first_image_url(image_urls) == link


@pytest.mark.parametrize(
    ("mps_task_id", "link"),
    [
        ("1-AigcImage-3f2a", f"{MPS_CONSOLE_AIGC_TASK_URL}?taskId=1-AigcImage-3f2a"),
        (" 1-AigcImage-3f2a\n", f"{MPS_CONSOLE_AIGC_TASK_URL}?taskId=1-AigcImage-3f2a"),
        ("a&b=c", f"{MPS_CONSOLE_AIGC_TASK_URL}?taskId=a%26b%3Dc"),
        ("", ""),
        (None, ""),
        ("{{ ti.xcom_pull('create') }}", ""),
    ],
)
def test_console_link_names_the_task_or_is_empty(mps_task_id, link):
    assert console_task_url(mps_task_id) == link


def test_console_page_is_the_mps_aigc_task_page():
    assert MPS_CONSOLE_AIGC_TASK_URL == "https://console.cloud.tencent.com/mps/aigc/task"
