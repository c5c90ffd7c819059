"""Admin > Live: this process's figures, for staff only, through the real admin login."""

import asyncio
import http.cookiejar
import re
import urllib.parse
import urllib.request

import pytest
from django.test import Client

from chatproject.ops import live, metrics
from tests.realtime.clients import SioClient

PASSWORD = "correct horse 42"


@pytest.fixture
def staff(make_user):
    chat_user = make_user("Staff")
    chat_user.user.is_staff = True
    chat_user.user.save(update_fields=["is_staff"])
    return chat_user


def _login(client: Client, email: str) -> None:
    response = client.post(
        "/admin/login/?next=/admin/", {"username": email, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302, response.content[:500]


def test_staff_sees_the_live_page_linked_from_the_admin_index(staff):
    client = Client()
    _login(client, staff.user.email)
    index = client.get("/admin/")
    assert b'href="/admin/live/"' in index.content
    page = client.get("/admin/live/")
    assert page.status_code == 200
    for section in (b'id="live-connections"', b'id="live-bus"', b'id="live-batches"', b'id="live-refusals"'):
        assert section in page.content


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(make_user):
    user = make_user("Plain")
    client = Client()
    client.post("/admin/login/", {"username": user.user.email, "password": PASSWORD})
    response = client.get("/admin/live/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert Client().get("/admin/live/").status_code == 302  # anonymous too


def test_the_page_shows_the_figures_the_hub_and_bus_record_and_no_credential(staff):
    metrics.connection_opened("pagetest", "eio4")
    metrics.connect_refused("pagetest", "ws", "authentication_failed")
    metrics.bus_published(2)
    metrics.db_batch_observed(4, 0.002)
    client = Client()
    _login(client, staff.user.email)
    figures = live.figures()
    mount = next(m for m in figures["mounts"] if (m.protocol, m.transport) == ("pagetest", "eio4"))
    assert mount.live >= 1 and mount.connects >= 1
    refusal = figures["refusals"][0]
    assert (refusal["protocol"], refusal["transport"], refusal["reason"]) == (
        "pagetest",
        "ws",
        "authentication_failed",
    )
    assert figures["bus"]["published"] >= 2 and figures["batches"]["count"] >= 1
    html = client.get("/admin/live/").content.decode()
    assert "<td>pagetest</td><td>eio4</td>" in html
    assert "<td>pagetest</td><td>ws</td><td>authentication_failed</td>" in html
    assert staff.access not in html


def test_the_refusal_ring_keeps_the_last_fifty():
    for i in range(metrics.REFUSALS_KEPT + 7):
        metrics.connect_refused("ringtest", "eio4", f"reason{i % 3}")
    assert len(metrics.recent_refusals) == metrics.REFUSALS_KEPT


def _cells(html: str, table: str) -> list[list[str]]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in body.split("<tr>")[1:]]


@pytest.mark.django_db(transaction=True)
async def test_live_page_of_a_server_process_counts_a_live_socket(live_server_proc, make_user):
    """Through the live server: log in to the admin with its own form (CSRF and all), open a
    socket, and read this process's figures on the page."""
    staff = make_user("Staff")
    staff.user.is_staff = True
    await asyncio.to_thread(staff.user.save, update_fields=["is_staff"])
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def fetch(path: str, data: dict | None = None) -> str:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        with opener.open(live_server_proc.url + path, body, timeout=10) as response:
            return response.read().decode()

    login_page = await asyncio.to_thread(fetch, "/admin/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    await asyncio.to_thread(
        fetch,
        "/admin/login/",
        {"csrfmiddlewaretoken": csrf, "username": staff.user.email, "password": PASSWORD, "next": "/admin/"},
    )
    before = _cells(await asyncio.to_thread(fetch, "/admin/live/"), "live-connections")
    live_before = next((int(row[2]) for row in before if row[:2] == ["expresschat", "eio4"]), 0)
    client = await SioClient().connect(live_server_proc.url, token=staff.access)
    await client.next("group-chat-list")
    try:
        html = await asyncio.to_thread(fetch, "/admin/live/")
    finally:
        await client.close()
    row = next(row for row in _cells(html, "live-connections") if row[:2] == ["expresschat", "eio4"])
    assert int(row[2]) == live_before + 1  # live connections on this process
    assert staff.access not in html
