"""Media messages in the web client (docs/protocol.md §15), two people in two browser contexts:
attaching with the button (from the keyboard), by dropping a file and by pasting a picture;
upload progress, the tray's thumbnail and its remove button; pictures, file cards and captions
on the other side; the image viewer; the server's refusals (413, 415, 429) shown as alerts with
nothing sent; deletes leaving "Photo deleted"; and the README screenshot.

The server runs with PUBLIC_BASE_URL set to its own address (conftest.py), so the page loads
every file from the URL the server gave, on its own origin.
"""

import io
import math
import re
import time

import pytest

from .support import PASSWORD, Person, expect, log_in, off_the_browser_thread

pytestmark = pytest.mark.django_db(transaction=True)

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(120)


def landscape(width: int, height: int, fmt: str = "PNG") -> bytes:
    """A picture of hills under an evening sky (Pillow), so screenshots look like a photo."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=(int(250 - 90 * t), int(170 - 60 * t), int(110 + 80 * t)))
    draw.ellipse(
        [width * 0.62, height * 0.28, width * 0.74, height * 0.28 + width * 0.12], fill=(255, 226, 150)
    )
    for depth, colour in enumerate([(94, 84, 130), (62, 70, 104), (38, 52, 72)]):
        base = height * (0.55 + depth * 0.13)
        points = [(0, height)]
        for x in range(0, width + 20, 20):
            wave = math.sin(x / width * (4 + depth * 2) + depth) * height * 0.06
            points.append((x, base + wave))
        points.append((width, height))
        draw.polygon(points, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1))
    out = io.BytesIO()
    image.save(out, fmt, quality=85) if fmt == "JPEG" else image.save(out, fmt)
    return out.getvalue()


def pdf(pages: int = 3) -> bytes:
    """A small, well-formed PDF (the server checks the content's signature)."""
    body = b"%PDF-1.4\n" + b"".join(
        b"%d 0 obj\n<< /Type /Page /Contents (trail section %d) >>\nendobj\n" % (n + 1, n + 1)
        for n in range(pages)
    )
    return body + b"trailer\n<< /Root 1 0 R >>\n" + b"%" * 1200 + b"\n%%EOF\n"


def direct_chat(a, b):
    from messaging.services import direct_conversation_get_or_create

    chat, _partner, _created = direct_conversation_get_or_create(user=a.user, other_user_id=b.id)
    return chat


def pair(people, make_user, server, tolerate: str = "", bob_viewport=None) -> tuple[Person, Person, object]:
    """Alice and Bob, logged in, each with their direct chat open; and Alice's account.
    `tolerate`: console errors of Alice's page to accept (the browser logs refused requests)."""
    alice_user = make_user(name="Alice Archer", email="alice.media@example.com", password=PASSWORD)
    bob_user = make_user(name="Bob Baker", email="bob.media@example.com", password=PASSWORD)
    off_the_browser_thread(lambda: direct_chat(alice_user, bob_user))
    alice = people("Alice Archer", "alice.media@example.com", server=server, tolerate=tolerate)
    bob = people("Bob Baker", "bob.media@example.com", server=server, viewport=bob_viewport)
    for person, other in ((alice, bob), (bob, alice)):
        log_in(person)
        person.open_chat(other.name)
    return alice, bob, alice_user


def tray(person: Person):
    return person.page.get_by_role("group", name="Attachment")


def media_item(person: Person, kind: str):
    return person.page.locator(f'#message-list li.msg[data-kind="{kind}"]')


def loaded(person: Person, img) -> int:
    """Wait until the picture has arrived and decoded; its natural width."""
    handle = img.element_handle()
    person.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=handle)
    return handle.evaluate("img => img.naturalWidth")


def drop_file(person: Person, name: str, mime: str, data: bytes) -> list[bool]:
    """Drag a file over the conversation and drop it (a DataTransfer built in the page); whether
    the drop zone showed itself during the drag and after the drop."""
    return person.page.evaluate(
        """([name, mime, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
            const zone = document.querySelector("#message-list");
            const fire = (type) => zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
            const view = document.querySelector("#conv-view");
            fire("dragenter");
            fire("dragover");
            const during = view.classList.contains("drop-target");
            fire("drop");
            return [during, view.classList.contains("drop-target")];
        }""",
        [name, mime, list(data)],
    )


def paste_file(person: Person, name: str, mime: str, data: bytes) -> None:
    """Paste a file into the message box, as a screenshot in the clipboard would be."""
    person.page.locator("#composer-input").evaluate(
        """(box, [name, mime, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
            box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }));
        }""",
        [name, mime, list(data)],
    )


def watch_progress(person: Person) -> None:
    """Record whether an upload progress bar was ever shown (uploads on localhost are quick)."""
    person.page.evaluate(
        """() => {
            window.progressSeen = false;
            new MutationObserver(() => {
                if (document.querySelector("#composer-attachment progress")) window.progressSeen = true;
            }).observe(document.querySelector("#composer-attachment"), { childList: true, subtree: true });
        }"""
    )


def open_actions(person: Person, message) -> object:
    message.locator(".msg-actions-btn").focus()
    person.page.keyboard.press("Enter")
    menu = person.page.get_by_role("menu", name="Message actions")
    expect(menu).to_be_visible()
    return menu


def test_photo_and_file_reach_the_other_side_and_a_deleted_photo_leaves_a_tombstone(
    people, make_user, media_server, artifacts
):
    # Bob is on a phone.
    alice, bob, _ = pair(people, make_user, media_server, bob_viewport={"width": 390, "height": 760})
    box = alice.page.locator("#composer-input")

    # Alice attaches a picture with the attach button: a real button in the tab order (its
    # Enter is its click). Clicked here: a file chooser opened from a key press in headless
    # Chromium depends on window focus, which made this step flaky (1 run in 6).
    watch_progress(alice)
    attach = alice.page.get_by_role("button", name="Attach a file")
    attach.focus()
    expect(attach).to_be_focused()
    assert attach.evaluate("el => el.tagName") == "BUTTON"
    with alice.page.expect_file_chooser() as chooser:
        attach.click()
    chooser.value.set_files(
        files=[{"name": "sunset.png", "mimeType": "image/png", "buffer": landscape(640, 400)}]
    )
    expect(tray(alice).locator(".attachment-name")).to_have_text("sunset.png")
    expect(tray(alice)).to_have_attribute("data-state", "ready")  # uploaded: sendable
    expect(tray(alice).locator(".attachment-size")).to_have_text(re.compile(r"^Photo · \d+(\.\d)? KB$"))
    assert loaded(alice, tray(alice).locator("img.attachment-thumb")) == 640
    assert alice.page.evaluate("window.progressSeen") is True
    expect(tray(alice).get_by_role("button", name="Remove the attachment sunset.png")).to_be_visible()
    expect(box).to_be_focused()  # ready for the caption
    box.fill("Sunset from the ridge")
    box.press("Enter")
    expect(tray(alice)).to_be_hidden()
    expect(media_item(alice, "image")).to_have_attribute("data-state", "sent")

    # Bob sees the picture at its proportions, the caption under it, loaded from its own origin.
    photo = media_item(bob, "image")
    img = photo.locator("img")
    expect(img).to_have_attribute("width", "640")
    expect(img).to_have_attribute("height", "400")
    expect(img).to_have_attribute("alt", "Sunset from the ridge")
    expect(img).to_have_attribute("loading", "lazy")
    assert loaded(bob, img) == 640
    assert img.get_attribute("src").startswith(f"{media_server.url}/media/")
    expect(photo.locator(".caption")).to_have_text("Sunset from the ridge")
    # At most 320 px wide (less on Bob's phone), in proportion.
    shown = img.bounding_box()
    assert 200 < shown["width"] <= 320 and abs(shown["height"] - shown["width"] * 400 / 640) < 1, shown
    bob.shot(artifacts, "16-media-photo.png")

    # Enter on the picture opens the viewer; Escape closes it and gives the focus back.
    opener = photo.get_by_role("button", name="Open photo: Sunset from the ridge")
    opener.focus()
    bob.page.keyboard.press("Enter")
    viewer = bob.page.get_by_role("dialog", name="sunset.png")
    expect(viewer).to_be_visible()
    assert loaded(bob, viewer.locator("img")) == 640
    expect(viewer.locator("#media-viewer-caption")).to_have_text("Sunset from the ridge")
    bob.shot(artifacts, "17-media-viewer.png")
    bob.page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(opener).to_be_focused()

    # Alice edits the caption (the box holds the caption, not the file's URL).
    menu = open_actions(alice, media_item(alice, "image"))
    menu.get_by_role("menuitem", name="Edit").click()
    expect(box).to_have_value("Sunset from the ridge")
    box.fill("Sunset from the north ridge")
    box.press("Enter")
    expect(photo.locator(".caption")).to_have_text("Sunset from the north ridge")
    expect(photo.locator(".edited")).to_be_visible()
    expect(img).to_have_attribute("alt", "Sunset from the north ridge")

    # Alice drops a PDF onto the conversation and sends it without a caption.
    assert drop_file(alice, "trail-map.pdf", "application/pdf", pdf()) == [True, False]
    expect(tray(alice).locator(".attachment-size")).to_have_text(re.compile(r"^File · 1\.\d KB$"))
    box.focus()
    box.press("Enter")
    expect(media_item(alice, "file")).to_have_attribute("data-state", "sent")

    # Bob gets a card: name, size and a download link to the file, served as an attachment.
    card = media_item(bob, "file").locator(".file-card")
    expect(card.locator(".file-name")).to_have_text("trail-map.pdf")
    expect(card.locator(".file-size")).to_have_text(re.compile(r"^1\.\d KB$"))
    size = card.locator(".file-size").inner_text()
    link = card.get_by_role("link", name=f"Download trail-map.pdf, {size}")
    href = link.get_attribute("href")
    assert re.fullmatch(rf"{re.escape(media_server.url)}/media/\S+/trail-map\.pdf", href), href
    response = bob.page.request.get(href)
    assert response.status == 200
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.body() == pdf()

    # Bob answers the file: the quote says "File" (no caption to quote).
    menu = open_actions(bob, media_item(bob, "file"))
    menu.get_by_role("menuitem", name="Reply").click()
    expect(bob.page.locator("#composer-context-text")).to_have_text("File")
    bob.send("Printed it, thanks")
    for person in (alice, bob):
        reply = person.page.locator("#message-list li.msg", has_text="Printed it, thanks")
        expect(reply.locator(".quote-excerpt")).to_have_text("File")
    # Nothing but emoji goes as an emoji message, shown large.
    bob.send("👍🏽")
    expect(media_item(alice, "emoji").locator("p.emoji-only")).to_have_text("👍🏽")
    alice.shot(artifacts, "18-media-file-card.png")

    # A pasted picture can be taken back before sending: the upload is deleted on the server.
    paste_file(alice, "image.png", "image/png", landscape(200, 120))
    expect(tray(alice).locator(".attachment-name")).to_have_text("image.png")
    expect(tray(alice)).to_have_attribute("data-state", "ready")  # uploaded: sendable
    with alice.page.expect_response(
        lambda r: r.request.method == "DELETE" and "/api/uploads/" in r.url
    ) as gone:
        tray(alice).get_by_role("button", name="Remove the attachment image.png").click()
    assert gone.value.status == 204
    expect(tray(alice)).to_be_hidden()
    expect(box).to_be_focused()

    # Alice deletes the photo: both see "Photo deleted", and its file is gone from the server.
    src = img.get_attribute("src")
    menu = open_actions(alice, media_item(alice, "image"))
    menu.get_by_role("menuitem", name="Delete").click()
    alice.page.get_by_role("dialog", name="Delete message").get_by_role("button", name="Delete").click()
    for person in (alice, bob):
        tombstone = person.page.locator("#message-list li.msg.removed")
        expect(tombstone).to_have_text("Photo deleted")
        expect(person.page.locator("#message-list li.msg p.text").first).to_have_text("Photo deleted")
        expect(tombstone.locator("img")).to_have_count(0)
    assert bob.page.request.get(src).status == 404
    # Reloaded from history, it is still the photo's tombstone.
    bob.page.reload()
    expect(bob.page.locator("#message-list li.msg.removed")).to_have_text("Photo deleted")
    expect(media_item(bob, "file").locator(".file-name")).to_have_text("trail-map.pdf")


def test_refused_uploads_are_explained_and_nothing_is_sent(people, make_user, media_server, artifacts):
    alice, bob, _ = pair(people, make_user, media_server, tolerate="the server responded with a status of 4")
    uploads: list[str] = []
    alice.page.on("request", lambda r: uploads.append(r.method) if "/api/uploads/" in r.url else None)
    picker = alice.page.locator("#attach-input")
    alert = alice.page.locator("#composer-error")
    expect(alert).to_have_attribute("role", "alert")

    # Not a type the server takes, whatever its name says: 415, and the types it does take.
    picker.set_input_files(files=[{"name": "holiday.png", "mimeType": "image/png", "buffer": ELF}])
    expect(alert).to_contain_text("holiday.png cannot be sent: the server does not accept this kind of file.")
    expect(alert).to_contain_text("You can send pictures (")
    expect(alert).to_contain_text("documents (")
    expect(tray(alice)).to_be_hidden()
    alice.shot(artifacts, "19-upload-refused.png")
    # Enter in the empty box sends nothing.
    alice.page.locator("#composer-input").press("Enter")

    # Over the size limit (1 MiB here, published at /api/uploads/limits/): refused in the page,
    # with the limit, before any upload starts.
    sent = uploads.count("POST")
    big = b"\x89PNG\r\n\x1a\n" + bytes(1536 * 1024)
    picker.set_input_files(files=[{"name": "huge.png", "mimeType": "image/png", "buffer": big}])
    expect(alert).to_contain_text(
        re.compile(r"huge\.png is too large to send \(1\.5 MB\): files can be up to 1(\.\d)? MB\.")
    )
    picker.set_input_files(files=[{"name": "huger.png", "mimeType": "image/png", "buffer": big + big}])
    expect(alert).to_contain_text("huger.png is too large to send (3 MB)")
    assert uploads.count("POST") == sent

    # Two uploads that no message uses yet are this server's quota: the third gets 429.
    token = alice.page.locator('meta[name="csrf-token"]').get_attribute("content")
    for n in range(2):
        answer = alice.page.request.post(
            f"{media_server.url}/api/uploads/",
            multipart={"file": {"name": f"draft{n}.pdf", "mimeType": "application/pdf", "buffer": pdf(1)}},
            headers={"X-CSRFToken": token},
        )
        assert answer.status == 201, answer.text()
    picker.set_input_files(files=[{"name": "one-more.pdf", "mimeType": "application/pdf", "buffer": pdf(1)}])
    expect(alert).to_have_text("You have 2 uploads no message uses yet; send or delete some first.")
    expect(tray(alice)).to_be_hidden()

    # None of it reached Bob: the next message is the first he gets; the alert goes on sending.
    alice.send("Never mind, I'll bring it on a stick")
    expect(bob.page.locator("#message-list li.msg p.text")).to_have_text(
        ["Never mind, I'll bring it on a stick"]
    )
    expect(alert).to_be_hidden()


def test_readme_screenshot(people, make_user, media_server, artifacts):
    """A realistic conversation for the README: text, a photo with a caption, a reply to it,
    reactions and a file; saved as artifacts/readme-screenshot.png (1280x800)."""
    from groups.services import group_create
    from messaging.services import message_send

    alice_user = make_user(name="Alice Archer", email="alice.media@example.com", password=PASSWORD)
    bob_user = make_user(name="Bob Baker", email="bob.media@example.com", password=PASSWORD)
    carol_user = make_user(name="Carol Chen", email="carol.media@example.com", password=PASSWORD)

    def chats() -> None:
        # More of Alice's chats in the list, with news in them (before she logs in: this test
        # process's events do not reach the server's bus without Redis).
        group_create(user=carol_user.user, name="Weekend hikers", member_ids=[alice_user.id, bob_user.id])
        chat = direct_chat(carol_user, alice_user)
        message_send(
            user=carol_user.user, conversation_id=chat.public_id, content="Climbing wall on Thursday?"
        )
        direct_chat(alice_user, bob_user)

    off_the_browser_thread(chats)
    alice = people("Alice Archer", "alice.media@example.com", server=media_server)
    bob = people("Bob Baker", "bob.media@example.com", server=media_server)
    for person, other in ((alice, bob), (bob, alice)):
        log_in(person)
        person.open_chat(other.name)

    alice.send("Still on for the hike on Saturday? The forecast says sunny all day ☀️")
    bob.page.locator("#attach-input").set_input_files(
        files=[{"name": "ridge-trail.jpg", "mimeType": "image/jpeg", "buffer": landscape(1200, 600, "JPEG")}]
    )
    expect(tray(bob).locator("img.attachment-thumb")).to_be_visible()
    bob.page.locator("#composer-input").fill("Yes! Here is the view from the ridge")
    bob.page.locator("#composer-input").press("Enter")
    photo = media_item(alice, "image")
    loaded(alice, photo.locator("img"))
    open_actions(alice, photo).get_by_role("menuitemcheckbox", name="React with ❤️").click()
    open_actions(alice, photo).get_by_role("menuitem", name="Reply").click()
    alice.send("Wow! Let's start at 8 so we're up there before the crowds.")
    reply = bob.page.locator("#message-list li.msg", has_text="start at 8")
    open_actions(bob, reply).get_by_role("menuitemcheckbox", name="React with 👍").click()
    bob.page.locator("#attach-input").set_input_files(
        files=[{"name": "ridge-trail-map.pdf", "mimeType": "application/pdf", "buffer": pdf(8)}]
    )
    expect(tray(bob).locator(".attachment-name")).to_have_text("ridge-trail-map.pdf")
    expect(tray(bob)).to_have_attribute("data-state", "ready")  # uploaded: sendable
    bob.page.locator("#composer-input").fill("The route, in case we lose signal")
    bob.page.locator("#composer-input").press("Enter")
    expect(media_item(alice, "file").locator(".caption")).to_have_text("The route, in case we lose signal")
    expect(
        alice.page.locator("#message-list li.msg", has_text="start at 8").locator(".reaction")
    ).to_have_count(1)
    expect(media_item(alice, "image").locator(".reaction")).to_have_count(1)
    expect(alice.page.locator("#conv-subtitle")).to_have_text("online")
    expect(alice.badge("Carol Chen")).to_have_text("1")
    alice.page.locator("#composer-input").fill("Perfect, see you at the trailhead")
    alice.page.locator("#composer-input").blur()
    alice.page.mouse.move(0, 0)
    alice.page.screenshot(path=str(artifacts / "readme-screenshot.png"))


def test_an_upload_refused_for_an_expired_login_cookie_goes_again_once_it_is_renewed(
    people, short_token_server, make_user
):
    """Access tokens live 2 s on this server; the socket renews the cookie at each expiry. The
    first renewal's request is dropped, so the cookie stays expired until the next one: an
    upload in between is refused (401), waits for the renewal, and succeeds."""
    make_user(name="Finn Ford", email="finn.media@example.com", password=PASSWORD)
    finn = people(
        "Finn Ford", "finn.media@example.com", server=short_token_server, tolerate="Failed to load resource"
    )
    dropped: list[str] = []

    def drop_first(route) -> None:
        if dropped:
            route.continue_()
        else:
            dropped.append(route.request.url)
            route.abort()

    finn.page.route("**/update-access-token", drop_first)
    answers: list[int] = []
    finn.page.on("response", lambda r: answers.append(r.status) if r.url.endswith("/api/uploads/") else None)
    log_in(finn)
    finn.open_chat("Notes to self")
    deadline = time.monotonic() + 5
    while not dropped and time.monotonic() < deadline:
        finn.page.wait_for_timeout(50)
    assert dropped, "no renewal within 5 s"
    finn.page.locator("#attach-input").set_input_files(
        files=[{"name": "receipt.png", "mimeType": "image/png", "buffer": landscape(120, 80)}]
    )
    expect(tray(finn)).to_have_attribute("data-state", "ready")
    expect(tray(finn).locator(".attachment-name")).to_have_text("receipt.png")
    assert answers == [401, 201]
    finn.page.locator("#composer-input").press("Enter")
    expect(media_item(finn, "image")).to_have_attribute("data-state", "sent")
