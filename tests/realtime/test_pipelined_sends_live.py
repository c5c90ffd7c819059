"""Pipelined sends (gateway/lanes.py) with a real python-socketio client against a live server
process: a client that sends without waiting for its acks gets them, and its messages stored and
delivered, in the order it sent them; a refused send and an event that is not a send keep their
place among them."""

import asyncio

import pytest

from messaging.models import Message

from .clients import expresschat as connect

pytestmark = pytest.mark.django_db(transaction=True)


async def test_sends_in_flight_are_acked_stored_and_delivered_in_order(live_server_proc, make_user):
    alice, bob = make_user("Alice"), make_user("Bob")
    a, b = await connect(live_server_proc, alice), await connect(live_server_proc, bob)
    chat_id = (await a.call("create-personal-chat", {"Receiver": bob.id}))["data"]["ChatId"]

    answers: list[tuple[int, dict]] = []
    done = asyncio.get_running_loop().create_future()
    plan: list[tuple[str, dict]] = []
    for n in range(40):
        if n == 13:  # refused at once (no such chat), between sends still in their batches
            plan.append(("send-personal-message", {"ChatId": "0" * 24, "Content": "lost"}))
        elif n == 27:  # not a send: runs after every send before it is stored
            plan.append(("read-personal-message", {"ChatId": chat_id}))
        else:
            plan.append(("send-personal-message", {"ChatId": chat_id, "Content": f"m{n}"}))

    def answered(n: int):
        def callback(ack):
            answers.append((n, ack))
            if len(answers) == len(plan) and not done.done():
                done.set_result(None)

        return callback

    for n, (event, data) in enumerate(plan):  # each emit returns once written, not once acked
        await a.sio.emit(event, data, callback=answered(n))
    await asyncio.wait_for(done, 15)

    assert [n for n, _ack in answers] == list(range(len(plan)))
    acks = dict(answers)
    assert acks[13]["ok"] is False and acks[13]["error"]["code"] == "not_found"
    sends = [n for n in range(len(plan)) if n not in (13, 27)]
    seqs = [acks[n]["data"]["Seq"] for n in sends]
    assert seqs == list(range(1, len(sends) + 1))
    # The read ran after the 26 sends before it were stored: its pointer is the 26th seq.
    assert acks[27]["ok"] and acks[27]["data"]["Seq"] == acks[26]["data"]["Seq"] == 26

    received = [(await b.next("receive-personal-message"))["Content"] for _ in sends]
    assert received == [f"m{n}" for n in sends]
    stored = await asyncio.to_thread(
        lambda: list(
            Message.objects.filter(conversation__public_id=chat_id)
            .order_by("seq")
            .values_list("content", flat=True)
        )
    )
    assert stored == [f"m{n}" for n in sends]
    await a.close()
    await b.close()
