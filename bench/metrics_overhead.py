"""Per-call cost of the metric helpers on the hot paths, against a no-op function with the same
signature (what a call costs with metrics "off").

    .venv/bin/python bench/metrics_overhead.py            # both modes, markdown table

Each mode runs in its own interpreter: prometheus_client picks single- or multi-process storage
when it is first imported (PROMETHEUS_MULTIPROC_DIR).
"""

import json
import os
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 200_000
REPEAT = 5


def _measure() -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from chatproject.ops import metrics

    metrics.register_event_names("expresschat", ["send", "typing"])

    def noop3(protocol: str, transport: str, value) -> None:
        return None

    cases = {
        "no-op call (metrics off)": lambda: noop3("expresschat", "eio4", "send"),
        "event_in (known name)": lambda: metrics.event_in("expresschat", "eio4", "send"),
        "event_in (unknown name -> other)": lambda: metrics.event_in("expresschat", "eio4", "zzz"),
        "delivery (10 recipients)": lambda: metrics.delivery("expresschat", "eio4", 10),
        "send_ack_observed": lambda: metrics.send_ack_observed("expresschat", "eio4", 0.012),
        "messages_stored(1)": lambda: metrics.messages_stored(1),
        "bus_received": lambda: metrics.bus_received(),
    }
    results = {}
    for name, fn in cases.items():
        fn()
        best = min(timeit.repeat(fn, number=N, repeat=REPEAT))
        results[name] = best / N * 1e6
    return results


def main() -> None:
    if os.environ.get("_METRICS_BENCH_CHILD"):
        print(json.dumps(_measure()))
        return
    rows = {}
    with tempfile.TemporaryDirectory() as prom_dir:
        for mode, extra in (
            ("single process", {}),
            ("multi-process", {"PROMETHEUS_MULTIPROC_DIR": prom_dir}),
        ):
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
            env.update(extra, _METRICS_BENCH_CHILD="1")
            out = subprocess.run(
                [sys.executable, __file__], env=env, check=True, capture_output=True, text=True
            )
            rows[mode] = json.loads(out.stdout)
    modes = list(rows)
    print(f"| call | {' | '.join(f'µs/call, {m}' for m in modes)} |")
    print(f"|---|{'---|' * len(modes)}")
    for name in rows[modes[0]]:
        print(f"| `{name}` | {' | '.join(f'{rows[m][name]:.2f}' for m in modes)} |")


if __name__ == "__main__":
    main()
