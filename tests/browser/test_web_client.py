"""The web client in a real browser against a live server: people sign up, verify, find each
other and chat; receipts, unread counts, groups and their management, going offline and coming
back, scrolling back through history, text that is never HTML, and the live extras: typing
indicators, presence and delivered receipts.

Each person is a browser context of their own (own cookies). Screenshots of the main states are
written to tests/browser/artifacts/.
"""

import re

import pytest

from .support import (
    PASSWORD,
    Person,
    expect,
    log_in,
    off_the_browser_thread,
    on_server,
    verification_mail,
    wait_for_chat,
)

pytestmark = pytest.mark.django_db(transaction=True)


def sign_up(person: Person) -> None:
    page = person.page
    page.goto("/")
    page.wait_for_url("**/auth")  # no login cookies: the socket's auth-failure sends us here
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Display name").fill(person.name)
    page.locator("#signup-email").fill(person.email)
    page.locator("#signup-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Verify your email")).to_be_visible()
    expect(page.locator("#verify-email")).to_have_value(person.email)


def start_chat_with(person: Person, other: Person) -> None:
    page = person.page
    page.get_by_label("Find people").fill(other.name.split()[0])
    page.get_by_role("button", name=f"Open chat with {other.name}").click()
    expect(page.locator("#conv-title")).to_have_text(other.name)


def test_people_sign_up_verify_chat_and_come_back_from_offline(people, web_server, make_user, artifacts):
    mail_dir = web_server.log.parent / "mail"
    alice = people("Alice Archer", "alice.archer@example.com")
    bob = people("Bob Baker", "bob.baker@example.com")

    # Alice signs up and verifies with the code from the mail.
    sign_up(alice)
    alice.shot(artifacts, "01-verify.png")
    code, _link = verification_mail(mail_dir, alice.email)
    alice.page.locator("#verify-code").fill(code)
    alice.page.get_by_role("button", name="Verify and continue").click()
    wait_for_chat(alice)
    expect(alice.page.locator("body")).to_have_attribute("data-transport", "websocket")

    # Bob signs up and opens the link in the mail instead.
    sign_up(bob)
    _code, link = verification_mail(mail_dir, bob.email)
    bob.page.goto(on_server(link, web_server.url))
    expect(bob.page.get_by_role("heading", name="Congrats, Email Verified")).to_be_visible()
    bob.page.get_by_role("link", name="Go to the chat").click()
    wait_for_chat(bob)

    # Carol was verified earlier and logs in (her name is markup, shown as text).
    carol_user = make_user(name="Carol <b>Cole</b>", email="carol.cole@example.com", password=PASSWORD)
    carol = people(
        carol_user.user.display_name, "carol.cole@example.com", viewport={"width": 390, "height": 760}
    )
    carol.page.goto("/auth")
    carol.shot(artifacts, "02-login-mobile.png")
    log_in(carol)

    # Alice finds Bob and writes; Bob sees a new chat with one unread message.
    start_chat_with(alice, bob)
    alice.send("Hi Bob! <script>window.pwned = 1</script>")
    # Bob's page is open on another chat: it reports the message delivered, not read.
    expect(alice.my_message("Hi Bob!").locator(".status")).to_have_text("Delivered")
    expect(bob.badge(alice.name)).to_have_text("1")
    expect(bob.page).to_have_title("(1) Chat")
    bob.shot(artifacts, "03-unread.png")

    # Bob opens it: the badge goes, Alice sees it read; Bob answers, live.
    bob.open_chat(alice.name)
    expect(bob.message("Hi Bob! <script>window.pwned = 1</script>")).to_be_visible()
    expect(bob.badge(alice.name)).to_have_count(0)
    expect(alice.my_message("Hi Bob!").locator(".status")).to_have_text("Read")
    bob.send("Hello Alice, nice to meet you.")
    expect(alice.message("Hello Alice, nice to meet you.")).to_be_visible()
    expect(bob.my_message("Hello Alice").locator(".status")).to_have_text("Read")
    assert bob.page.evaluate("window.pwned") is None
    assert bob.page.locator("#message-list script").count() == 0

    # Notes to self.
    alice.open_chat("Notes to self")
    alice.send("Buy milk")

    # Alice creates a group with Bob and Carol.
    alice.page.get_by_role("button", name="New group").click()
    dialog = alice.page.get_by_role("dialog", name="New group")
    dialog.get_by_label("Name").fill("Team")
    dialog.get_by_role("searchbox", name="Members").fill("Bob")
    dialog.get_by_role("button", name=f"Add to the group: {bob.name}").click()
    dialog.get_by_role("searchbox", name="Members").fill("Carol")
    dialog.get_by_role("button", name=f"Add to the group: {carol.name}").click()
    expect(dialog.locator("#group-member-chips .chip")).to_have_count(2)
    dialog.get_by_role("button", name="Create group").click()
    expect(alice.page.locator("#conv-title")).to_have_text("Team")
    expect(alice.message("created the group")).to_be_visible()
    expect(bob.badge("Team")).to_have_text("1")
    expect(carol.badge("Team")).to_have_text("1")

    # A group message: unread counts grow, then fall as each reads; receipts follow.
    alice.send("Welcome to the team")
    expect(bob.badge("Team")).to_have_text("2")
    expect(alice.my_message("Welcome to the team").locator(".status")).to_have_text("Sent")
    carol.open_chat("Team")
    expect(carol.message("Welcome to the team")).to_be_visible()
    expect(carol.page.locator("#message-list .msg.theirs .sender").first).to_have_text(alice.name)
    expect(alice.my_message("Welcome to the team").locator(".status")).to_have_text("Read by 1 of 2")
    carol.shot(artifacts, "04-group-mobile.png")
    bob.open_chat("Team")
    expect(bob.badge("Team")).to_have_count(0)
    expect(alice.my_message("Welcome to the team").locator(".status")).to_have_text("Read by everyone")
    bob.send("Thanks!")
    expect(alice.message("Thanks!")).to_be_visible()
    expect(carol.message("Thanks!")).to_be_visible()

    alice.page.get_by_role("button", name="Group info").click()
    members = alice.page.locator("#member-list .member")
    expect(members).to_have_count(3)
    # Members shown get presence (not Alice herself): Bob and Carol are online.
    expect(members.locator('.member-presence[data-presence="online"]')).to_have_count(2)
    expect(members.filter(has_text="Alice Archer (you)").locator(".member-presence")).to_have_count(0)
    expect(members.filter(has_text="Alice Archer (you)").locator(".role")).to_have_text("Owner")
    expect(members.filter(has_text="Carol <b>Cole</b>")).to_have_count(1)
    alice.shot(artifacts, "05-group-info.png")
    alice.page.get_by_role("button", name="Close group info").click()

    # Bob goes offline with his chat with Alice open; Alice writes meanwhile.
    bob.open_chat(alice.name)
    bob.context.set_offline(True)
    expect(bob.page.locator("#conn-banner")).to_be_visible()
    expect(bob.page.locator("body")).to_have_attribute("data-connection", "offline")
    alice.open_chat(bob.name)
    alice.send("Are you there?")
    alice.send("I will wait.")
    alice.open_chat("Team")
    alice.send("Team news while Bob is away")
    bob.page.wait_for_timeout(500)
    expect(bob.message("Are you there?")).to_have_count(0)
    bob.page.fill("#composer-input", "Written while offline")
    bob.page.keyboard.press("Enter")
    expect(bob.my_message("Written while offline").locator(".status")).to_have_text("Sending…")
    bob.shot(artifacts, "06-offline.png")

    # Back online: the chat and the lists catch up; the waiting message goes out once.
    bob.context.set_offline(False)
    expect(bob.page.locator("body")).to_have_attribute("data-connection", "online")
    expect(bob.page.locator("#conn-banner")).to_be_hidden()
    expect(bob.message("Are you there?")).to_be_visible()
    expect(bob.message("I will wait.")).to_be_visible()
    expect(bob.badge("Team")).to_have_text("1")
    expect(bob.my_message("Written while offline").locator(".status")).to_have_text("Sent")
    alice.open_chat(bob.name)
    expect(alice.message("Written while offline")).to_have_count(1)
    expect(bob.my_message("Written while offline").locator(".status")).to_have_text("Read")
    bob.shot(artifacts, "07-back-online.png")
    expect(alice.my_message("I will wait.").locator(".status")).to_have_text("Read")
    alice.shot(artifacts, "08-direct-chat.png")
    bob.open_chat("Team")
    expect(bob.message("Team news while Bob is away")).to_be_visible()


def test_history_scrolls_back_and_groups_are_managed(people, make_user, artifacts):
    from groups.services import group_create
    from messaging.services import direct_conversation_get_or_create, message_send

    dora_user = make_user(name="Dora Dunn", email="dora@example.com", password=PASSWORD)
    eve_user = make_user(name="Eve Evans", email="eve@example.com", password=PASSWORD)

    def seed():
        chat, _partner, _created = direct_conversation_get_or_create(
            user=dora_user.user, other_user_id=eve_user.id
        )
        for n in range(1, 81):
            sender = dora_user.user if n % 2 else eve_user.user
            message_send(user=sender, conversation_id=chat.public_id, content=f"History {n}")
        return group_create(user=dora_user.user, name="Book club", member_ids=[eve_user.id])

    group = off_the_browser_thread(seed)

    dora = people("Dora Dunn", "dora@example.com")
    eve = people("Eve Evans", "eve@example.com")
    log_in(dora)
    log_in(eve)

    # The newest page first; scrolling to the top fetches the older ones.
    dora.open_chat("Eve Evans")
    expect(dora.message("History 80")).to_be_visible()
    expect(dora.page.locator("#message-list .text").get_by_text("History 1", exact=True)).to_have_count(0)
    assert dora.page.locator("#message-list .msg").count() == 50
    expect(dora.page.get_by_role("button", name="Load earlier messages")).to_be_attached()
    for _ in range(5):
        dora.page.locator("#messages").evaluate("el => { el.scrollTop = 0; }")
        if dora.page.locator("#history-start").is_visible():
            break
        dora.page.wait_for_timeout(300)
    expect(dora.page.locator("#history-start")).to_be_visible()
    expect(dora.page.locator("#message-list .msg")).to_have_count(80)
    assert dora.page.locator("#message-list .msg .text").first.text_content() == "History 1"

    # A moderator deletes a message: it is blanked in place (live on a shared bus, else on the
    # next fetch, which opening the chat again does).
    def moderate():
        from accounts.models import User
        from messaging.models import Message
        from messaging.services import message_moderate

        moderator = User.objects.create_user(
            email="mod@example.com", password=PASSWORD, display_name="Mod", email_verified=True
        )
        moderator.is_staff = moderator.is_superuser = True
        moderator.save(update_fields=["is_staff", "is_superuser"])
        target = Message.objects.get(content="History 79")
        message_moderate(moderator=moderator, message_id=target.public_id, action="delete", reason="Test")

    off_the_browser_thread(moderate)
    dora.open_chat("Notes to self")
    dora.open_chat("Eve Evans")
    expect(dora.page.locator("#message-list .msg.removed .text")).to_have_text("Message deleted")
    expect(dora.page.locator("#message-list .text").get_by_text("History 79", exact=True)).to_have_count(0)

    # Group management: remove Eve, add her back, hand over ownership, leave.
    dora.open_chat("Book club")
    expect(eve.chat_item("Book club")).to_be_visible()
    dora.page.get_by_role("button", name="Group info").click()
    dora.page.get_by_role("button", name="Remove Eve Evans from the group").click()
    dora.page.get_by_role("dialog", name="Remove member").get_by_role("button", name="Remove").click()
    expect(eve.chat_item("Book club")).to_have_count(0)
    expect(eve.page.locator("#app-notice")).to_have_text("You were removed from Book club.")
    expect(dora.page.locator("#member-list .member")).to_have_count(1)

    dora.page.get_by_label("Search people to add").fill("Eve")
    dora.page.get_by_role("button", name="Add to the group: Eve Evans").click()
    expect(dora.page.locator("#member-list .member")).to_have_count(2)
    expect(eve.chat_item("Book club")).to_be_visible()

    dora.page.get_by_role("button", name="Make owner: Eve Evans").click()
    dora.page.get_by_role("dialog", name="Hand over ownership").get_by_role(
        "button", name="Make owner"
    ).click()
    expect(dora.page.locator("#member-list .member", has_text="Eve Evans").locator(".role")).to_have_text(
        "Owner"
    )
    expect(dora.page.get_by_role("button", name="Delete group")).to_be_hidden()
    dora.shot(artifacts, "09-group-managed.png")
    dora.page.get_by_role("button", name="Leave group").click()
    dora.page.get_by_role("dialog", name="Leave group").get_by_role("button", name="Leave").click()
    expect(dora.chat_item("Book club")).to_have_count(0)

    # Eve, now the owner, deletes it.
    eve.open_chat("Book club")
    expect(eve.message("Dora Dunn left")).to_be_visible()
    eve.page.get_by_role("button", name="Group info").click()
    eve.page.get_by_role("button", name="Delete group").click()
    eve.page.get_by_role("dialog", name="Delete group").get_by_role("button", name="Delete").click()
    expect(eve.chat_item("Book club")).to_have_count(0)
    assert group.public_id not in eve.page.content()


def access_cookie(person: Person) -> str:
    return next(c["value"] for c in person.context.cookies() if c["name"] == "access_token")


def test_access_token_renews_and_logout_ends_every_tab(people, short_token_server, make_user):
    make_user(name="Finn Ford", email="finn@example.com", password=PASSWORD)
    finn = people("Finn Ford", "finn@example.com", server=short_token_server)
    log_in(finn)
    first = access_cookie(finn)

    # The server pushes a fresh access token at each expiry; the page has it stored as the
    # httpOnly cookie (POST /update-access-token) and stays connected.
    finn.page.wait_for_timeout(4500)
    assert access_cookie(finn) != first
    expect(finn.page.locator("body")).to_have_attribute("data-connection", "online")
    finn.open_chat("Notes to self")
    finn.send("Still connected")

    # A reload connects with the stored cookie.
    finn.page.reload()
    wait_for_chat(finn)
    expect(finn.page.locator("#conv-title")).to_have_text("Notes to self")  # reopened
    expect(finn.message("Still connected")).to_be_visible()

    # Logging out in a second tab ends the session everywhere.
    other_tab = finn.context.new_page()
    other_tab.goto("/")
    expect(other_tab.locator("body")).to_have_attribute("data-connection", "online")
    other_tab.get_by_role("button", name="Log out").click()
    other_tab.wait_for_url("**/auth")
    finn.page.wait_for_url("**/auth")
    expect(finn.page.locator("#auth-notice")).to_have_text("You were logged out. Log in again to continue.")
    finn.page.goto("/")
    finn.page.wait_for_url("**/auth")


def test_without_websockets_the_client_falls_back_to_long_polling(people, make_user):
    make_user(name="Gil Grant", email="gil@example.com", password=PASSWORD)
    gil = people("Gil Grant", "gil@example.com", tolerate="WebSocket")
    gil.context.route_web_socket("**/socket.io/**", lambda ws: ws.close())  # a proxy without WebSockets
    log_in(gil)
    expect(gil.page.locator("body")).to_have_attribute("data-transport", "polling")
    gil.open_chat("Notes to self")
    gil.send("Over long-polling")
    gil.page.reload()
    wait_for_chat(gil)
    expect(gil.message("Over long-polling")).to_be_visible()


TYPING_WATCH = """() => {
    // Every text the typing live region takes, to prove it never blinked off while refreshed.
    window.typingLog = [];
    const region = document.getElementById("typing");
    new MutationObserver(() => window.typingLog.push(region.textContent))
        .observe(region, {childList: true, characterData: true, subtree: true});
}"""


def test_typing_presence_and_delivered_receipts(people, quick_timers_server, make_user, artifacts):
    """Against a server whose typing indicators expire after 2 s and whose presence changes are
    debounced for 0.5 s (conftest.quick_timers_server)."""
    from messaging.services import direct_conversation_get_or_create

    hana_user = make_user(name="Hana Hill", email="hana@example.com", password=PASSWORD)
    ivan_user = make_user(name="Ivan Ito", email="ivan@example.com", password=PASSWORD)
    off_the_browser_thread(
        lambda: direct_conversation_get_or_create(user=hana_user.user, other_user_id=ivan_user.id)
    )
    hana = people("Hana Hill", "hana@example.com", server=quick_timers_server)
    ivan = people("Ivan Ito", "ivan@example.com", server=quick_timers_server)

    # Ivan has never been online: an offline dot, no last-seen time. Hana's message stays "Sent".
    log_in(hana)
    hana_dot = hana.chat_item("Ivan Ito").locator(".avatar .presence")
    expect(hana_dot).to_have_attribute("data-presence", "offline")
    hana.open_chat("Ivan Ito")
    subtitle = hana.page.locator("#conv-subtitle")
    expect(subtitle).to_have_text("offline")
    hana.send("Are you around?")
    status = hana.my_message("Are you around?").locator(".status")
    expect(status).to_have_text("Sent")

    # Ivan connects: online for Hana, and his client reports the unread message delivered.
    log_in(ivan)
    expect(hana_dot).to_have_attribute("data-presence", "online")
    expect(subtitle).to_have_text("online")
    expect(hana.chat_item("Ivan Ito")).to_have_attribute(
        "aria-label", re.compile(r"Ivan Ito, Direct chat, online")
    )
    expect(status).to_have_text("Delivered")
    # He opens the chat: read.
    ivan.open_chat("Hana Hill")
    expect(status).to_have_text("Read")
    expect(ivan.page.locator("#conv-subtitle")).to_have_text("online")

    # Ivan types for longer than the 2 s expiry: the indicator appears and is refreshed without
    # blinking off, in the open chat and as a hint in the list.
    typing = hana.page.locator("#typing")
    hana.page.evaluate(TYPING_WATCH)
    composer = ivan.page.locator("#composer-input")
    composer.press_sequentially("I am typing a reply", delay=130)
    expect(typing).to_have_text("Ivan Ito is typing…")
    expect(hana.chat_item("Ivan Ito").locator(".typing-hint")).to_have_text("typing…")
    log = hana.page.evaluate("window.typingLog")
    assert log and log[-1] == "Ivan Ito is typing…" and "" not in log, log
    hana.shot(artifacts, "10-typing.png")

    # Clearing the box stops it at once, well before the expiry.
    composer.fill("")
    expect(typing).to_have_text("", timeout=1000)
    expect(hana.chat_item("Ivan Ito").locator(".typing-hint")).to_have_count(0)

    # So does sending.
    composer.press_sequentially("On my way", delay=20)
    expect(typing).to_have_text("Ivan Ito is typing…")
    composer.press("Enter")
    expect(typing).to_have_text("", timeout=1000)
    expect(hana.message("On my way")).to_be_visible()

    # Ivan loses the network while typing: no stop-typing comes, the indicator expires by
    # itself after ExpiresIn (2 s here).
    composer.press_sequentially("Still h", delay=20)
    expect(typing).to_have_text("Ivan Ito is typing…")
    hana.page.wait_for_timeout(1200)  # past any trailing typing event
    ivan.context.set_offline(True)
    expect(ivan.page.locator("body")).to_have_attribute("data-connection", "offline")
    assert typing.text_content() == "Ivan Ito is typing…"
    ivan.shot(artifacts, "11-typing-sender-offline.png")
    expect(typing).to_have_text("", timeout=3000)

    # Back online, then gone for good: the dot goes offline with a last-seen time.
    ivan.context.set_offline(False)
    expect(ivan.page.locator("body")).to_have_attribute("data-connection", "online")
    expect(hana_dot).to_have_attribute("data-presence", "online")
    ivan.context.close()
    expect(hana_dot).to_have_attribute("data-presence", "offline", timeout=5000)
    expect(subtitle).to_have_text("last seen just now")
    hana.shot(artifacts, "12-presence-offline.png")
