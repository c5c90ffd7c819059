"""Scenario definitions: what each scenario measures and with how much load.

`full` is what `make bench` runs (everything under 10 minutes on the 2-core machine); `quick`
is for iteration (`bench/run.py --scenario direct --quick`). bench/run.py holds the code that
runs them. Every count and duration here is an upper bound the run respects.
"""

SCENARIOS = [
    {
        "name": "direct",
        "number": 1,
        "title": "Direct messages: 100 pairs, saturation and a fixed 1,000 msgs/s",
        "full": {
            "pairs": 100,
            "window": 10,  # messages in flight per sender at saturation
            "saturation": {"warmup": 5, "duration": 15, "drain": 15},
            "fixed_rate": 1000,  # messages/s offered in total, open loop
            "fixed": {"warmup": 3, "duration": 15, "drain": 15},
            "service_calls": 1000,  # message_send called in-process, no sockets (bench/service_cost.py)
        },
        "quick": {
            "pairs": 100,
            "window": 10,
            "saturation": {"warmup": 2, "duration": 6, "drain": 10},
            "fixed_rate": 1000,
            "fixed": {"warmup": 2, "duration": 6, "drain": 10},
            "service_calls": 300,
        },
        "targets": {"throughput_ratio_min": 1.5, "p99_ms_max": 10.0},  # issue 19
    },
    {
        "name": "group",
        "number": 2,
        "title": "Group fan-out: a 1,000-member group, all connected, 20 msgs/s offered, then saturation",
        # One group of `members` (groups.services.group_create; the first member owns it), every
        # member connected (`connect_concurrency` handshakes in flight); `senders` of them send
        # round robin, open loop. Fixed rate: `rate` msgs/s = rate x (members - 1) deliveries/s
        # (the sender gets no copy). Saturation: `rates` in steps of `step` s while deliveries keep
        # up (>= min_delivered_share of offered) and p99 stays under stop_p99_ms, at most
        # max_seconds. `quiet`: after the last connection, wait (min..max s) until nothing but
        # deliveries arrived for `idle` s: the product's presence traffic of the ramp.
        # presence_hidden: the members hide their presence (a user setting). With presence visible
        # every connecting member's presence goes to its 999 co-members' user groups: 604,284
        # presence events for one ramp of 1,000 (handshakes at 17-19/s, quiet only ~60 s after the
        # last connection), with group messages queued behind them on the bus (README, scenario
        # 2). The scenario measures message fan-out; BENCH_GROUP_PRESENCE=visible measures with
        # presence on.
        "full": {
            "members": 1000,
            "presence_hidden": True,
            "senders": 4,
            "connect_concurrency": 50,
            "quiet": {"min": 2.5, "idle": 2, "max": 30},
            "fixed": {"rate": 20, "warmup": 3, "duration": 12},
            "saturation": {
                "rates": [40, 80, 160, 320],
                "step": 3,
                "max_seconds": 12,
                "min_delivered_share": 0.9,
                "stop_p99_ms": 1000,
            },
            "drain": 12,
            "settle_max": 5,
        },
        "quick": {
            "members": 1000,
            "presence_hidden": True,
            "senders": 4,
            "connect_concurrency": 50,
            "quiet": {"min": 0.5, "idle": 0.5, "max": 10},
            "fixed": {"rate": 20, "warmup": 1, "duration": 3},
            "saturation": {
                "rates": [40],
                "step": 1.5,
                "max_seconds": 1.5,
                "min_delivered_share": 0.9,
                "stop_p99_ms": 1000,
            },
            "drain": 3,
            "settle_max": 2,
        },
        "targets": {"p99_ms_max": 100.0, "all_delivered": True, "peak_ratio_min": 1.0},  # issue 19
    },
    {
        "name": "idle",
        "number": 3,
        "title": "Idle connections: 10,000 authenticated Socket.IO connections on one process",
        # profile_seconds: how much of the product's ramp `--profile` records (its handshakes).
        "full": {"connections": 10_000, "concurrency": 100, "hold": 10, "profile_seconds": 20},
        "quick": {"connections": 1_000, "concurrency": 100, "hold": 2, "profile_seconds": 5},
        "targets": {
            "kib_per_connection_max": 40.0,
            "held_min": 10_000,
            "connects_ratio_min": 0.6,
        },  # issue 19
    },
    {
        "name": "history",
        "number": 4,
        "title": "History at depth: newest page and a page 900,000 deep of a 1,000,000-message chat",
        "full": {"messages": 1_000_000, "depth": 900_000, "page": 50, "iterations": 300, "warmup": 30},
        "quick": {"messages": 100_000, "depth": 90_000, "page": 50, "iterations": 100, "warmup": 10},
        "targets": {"p99_ms_max": 10.0},
    },
    {
        "name": "twoproc",
        "number": 5,
        "title": "Two processes sharing Redis: scenario 1 at saturation, every pair across processes",
        "full": {"pairs": 100, "window": 10, "saturation": {"warmup": 5, "duration": 15, "drain": 15}},
        "quick": {"pairs": 100, "window": 10, "saturation": {"warmup": 2, "duration": 6, "drain": 10}},
        # Server CPU per delivered message over two processes against one (scenario 1 of the
        # same run): both processes share core 0, so throughput is not the comparison. Issue 19.
        "targets": {"cpu_ratio_max": 1.2},
    },
    {
        "name": "eio3",
        "number": 6,
        "title": "Direct messages over Socket.IO 2 clients (Engine.IO 3) against Socket.IO 4 clients, one server",
        # The product serves ExpressChat on both transports at /socket.io/ (routed by EIO). The
        # same pairs send at saturation and at a fixed rate, first with socket.io-client 4, then
        # with socket.io-client 2.3.1: server CPU per message of each path, in one run.
        "full": {
            "pairs": 100,
            "window": 10,
            "saturation": {"warmup": 3, "duration": 10, "drain": 10},
            "fixed_rate": 1000,
            "fixed": {"warmup": 2, "duration": 10, "drain": 10},
        },
        "quick": {
            "pairs": 100,
            "window": 10,
            "saturation": {"warmup": 2, "duration": 6, "drain": 10},
            "fixed_rate": 1000,
            "fixed": {"warmup": 2, "duration": 6, "drain": 10},
        },
        "targets": {"cpu_ratio_max": 1.2},
    },
    {
        "name": "czmessenger",
        "number": 7,
        "title": "Direct messages over CZ Messenger (socket.io-client 2.3.1) against ExpressChat direct, one server",
        # One product server mounts ExpressChat (Engine.IO 4, /socket.io/) and CZ Messenger
        # (Engine.IO 3, /v1/conversations/sockets/, first-party realm: the product's tokens). The
        # same seeded pairs send first as ExpressChat clients (scenario 1's path), then as CZ
        # Messenger buyer -> seller (`new_message`, its echo as the ack): server CPU per message
        # of each, in one run.
        "full": {
            "pairs": 100,
            "window": 10,
            "saturation": {"warmup": 3, "duration": 10, "drain": 10},
            "fixed_rate": 1000,
            "fixed": {"warmup": 2, "duration": 10, "drain": 10},
        },
        "quick": {
            "pairs": 100,
            "window": 10,
            "saturation": {"warmup": 2, "duration": 6, "drain": 10},
            "fixed_rate": 1000,
            "fixed": {"warmup": 2, "duration": 6, "drain": 10},
        },
        "targets": {"cpu_ratio_max": 1.3},
    },
]

SCENARIOS.append(
    {
        "name": "storm",
        "number": 8,
        "title": "Reconnect storm: every authenticated connection dropped at once by a server restart",
        # `connections` idle clients plus `pairs` sender/receiver pairs, ramped `concurrency`
        # handshakes at a time; the pairs send `rate` msgs/s in all (open loop) for `before` s,
        # then the server is killed and restarted on the same port. The clients reconnect with
        # socket.io-client's default backoff. Measured from the first disconnect: until every
        # client is greeted again and every receiver has fetched what it missed (at most
        # `storm_timeout` s); sending goes on for `after` s, then every acked message must have
        # reached its receiver within `drain` s.
        "full": {
            "connections": 10_000,
            "pairs": 50,
            "rate": 50,
            "concurrency": 200,
            "ramp_timeout": 180,
            "before": 2,
            "storm_timeout": 150,
            "after": 2,
            "drain": 10,
            "min_budget": 360,  # seconds the run must have left to start it
        },
        "quick": {
            "connections": 1_000,
            "pairs": 20,
            "rate": 20,
            "concurrency": 100,
            "ramp_timeout": 60,
            "before": 1,
            "storm_timeout": 40,
            "after": 1,
            "drain": 5,
            "min_budget": 90,
        },
        "targets": {"storm_seconds_max": 20.0, "lost_max": 0},
    }
)

# The order `make bench` runs them in: the 1,000,000-row insert comes after the message scenarios
# so it cannot slow their inserts. The storm goes last: it needs `min_budget` seconds, more than what `make bench` usually has left
# (then it is skipped, and `bench/run.py --scenario storm` runs it on its own).
RUN_ORDER = ["direct", "twoproc", "idle", "group", "eio3", "czmessenger", "history", "storm"]


def by_name(name: str) -> dict:
    for scenario in SCENARIOS:
        if scenario["name"] == name:
            return scenario
    raise KeyError(name)
