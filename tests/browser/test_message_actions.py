"""Edits, deletes, replies and reactions in the web client (docs/protocol.md §13), and catching
up with `sync` after a reconnect or a gap (§14), with two people in two browser contexts.

Message actions are driven from the keyboard where it matters (the "Message actions" button,
the menu's arrow keys, Escape), and every state is asserted on what the page shows.
"""

import json
import re
import time

import pytest

from .support import PASSWORD, Person, expect, log_in, off_the_browser_thread, wait_for_chat

pytestmark = pytest.mark.django_db(transaction=True)

SOCKET_EVENT = re.compile(r'^42\d*\["([^"]+)"')


def item(person: Person, text: str):
    """The message whose text is exactly `text`."""
    exact = re.compile(rf"^{re.escape(text)}$")
    return person.page.locator("#message-list li.msg").filter(
        has=person.page.locator("p.text", has_text=exact)
    )


def texts(person: Person):
    """Every message's text, in order (a tombstone's is "Message deleted")."""
    return person.page.locator("#message-list li.msg p.text")


def chip(person: Person, text: str, emoji: str):
    return item(person, text).locator(f'.reaction[data-emoji="{emoji}"]')


def open_menu(person: Person, text: str):
    """Open a message's actions from the keyboard: focus its button, press Enter."""
    item(person, text).locator(".msg-actions-btn").focus()
    person.page.keyboard.press("Enter")
    menu = person.page.get_by_role("menu", name="Message actions")
    expect(menu).to_be_visible()
    return menu


def choose(person: Person, text: str, action: str) -> None:
    """Pick `action` ("Reply", "Edit", "Delete", "React with 👍"...) in a message's menu."""
    menu = open_menu(person, text)
    role = "menuitemcheckbox" if action.startswith(("React with", "Take back")) else "menuitem"
    menu.get_by_role(role, name=action).click()
    expect(menu).to_be_hidden()


def delete(person: Person, text: str) -> None:
    choose(person, text, "Delete")
    person.page.get_by_role("dialog", name="Delete message").get_by_role("button", name="Delete").click()


def record_socket_events(person: Person) -> list[str]:
    """The names of the Socket.IO events the page sends, on every WebSocket it opens."""
    sent: list[str] = []

    def on_frame(payload) -> None:
        match = SOCKET_EVENT.match(payload if isinstance(payload, str) else "")
        if match:
            sent.append(match.group(1))

    person.page.on("websocket", lambda ws: ws.on("framesent", on_frame))
    return sent


def record_syncs(person: Person) -> list[dict]:
    """The payloads of the `sync` events the page sends."""
    payloads: list[dict] = []

    def on_frame(payload) -> None:
        match = SOCKET_EVENT.match(payload if isinstance(payload, str) else "")
        if match and match.group(1) == "sync":
            payloads.append(json.loads(payload[payload.index("[") :])[1])

    person.page.on("websocket", lambda ws: ws.on("framesent", on_frame))
    return payloads


def read_up_to(user, chat_id: str) -> int:
    """The Seq `user` has read up to in the chat, as the server holds it."""
    from messaging.models import Membership

    return off_the_browser_thread(
        lambda: Membership.objects.get(user=user.user, conversation__public_id=chat_id).last_read_seq
    )


def direct_chat(a, b) -> object:
    from messaging.services import direct_conversation_get_or_create

    chat, _partner, _created = direct_conversation_get_or_create(user=a.user, other_user_id=b.id)
    return chat


def test_edit_reply_react_and_delete_show_live_on_both_sides(people, make_user, artifacts):
    alice_user = make_user(name="Alice Archer", email="alice.a@example.com", password=PASSWORD)
    bob_user = make_user(name="Bob Baker", email="bob.b@example.com", password=PASSWORD)
    off_the_browser_thread(lambda: direct_chat(alice_user, bob_user))
    alice = people("Alice Archer", "alice.a@example.com")
    bob = people("Bob Baker", "bob.b@example.com")
    log_in(alice)
    log_in(bob)
    alice.open_chat("Bob Baker")
    bob.open_chat("Alice Archer")
    alice.send("Lunch at noon?")
    expect(item(bob, "Lunch at noon?")).to_be_visible()

    # Alice edits from the keyboard: the menu opens on its first item, End and ArrowUp reach
    # "Edit"; the composer holds the text and says so.
    open_menu(alice, "Lunch at noon?")
    menu = alice.page.get_by_role("menu", name="Message actions")
    expect(menu.get_by_role("menuitemcheckbox", name="React with 👍")).to_be_focused()
    alice.page.keyboard.press("End")
    expect(menu.get_by_role("menuitem", name="Delete")).to_be_focused()
    alice.page.keyboard.press("ArrowUp")
    expect(menu.get_by_role("menuitem", name="Edit")).to_be_focused()
    alice.page.keyboard.press("Enter")
    composer = alice.page.locator("#composer-input")
    expect(composer).to_be_focused()
    expect(composer).to_have_value("Lunch at noon?")
    expect(alice.page.locator("#composer-context-title")).to_have_text("Editing your message")
    expect(alice.page.locator("#send-btn")).to_have_text("Save")
    composer.fill("Lunch at one?")
    alice.page.keyboard.press("Enter")
    for person in (alice, bob):
        expect(item(person, "Lunch at one?").locator(".edited")).to_have_text("edited")
        expect(item(person, "Lunch at noon?")).to_have_count(0)
    expect(alice.page.locator("#composer-context")).to_be_hidden()
    expect(alice.page.locator("#send-btn")).to_have_text("Send")

    # Bob starts a reply and cancels it with Escape, then replies for real.
    choose(bob, "Lunch at one?", "Reply")
    context = bob.page.locator("#composer-context")
    expect(context).to_be_visible()
    expect(bob.page.locator("#composer-context-title")).to_have_text("Replying to Alice Archer")
    expect(bob.page.locator("#composer-context-text")).to_have_text("Lunch at one?")
    expect(bob.page.locator("#composer-input")).to_be_focused()
    bob.page.keyboard.press("Escape")
    expect(context).to_be_hidden()
    choose(bob, "Lunch at one?", "Reply")
    bob.send("One works for me")
    expect(context).to_be_hidden()
    for person in (alice, bob):
        quote = item(person, "One works for me").locator(".quote")
        expect(quote.locator(".quote-sender")).to_have_text("Alice Archer")
        expect(quote.locator(".quote-excerpt")).to_have_text("Lunch at one?")
    # Following the quote focuses the original.
    item(alice, "One works for me").locator(".quote").click()
    expect(item(alice, "Lunch at one?")).to_be_focused()

    # Bob may react to Alice's message but not edit or delete it.
    menu = open_menu(bob, "Lunch at one?")
    expect(menu.get_by_role("menuitem")).to_have_text(["Reply"])
    menu.get_by_role("menuitemcheckbox", name="React with 👍").click()
    expect(chip(bob, "Lunch at one?", "👍")).to_have_attribute("aria-pressed", "true")
    expect(chip(alice, "Lunch at one?", "👍").locator(".count")).to_have_text("1")
    expect(chip(alice, "Lunch at one?", "👍")).to_have_attribute("aria-pressed", "false")
    # Alice joins in with the chip, and adds 🎉 from the menu.
    chip(alice, "Lunch at one?", "👍").click()
    choose(alice, "Lunch at one?", "React with 🎉")
    for person in (alice, bob):
        expect(chip(person, "Lunch at one?", "👍").locator(".count")).to_have_text("2")
        expect(chip(person, "Lunch at one?", "🎉").locator(".count")).to_have_text("1")
    expect(chip(alice, "Lunch at one?", "👍")).to_have_attribute("aria-pressed", "true")
    expect(chip(bob, "Lunch at one?", "👍")).to_have_attribute("aria-pressed", "true")
    bob.shot(artifacts, "13-reply-reactions-edited.png")
    # The menu shows Alice's own reactions as checked.
    menu = open_menu(alice, "Lunch at one?")
    taken = menu.get_by_role("menuitemcheckbox", name="Take back 🎉")
    expect(taken).to_have_attribute("aria-checked", "true")
    alice.shot(artifacts, "14-message-actions.png")
    alice.page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(item(alice, "Lunch at one?").locator(".msg-actions-btn")).to_be_focused()
    # Bob takes his 👍 back from the keyboard (the chip is a toggle button).
    chip(bob, "Lunch at one?", "👍").focus()
    bob.page.keyboard.press("Enter")
    for person in (alice, bob):
        expect(chip(person, "Lunch at one?", "👍").locator(".count")).to_have_text("1")
    expect(chip(bob, "Lunch at one?", "👍")).to_have_attribute("aria-pressed", "false")
    expect(chip(bob, "Lunch at one?", "👍")).to_be_focused()  # redrawn, focus kept
    expect(chip(alice, "Lunch at one?", "👍")).to_have_attribute("aria-pressed", "true")

    # ArrowUp in an empty composer edits Bob's last message; Escape leaves it as it was.
    bob.page.locator("#composer-input").focus()
    bob.page.keyboard.press("ArrowUp")
    expect(bob.page.locator("#composer-input")).to_have_value("One works for me")
    bob.page.keyboard.press("Escape")
    expect(bob.page.locator("#composer-input")).to_have_value("")

    # Alice deletes her message: a tombstone on both sides, in place, without its reactions;
    # the reply's quote says it was deleted.
    delete(alice, "Lunch at one?")
    for person in (alice, bob):
        expect(texts(person)).to_have_text(["Message deleted", "One works for me"])
        expect(person.page.locator("#message-list .msg.removed .reaction")).to_have_count(0)
        quote = item(person, "One works for me").locator(".quote")
        expect(quote).to_have_class(re.compile(r"\bdeleted\b"))
        expect(quote.locator(".quote-excerpt")).to_have_text("Message deleted")
    expect(alice.page.locator("#message-list .msg.removed")).to_be_focused()

    # Notes to self have the same actions; a quote follows an edit of the message it quotes.
    alice.open_chat("Notes to self")
    alice.send("Buy milk")
    choose(alice, "Buy milk", "Reply")
    alice.send("And bread")
    choose(alice, "And bread", "React with ❤️")
    choose(alice, "Buy milk", "Edit")
    alice.page.locator("#composer-input").fill("Buy oat milk")
    alice.page.keyboard.press("Enter")
    expect(item(alice, "Buy oat milk").locator(".edited")).to_be_visible()
    expect(item(alice, "And bread").locator(".quote-excerpt")).to_have_text("Buy oat milk")
    expect(chip(alice, "And bread", "❤️")).to_have_attribute("aria-pressed", "true")
    alice.page.reload()
    expect(texts(alice)).to_have_text(["Buy oat milk", "And bread"])
    expect(item(alice, "And bread").locator(".quote-excerpt")).to_have_text("Buy oat milk")
    expect(chip(alice, "And bread", "❤️")).to_have_attribute("aria-pressed", "true")


def test_group_owner_deletes_any_message_members_only_their_own(people, make_user, artifacts):
    from groups.services import group_create

    owner = make_user(name="Olga Owner", email="olga@example.com", password=PASSWORD)
    member = make_user(name="Max Member", email="max@example.com", password=PASSWORD)
    make_user(name="Nia Nash", email="nia@example.com", password=PASSWORD)
    off_the_browser_thread(lambda: group_create(user=owner.user, name="Crew", member_ids=[member.id]))
    olga = people("Olga Owner", "olga@example.com", viewport={"width": 390, "height": 760})
    max_ = people("Max Member", "max@example.com")
    max_sent = record_socket_events(max_)
    log_in(olga)
    log_in(max_)
    olga.open_chat("Crew")
    max_.open_chat("Crew")
    olga.send("Meeting at five")
    max_.send("Buy cheap watches")
    expect(item(olga, "Buy cheap watches")).to_be_visible()

    # A member may delete only their own messages; the owner anyone's.
    menu = open_menu(max_, "Meeting at five")
    expect(menu.get_by_role("menuitem")).to_have_text(["Reply"])
    max_.page.keyboard.press("Escape")
    menu = open_menu(olga, "Buy cheap watches")
    expect(menu.get_by_role("menuitem")).to_have_text(["Reply", "Delete"])
    # On a narrow screen the menu is a sheet along the bottom edge.
    box = menu.bounding_box()
    assert box["width"] == 390 and box["y"] + box["height"] == pytest.approx(760, abs=1), box
    olga.shot(artifacts, "15-message-actions-mobile.png")
    menu.get_by_role("menuitem", name="Delete").click()
    dialog = olga.page.get_by_role("dialog", name="Delete message")
    expect(dialog).to_contain_text("Delete this message from Max Member for everyone?")
    dialog.get_by_role("button", name="Delete").click()
    for person in (olga, max_):
        expect(texts(person).filter(has_text="Buy cheap watches")).to_have_count(0)
        expect(person.page.locator("#message-list .msg.removed p.text")).to_have_text("Message deleted")

    # Olga adds Nia: the system message comes live (`system-message`, with its Rev), so Max's
    # client sees no hole and asks for no sync.
    olga.page.get_by_role("button", name="Group info").click()
    olga.page.get_by_label("Search people to add").fill("Nia")
    olga.page.get_by_role("button", name="Add to the group: Nia Nash").click()
    expect(max_.page.locator("#message-list .msg.system p.text").last).to_have_text(
        "Olga Owner added Nia Nash"
    )
    max_.send("Welcome Nia")
    assert "sync" not in max_sent, max_sent


def test_reconnect_catches_up_with_sync_and_gaps_are_filled(people, make_user):
    from messaging.services import message_send

    alice_user = make_user(name="Alice Adams", email="alice.ad@example.com", password=PASSWORD)
    bob_user = make_user(name="Bob Brown", email="bob.br@example.com", password=PASSWORD)

    def seed():
        from groups.services import group_create

        chat = direct_chat(alice_user, bob_user)
        for text in ("one", "two", "three"):
            message_send(user=alice_user.user, conversation_id=chat.public_id, content=text)
        message_send(user=bob_user.user, conversation_id=chat.public_id, content="four")
        group_create(user=alice_user.user, name="Weekend", member_ids=[bob_user.id])
        return chat.public_id

    chat_id = off_the_browser_thread(seed)
    alice = people("Alice Adams", "alice.ad@example.com")
    bob = people("Bob Brown", "bob.br@example.com")
    phone = people("Bob Brown", "bob.br@example.com")  # Bob's second device
    sent = record_socket_events(bob)
    syncs = record_syncs(bob)
    log_in(alice)
    log_in(bob)
    log_in(phone)
    alice.open_chat("Bob Brown")
    bob.open_chat("Alice Adams")
    phone.open_chat("Alice Adams")
    expect(texts(bob)).to_have_text(["one", "two", "three", "four"])
    choose(alice, "three", "React with ❤️")
    expect(chip(bob, "three", "❤️").locator(".count")).to_have_text("1")

    # Bob's laptop goes offline. Meanwhile Alice edits, deletes, reacts, takes a reaction back,
    # sends and replies; Bob writes from his phone; the group gets news.
    bob.context.set_offline(True)
    expect(bob.page.locator("body")).to_have_attribute("data-connection", "offline")
    choose(alice, "one", "Edit")
    alice.page.locator("#composer-input").fill("one, edited")
    alice.page.keyboard.press("Enter")
    expect(item(alice, "one, edited").locator(".edited")).to_be_visible()
    delete(alice, "two")
    expect(alice.page.locator("#message-list .msg.removed")).to_have_count(1)
    choose(alice, "four", "React with 👍")
    expect(chip(alice, "four", "👍").locator(".count")).to_have_text("1")
    chip(alice, "three", "❤️").click()
    expect(chip(alice, "three", "❤️")).to_have_count(0)
    phone.send("from my phone")
    expect(item(alice, "from my phone")).to_be_visible()
    choose(alice, "four", "Reply")
    alice.send("five")
    alice.open_chat("Weekend")
    alice.send("Weekend news")
    alice.open_chat("Bob Brown")
    expect(texts(bob)).to_have_text(["one", "two", "three", "four"])  # still the old state
    reconnect_at = len(sent)

    # Back online: exactly the current state, each message once, without fetching history.
    bob.context.set_offline(False)
    expect(bob.page.locator("body")).to_have_attribute("data-connection", "online")
    expect(texts(bob)).to_have_text(
        ["one, edited", "Message deleted", "three", "four", "from my phone", "five"]
    )
    expect(item(bob, "one, edited").locator(".edited")).to_be_visible()
    expect(chip(bob, "three", "❤️")).to_have_count(0)
    expect(chip(bob, "four", "👍").locator(".count")).to_have_text("1")
    expect(chip(bob, "four", "👍")).to_have_attribute("aria-pressed", "false")
    expect(item(bob, "five").locator(".quote-excerpt")).to_have_text("four")
    expect(bob.page.locator("#message-list .msg.mine")).to_have_count(2)  # four, from my phone
    expect(bob.badge("Weekend")).to_have_text("2")  # its creation notice and the news
    after = sent[reconnect_at:]
    assert "sync" in after, after
    assert not {"fetch-personal-chat", "fetch-group-chat"} & set(after), after
    # Only the chat the laptop holds messages of is synced; the others took their positions
    # from the greeting (each entry's Rev), with no `All`.
    assert [set(p["Positions"]) for p in syncs] == [{chat_id}], syncs
    assert not any(p["All"] for p in syncs), syncs

    # Bob's own message from his phone reaches the laptop at once (message-sent), no sync.
    phone.send("phone again")
    expect(item(bob, "phone again")).to_be_visible()
    assert sent[reconnect_at:].count("sync") == 1, sent[reconnect_at:]

    # A gap while online: a message whose bus event was lost (stored here with publishing
    # switched off: the bus is best effort); Alice's next one shows the hole, and sync fills it
    # in order.
    def lost() -> None:
        from unittest import mock

        with mock.patch("messaging.services.sending.publish_many_on_commit"):
            message_send(user=alice_user.user, conversation_id=chat_id, content="lost on the bus")

    off_the_browser_thread(lost)
    alice.send("six")
    expect(texts(bob)).to_have_text(
        ["one, edited", "Message deleted", "three", "four", "from my phone", "five", "phone again"]
        + ["lost on the bus", "six"]
    )
    assert sent[reconnect_at:].count("sync") == 2, sent[reconnect_at:]

    # Read receipts missed while away come back with the sync (read state has no Rev): Alice
    # reads Bob's "seven" while his laptop is offline; back online, it says "Read".
    alice.open_chat("Weekend")
    bob.send("seven")
    expect(bob.my_message("seven").locator(".status")).to_have_text("Delivered")
    bob.context.set_offline(True)
    expect(bob.page.locator("body")).to_have_attribute("data-connection", "offline")
    alice.open_chat("Bob Brown")
    expect(item(alice, "seven")).to_be_visible()
    seven = int(bob.my_message("seven").get_attribute("data-seq"))
    deadline = time.monotonic() + 10
    while read_up_to(alice_user, chat_id) < seven and time.monotonic() < deadline:
        alice.page.wait_for_timeout(50)  # Alice's read reaches the server
    assert read_up_to(alice_user, chat_id) >= seven
    bob.context.set_offline(False)
    expect(bob.page.locator("body")).to_have_attribute("data-connection", "online")
    expect(bob.my_message("seven").locator(".status")).to_have_text("Read")

    # The group Bob never opened was caught up too.
    bob.open_chat("Weekend")
    expect(texts(bob)).to_have_text(["Alice Adams created the group", "Weekend news"])


def test_sync_reload_and_more(people, small_sync_server, make_user):
    """Against a server whose sync answers carry at most 3 changes (CHAT_SYNC_MAX_CHANGES): a
    chat that missed more is reloaded from history; a full answer is followed by another."""
    from groups.services import group_create
    from messaging.services import message_send

    carol_user = make_user(name="Carol Cook", email="carol.c@example.com", password=PASSWORD)
    dan_user = make_user(name="Dan Dale", email="dan.d@example.com", password=PASSWORD)
    erin_user = make_user(name="Erin Eve", email="erin.e@example.com", password=PASSWORD)

    def seed():
        for other in (carol_user, erin_user):
            chat = direct_chat(other, dan_user)
            name = other.user.display_name
            message_send(user=other.user, conversation_id=chat.public_id, content=f"hi from {name}")
        group_create(user=carol_user.user, name="Trio", member_ids=[dan_user.id, erin_user.id])

    off_the_browser_thread(seed)
    dan = people("Dan Dale", "dan.d@example.com", server=small_sync_server)
    carol = people("Carol Cook", "carol.c@example.com", server=small_sync_server)
    erin = people("Erin Eve", "erin.e@example.com", server=small_sync_server)
    sent = record_socket_events(dan)
    for person in (dan, carol, erin):
        log_in(person)
    # Dan loads every chat, so he holds a position in each.
    for title, first in (("Erin Eve", "hi from Erin Eve"), ("Trio", "Carol Cook created the group")):
        dan.open_chat(title)
        expect(texts(dan).first).to_have_text(first)
    dan.open_chat("Carol Cook")
    expect(texts(dan)).to_have_text(["hi from Carol Cook"])
    carol.open_chat("Dan Dale")

    # Carol writes 5 messages while Dan is away: more than an answer carries, so `Reload`; the
    # open chat's newest page is fetched, once.
    dan.context.set_offline(True)
    expect(dan.page.locator("body")).to_have_attribute("data-connection", "offline")
    for n in range(1, 6):
        carol.send(f"carol {n}")
    reconnect_at = len(sent)
    dan.context.set_offline(False)
    expect(dan.page.locator("body")).to_have_attribute("data-connection", "online")
    expect(texts(dan)).to_have_text(["hi from Carol Cook"] + [f"carol {n}" for n in range(1, 6)])
    after = sent[reconnect_at:]
    assert after.count("fetch-personal-chat") == 1, after

    # Then 2 changes in Erin's chat and 2 in the group Dan has open: the first answer fits only
    # one chat (`More` for the other), and the open group shows both without a fetch.
    dan.open_chat("Trio")
    erin.open_chat("Trio")
    dan.context.set_offline(True)
    expect(dan.page.locator("body")).to_have_attribute("data-connection", "offline")
    erin.send("trio 1")
    choose(erin, "trio 1", "React with 🎉")
    expect(chip(erin, "trio 1", "🎉")).to_be_visible()
    erin.open_chat("Dan Dale")
    erin.send("erin 1")
    choose(erin, "erin 1", "React with 😮")
    expect(chip(erin, "erin 1", "😮")).to_be_visible()
    reconnect_at = len(sent)
    dan.context.set_offline(False)
    expect(dan.page.locator("body")).to_have_attribute("data-connection", "online")
    expect(texts(dan)).to_have_text(["Carol Cook created the group", "trio 1"])
    expect(chip(dan, "trio 1", "🎉").locator(".count")).to_have_text("1")
    after = sent[reconnect_at:]
    assert after.count("sync") == 2 and "fetch-group-chat" not in after, after


def test_a_second_tab_shows_own_messages_and_edits_at_once_without_a_sync(people, make_user):
    alice_user = make_user(name="Alice Archer", email="alice.t@example.com", password=PASSWORD)
    bob_user = make_user(name="Bob Baker", email="bob.t@example.com", password=PASSWORD)
    off_the_browser_thread(lambda: direct_chat(alice_user, bob_user))
    alice = people("Alice Archer", "alice.t@example.com")
    log_in(alice)
    # A second tab of the same browser: same login cookies, its own socket.
    tab = Person(alice.name, alice.email, alice.context, alice.context.new_page())
    syncs = record_syncs(tab)
    tab.page.goto("/")
    wait_for_chat(tab)
    for page in (alice, tab):
        page.open_chat("Bob Baker")
    alice.send("Sent from the first tab")
    expect(tab.my_message("Sent from the first tab")).to_be_visible()
    choose(alice, "Sent from the first tab", "Edit")
    composer = alice.page.locator("#composer-input")
    composer.fill("Edited in the first tab")
    composer.press("Enter")
    expect(item(tab, "Edited in the first tab").locator(".edited")).to_have_text("edited")
    # Both arrived as events (message-sent, message-edited), not through a gap sync.
    assert syncs == []
