#!/usr/bin/env python3
"""`make bench`: every scenario against the product and, in the same run, against the floor
(bench/floor_server.py), then bench/results/<date>.json, .md and .png.

    .venv/bin/python bench/run.py                          # everything (what make bench runs)
    .venv/bin/python bench/run.py --scenario direct --quick
    .venv/bin/python bench/run.py --scenario direct --profile   # + py-spy of the product

Servers run pinned to core 0 (taskset -c 0), the Node load generator (bench/loadgen.js) to
core 1. PostgreSQL and Redis are the machine's own services and float over both cores; their
CPU is reported beside the others. Loopback only; every run is bounded in count and time; every
process started here is started in its own process group and killed on exit, whatever happens.
A partial or quick run writes bench/results/<date>-<tag>.* so it never overwrites a full run.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import queue
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import scenarios as scenario_defs  # noqa: E402

PY = sys.executable
NODE = shutil.which("node") or "node"
SERVER_CPUS = os.environ.get("BENCH_SERVER_CPUS", "0")
GENERATOR_CPUS = os.environ.get("BENCH_GENERATOR_CPUS", "1")
HOST = "127.0.0.1"  # loopback only, always
DB_NAME = os.environ.get("BENCH_DB", "bench")
DATABASE_URL = f"postgres://postgres@{HOST}:5432/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", f"redis://{HOST}:6379/0")
SECRET_KEY = "bench-only-" + secrets.token_hex(16)
BUDGET_SECONDS = float(os.environ.get("BENCH_BUDGET_SECONDS", "570"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTED = time.monotonic()

# Product knobs set for the bench, nothing else: DEBUG off (no query log), tokens that outlive
# the run, and the per-socket/per-user rate limits lifted (100 senders x 10 in flight would trip
# the defaults of 20/s per socket; the buckets are still consulted on every event).
PRODUCT_ENV = {
    "DJANGO_SETTINGS_MODULE": "chatproject.settings",
    "DATABASE_URL": DATABASE_URL,
    "SECRET_KEY": SECRET_KEY,
    "DEBUG": "0",
    "REDIS_URL": REDIS_URL,
    "CHANNEL_PREFIX": f"bench{os.getpid()}",
    "LOG_LEVEL": "WARNING",
    "SECURE_COOKIES": "0",
    "JWT_ACCESS_SECONDS": "7200",
    "CHAT_SOCKET_RATE_BURST": "1000000",
    "CHAT_SOCKET_RATE_PER_SECOND": "1000000",
    "CHAT_USER_RATE_BURST": "1000000",
    "CHAT_USER_RATE_PER_SECOND": "1000000",
    # Every bench client comes from 127.0.0.1: the per-address cap (1,000) would refuse the
    # idle and storm scenarios' clients past the first thousand.
    "CHAT_SOCKET_MAX_PER_ADDRESS": "1000000",
}
FLOOR_POOL_SIZE = os.environ.get("BENCH_FLOOR_POOL_SIZE", "10")

_processes: list["Proc"] = []


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def remaining() -> float:
    return BUDGET_SECONDS - (time.monotonic() - STARTED)


# --- processes ------------------------------------------------------------------------------


class Proc:
    """A child pinned with taskset, in its own process group, logged to a file."""

    def __init__(
        self, name: str, cmd: list[str], *, env: dict, cpus: str, workdir: Path, pipes: bool = False
    ):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            ["taskset", "-c", cpus, *cmd],  # taskset execs: the pid is the command's own
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else self._log,
            stderr=self._log,
            start_new_session=True,
        )
        _processes.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        if not self._log.closed:  # stop() closes it; the tail is still on disk
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if not self._log.closed:
            self._log.close()
        if self in _processes:
            _processes.remove(self)


def stop_all() -> None:
    for proc in list(_processes):
        proc.stop(timeout=5)


def _on_signal(signum, _frame) -> None:
    stop_all()
    sys.exit(128 + signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(proc: Proc, port: int, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log_tail()}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not listen on {port}:\n{proc.log_tail()}")


def env_with(extra: dict) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(extra)
    return env


def _make_run_flags() -> list[str]:
    """The event loop, HTTP, WebSocket and listen backlog flags of the Makefile's `run` recipe, so the bench runs
    the product as `make run` does (and follows it when it changes)."""
    flags = {"--loop": "uvloop", "--http": "httptools", "--ws": "websockets"}
    try:
        recipe = (ROOT / "Makefile").read_text().replace("\\\n", " ")
        line = next(x for x in recipe.splitlines() if "uvicorn chatproject.asgi:application" in x)
        for name, value in re.findall(
            r"(--loop|--http|--ws-per-message-deflate|--ws|--backlog)[ =](\S+)", line
        ):
            flags[name] = value
    except (OSError, StopIteration):
        pass
    return [item for pair in flags.items() for item in pair]


# The product runs with `make run`'s flags; the floor gets the same (but uvicorn's own websocket
# protocol: FLOOR_UVICORN below). BENCH_UVICORN_ARGS adds flags
# to both (e.g. "--ws-per-message-deflate false") for experiments.
UVICORN = [
    "--host",
    HOST,
    "--no-access-log",
    *_make_run_flags(),
    *os.environ.get("BENCH_UVICORN_ARGS", "").split(),
]


def start_product(workdir: Path, name: str = "product", port: int | None = None) -> tuple[Proc, str]:
    port = port or free_port()
    proc = Proc(
        name,
        [PY, "-m", "uvicorn", "chatproject.asgi:application", "--port", str(port), *UVICORN],
        env=env_with(PRODUCT_ENV),
        cpus=SERVER_CPUS,
        workdir=workdir,
    )
    wait_port(proc, port)
    return proc, f"http://{HOST}:{port}"


# The floor is bare python-socketio on uvicorn's own websocket protocol: where `make run` names the
# product's subclass of it (gateway.transports.uvicorn_ws, issue 19), the floor keeps uvicorn's.
FLOOR_UVICORN = ["websockets-sansio" if arg.startswith("gateway.") else arg for arg in UVICORN]


def start_floor(workdir: Path, name: str = "floor", redis: bool = False) -> tuple[Proc, str]:
    port = free_port()
    extra = {"FLOOR_DATABASE_URL": DATABASE_URL, "FLOOR_POOL_SIZE": FLOOR_POOL_SIZE}
    if redis:
        extra["FLOOR_REDIS_URL"] = REDIS_URL
    proc = Proc(
        name,
        [PY, "-m", "uvicorn", "bench.floor_server:app", "--port", str(port), *FLOOR_UVICORN],
        env=env_with(extra),
        cpus=SERVER_CPUS,
        workdir=workdir,
    )
    wait_port(proc, port)
    return proc, f"http://{HOST}:{port}"


def run_script(args: list[str], *, workdir: Path, name: str, timeout: float, cpus: str = SERVER_CPUS) -> None:
    proc = Proc(name, [PY, *args], env=env_with(PRODUCT_ENV), cpus=cpus, workdir=workdir)
    try:
        code = proc.popen.wait(timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{name} took over {timeout:.0f}s") from exc
    finally:
        proc.stop()
    if code != 0:
        raise RuntimeError(f"{name} failed ({code}):\n{proc.log_tail()}")


# --- measuring ------------------------------------------------------------------------------


def _proc_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


_REDIS_PORT = f":{REDIS_URL.rsplit(':', 1)[1].split('/')[0]}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _service_cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (service, CPU seconds) of PostgreSQL and Redis processes."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("postgres"):
            found[int(entry)] = ("postgres", _proc_cpu_seconds(int(entry)))
        elif comm.startswith("redis-server") and _REDIS_PORT in _cmdline(int(entry)):
            found[int(entry)] = ("redis", _proc_cpu_seconds(int(entry)))
    return found


def _core_times() -> dict[str, tuple[int, int]]:
    cores = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                values = [int(v) for v in values]
                idle = values[3] + values[4]
                cores[name] = (sum(values) - idle, sum(values))
    return cores


def _disk_sample() -> dict[str, float]:
    """The kernel's dirty page cache (MiB) and what the machine's disks wrote so far (MiB, whole
    devices of /sys/block, loop and RAM disks left out)."""
    dirty = 0.0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Dirty:"):
                dirty = int(line.split()[1]) / 1024
    written = 0
    for device in Path("/sys/block").iterdir():
        if device.name.startswith(("loop", "ram", "zram")):
            continue
        try:
            written += int((device / "stat").read_text().split()[6])  # sectors of 512 bytes
        except (OSError, IndexError, ValueError):
            continue
    return {"dirty_mib": dirty, "written_mib": written * 512 / 2**20}


def disk_share(before: dict, after: dict) -> dict:
    """The disk during a window: what was dirty at its start, what the disks wrote during it. A
    write-back of tens of MiB in a window puts PostgreSQL's WAL flushes behind it: the commits
    of that moment wait (bench/README.md, session 9)."""
    wall = after["t"] - before["t"]
    written = after["disk"]["written_mib"] - before["disk"]["written_mib"]
    return {
        "dirty_mib_at_start": round(before["disk"]["dirty_mib"], 1),
        "dirty_mib_at_end": round(after["disk"]["dirty_mib"], 1),
        "written_mib": round(written, 1),
        "written_mib_per_s": round(written / wall, 2),
    }


def cpu_sample(server_pids: list[int], generator_pid: int | None) -> dict:
    return {
        "disk": _disk_sample(),
        "t": time.monotonic(),
        "server": sum(_proc_cpu_seconds(p) for p in server_pids),
        "generator": _proc_cpu_seconds(generator_pid) if generator_pid else 0.0,
        "services": _service_cpu_seconds(),
        "cores": _core_times(),
    }


def cpu_share(before: dict, after: dict) -> dict:
    """CPU used between two samples, as a share of one core (1.0 = one core busy)."""
    wall = after["t"] - before["t"]
    share = {k: round((after[k] - before[k]) / wall, 3) for k in ("server", "generator")}
    # Per process, so a process that starts or exits in between does not count as negative.
    for service in ("postgres", "redis"):
        used = sum(
            cpu - before["services"].get(pid, (name, 0.0))[1]
            for pid, (name, cpu) in after["services"].items()
            if name == service
        )
        share[service] = round(used / wall, 3)
    for core, (busy, total) in after["cores"].items():
        busy0, total0 = before["cores"][core]
        share[f"{core}_busy"] = round((busy - busy0) / max(total - total0, 1), 3)
    # Whatever else ran on the machine meanwhile (kernel network work, other users' processes):
    # a large value means the run was disturbed.
    busy_cores = sum(v for k, v in share.items() if k.endswith("_busy"))
    share["other"] = round(
        max(busy_cores - sum(share[k] for k in ("server", "generator", "postgres", "redis")), 0), 3
    )
    return share


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of a process's main thread (the event loop) and of its other threads (the
    database thread, executors) together."""
    threads: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        name = "loop" if task.name == str(pid) else "threads"
        fields = raw.rsplit(")", 1)[1].split()
        threads[name] = threads.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return threads


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Generator:
    """bench/loadgen.js on the generator core; its stdout lines are JSON events."""

    def __init__(self, name: str, config: dict, workdir: Path):
        path = workdir / f"{name}.json"
        path.write_text(json.dumps(config))
        self.proc = Proc(
            name,
            [NODE, str(BENCH / "loadgen.js"), str(path)],
            env=env_with({}),
            cpus=GENERATOR_CPUS,
            workdir=workdir,
            pipes=True,
        )
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.popen.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                continue
        self.events.put(None)

    def expect(self, event: str | tuple[str, ...], timeout: float) -> dict:
        """The next event named `event` (or any of the names in a tuple); others are skipped."""
        names = (event,) if isinstance(event, str) else event
        deadline = time.monotonic() + min(timeout, max(remaining(), 5))
        while True:
            try:
                message = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise RuntimeError(f"{self.proc.name}: no {'/'.join(names)} within {timeout:.0f}s") from None
            if message is None:
                raise RuntimeError(
                    f"{self.proc.name} exited before {'/'.join(names)}:\n{self.proc.log_tail()}"
                )
            if message.get("error"):
                raise RuntimeError(f"{self.proc.name}: {message['error']}\n{self.proc.log_tail()}")
            if message.get("event") in names:
                return message

    def tell(self, line: str) -> None:
        self.proc.popen.stdin.write(f"{line}\n".encode())
        self.proc.popen.stdin.flush()

    def stop(self) -> None:
        self.proc.stop(timeout=5)


class Profiler:
    """py-spy on a server for the measure window: collapsed stacks, one thread per root."""

    def __init__(self, pid: int, seconds: float, out: Path, workdir: Path):
        self.out = out
        spy = Path(PY).parent / "py-spy"
        self.proc = Proc(
            f"py-spy-{pid}",
            [
                str(spy),
                "record",
                "-p",
                str(pid),
                "-d",
                str(int(seconds)),
                "-r",
                "250",
                "--threads",
                "-f",
                "raw",
                "-o",
                str(out),
                "--nonblocking",
                # BENCH_PROFILE_GIL=1: only the thread holding the GIL is sampled, so the shares
                # are of Python CPU, not of threads waiting for the GIL (or for a syscall).
                *(["--gil"] if os.environ.get("BENCH_PROFILE_GIL") == "1" else []),
            ],
            env=env_with({}),
            cpus=GENERATOR_CPUS,
            workdir=workdir,
        )

    def finish(self) -> dict:
        try:
            self.proc.popen.wait(30)
        except subprocess.TimeoutExpired:
            pass
        self.proc.stop()
        return summarize_profile(self.out) if self.out.exists() else {"error": self.proc.log_tail()}


_PRODUCT_FRAME = re.compile(r"\((messaging|accounts|groups|chatproject)/")


def summarize_profile(path: Path, top: int = 25) -> dict:
    """Self and inclusive sample shares per frame, and per thread, from py-spy's raw output."""
    total, threads, own, inclusive, product = 0, {}, {}, {}, {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] = threads.get(frames[0], 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames[1:]):
            inclusive[frame] = inclusive.get(frame, 0) + n
            if _PRODUCT_FRAME.search(frame):
                product[frame] = product.get(frame, 0) + n

    def ranked(table: dict) -> list:
        return [[f, round(100 * n / total, 1)] for f, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]]

    return {
        "samples": total,
        "threads": ranked(threads),
        "self": ranked(own),
        "inclusive": ranked(inclusive),
        "product_inclusive": ranked(product),
    }


# --- scenario 1 and 5: direct messages -----------------------------------------------------


def pair_configs(
    seed: dict, protocol: str, sender_urls: list[str], receiver_urls: list[str], count: int
) -> list:
    pairs = []
    for i, pair in enumerate(seed["pairs"][:count]):
        if protocol == "product":
            sender_auth, receiver_auth = {"token": pair["sender_token"]}, {"token": pair["receiver_token"]}
        else:
            sender_auth, receiver_auth = (
                {"pair": pair["chat"], "role": "send"},
                {"pair": pair["chat"], "role": "recv"},
            )
        pairs.append(
            {
                "chat": pair["chat"],
                "senderUrl": sender_urls[i % len(sender_urls)],
                "receiverUrl": receiver_urls[i % len(receiver_urls)],
                "senderAuth": sender_auth,
                "receiverAuth": receiver_auth,
            }
        )
    return pairs


def direct_load(
    label: str,
    protocol: str,
    pairs: list,
    *,
    window: int,
    rate: int | None,
    phases: dict,
    server_pids: list[int],
    workdir: Path,
    profile: Path | None = None,
    client: str = "v4",
    wire: str | None = None,
) -> dict:
    config = {
        "mode": "direct",
        "protocol": protocol,
        "client": client,
        "wire": wire,
        "czPath": CZ_MOUNT["path"].rstrip("/"),
        "czNamespace": CZ_MOUNT["namespace"],
        "label": label,
        "runId": f"{label}-{secrets.token_hex(4)}",
        "pairs": pairs,
        "window": window,
        "rate": rate,
        "maxInflight": 50,
        "warmup": phases["warmup"],
        "duration": phases["duration"],
        "drain": phases["drain"],
        "settle": 3,
    }
    gen = Generator(label.replace(" ", "-").replace("/", ""), config, workdir)
    try:
        gen.expect("measure-start", timeout=90 + phases["warmup"])
        profiler = Profiler(server_pids[0], phases["duration"], profile, workdir) if profile else None
        before = cpu_sample(server_pids, gen.proc.pid)
        threads_before = [thread_cpu_seconds(pid) for pid in server_pids]
        gen.expect("measure-end", timeout=phases["duration"] + 30)
        after = cpu_sample(server_pids, gen.proc.pid)
        threads_after = [thread_cpu_seconds(pid) for pid in server_pids]
        result = gen.expect("result", timeout=phases["drain"] + 30)
    finally:
        gen.stop()
    result["cpu"] = cpu_share(before, after)
    result["disk"] = disk_share(before, after)
    if result.get("delivered_per_s"):
        # What one delivered message cost the server: its share of a core over the rate.
        result["server_cpu_us_per_message"] = round(
            result["cpu"]["server"] * 1e6 / result["delivered_per_s"], 1
        )
        # The same split into the event loops (main threads) and the other threads (the database
        # thread, executors), so a change can be placed on one side or the other.
        wall = after["t"] - before["t"]
        delivered = result["delivered_per_s"] * wall
        result["server_cpu_us_per_message_split"] = {
            side: round(
                sum(
                    a.get(side, 0.0) - b.get(side, 0.0)
                    for a, b in zip(threads_after, threads_before, strict=True)
                )
                * 1e6
                / delivered,
                1,
            )
            for side in ("loop", "threads")
        }
    if profiler:
        result["profile"] = profiler.finish()
        result["profile"]["raw"] = str(profile.relative_to(ROOT))
    totals = result["totals"]
    lat = result["latency_ms"] or {}
    say(
        f"  {label}: {result['delivered_per_s']:.0f} msg/s delivered, latency p50 {lat.get('p50', '-')} ms "
        f"p99 {lat.get('p99', '-')} ms; lost {totals['lost']} dup {totals['duplicates']} "
        f"order {totals['outOfOrder']} seq-gaps {totals['seqGaps']} ack-errors {totals['ackErrors']} "
        f"skipped {totals['skipped']}; CPU server {result['cpu']['server']:.0%} generator "
        f"{result['cpu']['generator']:.0%} postgres {result['cpu']['postgres']:.0%}; "
        f"server CPU per message {result.get('server_cpu_us_per_message', '-')} µs "
        f"{result.get('server_cpu_us_per_message_split', '')}"
    )
    tail = result.get("tail")
    if tail and tail["messages"]:
        worst = ", ".join(f"{t['at_s']} s: {t['count']} (max {t['max_ms']} ms)" for t in tail["worst"][:5])
        say(
            f"    slower than {tail['over_ms']} ms: {tail['messages']} in {tail['slots']} slots of 100 ms; {worst}"
        )
    disk = result["disk"]
    say(
        f"    disk: {disk['dirty_mib_at_start']} MiB dirty at the start, {disk['dirty_mib_at_end']} at the end, "
        f"{disk['written_mib']} MiB written ({disk['written_mib_per_s']} MiB/s)"
    )
    return result


def scenario_direct(params: dict, seed: dict, workdir: Path, profile_dir: Path | None) -> dict:
    out = {"pairs": params["pairs"], "window": params["window"], "fixed_rate": params["fixed_rate"]}
    cost = workdir / "service-cost.json"
    run_script(
        [
            str(BENCH / "service_cost.py"),
            str(workdir / "seed-direct.json"),
            str(params["service_calls"]),
            "50",
            str(cost),
        ],
        workdir=workdir,
        name="service-cost",
        timeout=120,
    )
    out["service_cost"] = json.loads(cost.read_text())
    c = out["service_cost"]
    say(
        f"  message_send in-process: {c['wall_ms']['p50']} ms wall p50, {c['cpu_ms_mean']} ms CPU, "
        f"{c['queries_per_send']} SQL statements: at most {c['max_sends_per_s_one_thread']:.0f} sends/s on one thread"
        + (
            f"; batched by {c['batched']['batch_size']}: {c['batched']['wall_ms_per_message']} ms wall, "
            f"{c['batched']['cpu_ms_per_message']} ms CPU per message, at most "
            f"{c['batched']['max_sends_per_s_one_thread']:.0f}/s"
            if c.get("batched")
            else ""
        )
        + (
            f"; one send from each of {c['batched_spread']['batch_size']} pairs a batch: "
            f"{c['batched_spread']['cpu_us_per_message_median']} µs CPU per message"
            if c.get("batched_spread")
            else ""
        )
    )
    for protocol in ("product", "floor"):
        server, url = start_product(workdir) if protocol == "product" else start_floor(workdir)
        try:
            pairs = pair_configs(seed, protocol, [url], [url], params["pairs"])
            profile = (
                Path(f"{profile_dir}-direct-product.txt") if profile_dir and protocol == "product" else None
            )
            saturation = direct_load(
                f"{protocol} saturation",
                protocol,
                pairs,
                window=params["window"],
                rate=None,
                phases=params["saturation"],
                server_pids=[server.pid],
                workdir=workdir,
                profile=profile,
            )
            fixed = direct_load(
                f"{protocol} {params['fixed_rate']}/s",
                protocol,
                pairs,
                window=params["window"],
                rate=params["fixed_rate"],
                phases=params["fixed"],
                server_pids=[server.pid],
                workdir=workdir,
                profile=profile.with_name(profile.stem + "-fixed.txt") if profile else None,
            )
            out[protocol] = {"saturation": saturation, "fixed": fixed, "server_rss_kib": rss_kib(server.pid)}
        finally:
            server.stop()
    out["ratio_throughput"] = _ratio(
        out["product"]["saturation"]["delivered_per_s"], out["floor"]["saturation"]["delivered_per_s"]
    )
    out["ratio_p99_fixed"] = _ratio(
        (out["product"]["fixed"]["latency_ms"] or {}).get("p99"),
        (out["floor"]["fixed"]["latency_ms"] or {}).get("p99"),
    )
    return out


def scenario_twoproc(params: dict, seed: dict, workdir: Path, profile_dir: Path | None) -> dict:
    """Every pair's sender on one process and its receiver on the other: all traffic crosses the bus."""
    out = {"pairs": params["pairs"], "window": params["window"], "processes": 2}
    for protocol in ("product", "floor"):
        servers = []
        try:
            for i in range(2):
                servers.append(
                    start_product(workdir, f"product-{i}")
                    if protocol == "product"
                    else start_floor(workdir, f"floor-{i}", redis=True)
                )
            urls = [url for _proc, url in servers]
            pairs = pair_configs(seed, protocol, urls, urls[::-1], params["pairs"])
            profile = (
                Path(f"{profile_dir}-twoproc-product.txt") if profile_dir and protocol == "product" else None
            )
            out[protocol] = direct_load(
                f"{protocol} 2 processes saturation",
                protocol,
                pairs,
                window=params["window"],
                rate=None,
                phases=params["saturation"],
                server_pids=[p.pid for p, _url in servers],
                workdir=workdir,
                profile=profile,
            )
        finally:
            for proc, _url in servers:
                proc.stop()
    out["ratio_throughput"] = _ratio(out["product"]["delivered_per_s"], out["floor"]["delivered_per_s"])
    return out


# --- scenario 2: group fan-out --------------------------------------------------------------


def group_members(seed: dict, protocol: str, url: str, count: int) -> list:
    """Every member of the seeded group as the generator connects it: the product with the
    member's token, the floor with the group and member ids (no auth)."""
    members = []
    for user_id, token in list(zip(seed["members"], seed["tokens"], strict=True))[:count]:
        auth = {"token": token} if protocol == "product" else {"group": seed["group"], "user": user_id}
        members.append({"url": url, "auth": auth})
    return members


def group_load(
    label: str,
    protocol: str,
    params: dict,
    seed: dict,
    server: Proc,
    url: str,
    workdir: Path,
    profile: Path | None = None,
) -> dict:
    fixed, sat = params["fixed"], params["saturation"]
    cap = fixed["rate"] * (fixed["warmup"] + fixed["duration"] + 2) + sum(
        r * (sat["step"] + 1) for r in sat["rates"]
    )
    config = {
        "mode": "group",
        "protocol": protocol,
        "label": label,
        "runId": f"{label.replace(' ', '-')}-{secrets.token_hex(4)}",
        "groupId": seed["group"],
        "startSeq": seed["last_seq"] if protocol == "product" else 0,
        "members": group_members(seed, protocol, url, params["members"]),
        "senders": list(range(params["senders"])),
        "connectConcurrency": params["connect_concurrency"],
        "quiet": params["quiet"],
        "fixed": fixed,
        "saturation": {
            "rates": sat["rates"],
            "step": sat["step"],
            "maxSeconds": sat["max_seconds"],
            "minDeliveredShare": sat["min_delivered_share"],
            "stopP99Ms": sat["stop_p99_ms"],
        },
        "maxInflight": 50,
        "maxMessages": int(cap * 1.1) + 100,
        "drain": params["drain"],
        "settle": 2,
        "settleMax": params["settle_max"],
    }
    gen = Generator(label.replace(" ", "-"), config, workdir)
    profilers = []
    steps_cpu = []
    try:
        connected = gen.expect("connected", timeout=180)
        settling0 = cpu_sample([server.pid], gen.proc.pid)
        quiet = gen.expect("quiet", timeout=params["quiet"]["max"] + 30)
        settling = cpu_share(settling0, cpu_sample([server.pid], gen.proc.pid))
        rss_connected = rss_kib(server.pid)
        gen.expect("measure-start", timeout=fixed["warmup"] + 30)
        if profile:
            profilers.append(("fixed", profile, Profiler(server.pid, fixed["duration"], profile, workdir)))
        before = cpu_sample([server.pid], gen.proc.pid)
        gen.expect("measure-end", timeout=fixed["duration"] + 30)
        fixed_cpu = cpu_share(before, cpu_sample([server.pid], gen.proc.pid))
        gen.expect("saturation-start", timeout=30)
        if profile:
            sat_profile = profile.with_name(profile.stem + "-saturation.txt")
            profilers.append(
                ("saturation", sat_profile, Profiler(server.pid, sat["max_seconds"], sat_profile, workdir))
            )
        while True:
            message = gen.expect(("step-start", "saturation-end"), timeout=sat["step"] + 30)
            if message["event"] == "saturation-end":
                break
            before = cpu_sample([server.pid], gen.proc.pid)
            gen.expect("step-end", timeout=sat["step"] + 30)
            steps_cpu.append(cpu_share(before, cpu_sample([server.pid], gen.proc.pid)))
        result = gen.expect("result", timeout=params["drain"] + params["settle_max"] + 60)
    finally:
        gen.stop()
    result["fixed"]["cpu"] = fixed_cpu
    for step, cpu in zip(result["saturation"]["steps"], steps_cpu, strict=False):
        step["cpu"] = cpu
    # Server CPU per delivery: what one delivery costs, whatever share of core 0 the server got
    # (the machine is shared: deliveries/s alone moves with other sessions' load).
    for window in [result["fixed"], *result["saturation"]["steps"]]:
        if window.get("cpu") and window["delivered_per_s"]:
            window["server_cpu_us_per_delivery"] = round(
                1e6 * window["cpu"]["server"] / window["delivered_per_s"], 1
            )
    peak = max(result["saturation"]["steps"], key=lambda st: st["delivered_per_s"], default=None)
    result["saturation"]["peak_server_cpu_us_per_delivery"] = (peak or {}).get("server_cpu_us_per_delivery")
    result["cpu_settling"] = settling
    result["server_rss_kib_connected"] = rss_connected
    result["connect_seconds_run_py"] = connected["seconds"]
    result["quiet"] = quiet
    for name, path, profiler in profilers:
        summary = profiler.finish()
        summary["raw"] = str(path.relative_to(ROOT))
        result[f"profile_{name}"] = summary
    if "profile_fixed" in result:
        result["fixed"]["profile"] = result["profile_fixed"]
    f, t_ = result["fixed"], result["totals"]
    lat = f["latency_ms"] or {}
    steps = ", ".join(
        f"{st['offered_rate']}/s→{st['delivered_per_s']:,.0f} p99 {(st['latency_ms'] or {}).get('p99', '-')}"
        for st in result["saturation"]["steps"]
    )
    say(
        f"  {label}: {result['members']} members connected in {result['connect_seconds']:.1f}s "
        f"({result['connects_per_s']:.0f}/s), quiet after {result['quiet_waited_seconds']:.1f}s, other events "
        f"{sum(result['other_events_connecting'].values()):,}; fixed {f['offered_rate']} msg/s: "
        f"{f['delivered_per_s']:,.0f} deliveries/s of {f['offered_deliveries_per_s']:,}, p50 {lat.get('p50', '-')} ms "
        f"p99 {lat.get('p99', '-')} ms, CPU server {f['cpu']['server']:.0%} ({f.get('server_cpu_us_per_delivery', '-')} µs "
        f"per delivery) generator {f['cpu']['generator']:.0%}; "
        f"saturation [{steps}] stop: {result['saturation']['stop_reason']}; lost {t_['lost']} pending "
        f"{t_['pendingAtEnd']} dup {t_['duplicates']} order {t_['outOfOrder']} seq-gaps {t_['seqGaps']} "
        f"ack-errors {t_['ackErrors']} unacked {t_['unacked']} skipped {t_['skipped']}"
    )
    return result


def scenario_group(params: dict, seed: dict, workdir: Path, profile_dir: Path | None) -> dict:
    out = {
        "members": params["members"],
        "senders": params["senders"],
        "fixed_rate": params["fixed"]["rate"],
        "recipients_per_message": params["members"] - 1,
        "start_seq": seed["last_seq"],
        "presence_hidden": seed["presence_hidden"],
        "seed_seconds": seed["seconds"],
    }
    for protocol in ("product", "floor"):
        server, url = start_product(workdir) if protocol == "product" else start_floor(workdir)
        try:
            # --profile profiles the product; BENCH_PROFILE_FLOOR=1 the floor as well (to compare).
            profiled = protocol == "product" or os.environ.get("BENCH_PROFILE_FLOOR") == "1"
            profile = Path(f"{profile_dir}-group-{protocol}.txt") if profile_dir and profiled else None
            out[protocol] = group_load(
                f"{protocol} group", protocol, params, seed, server, url, workdir, profile
            )
            out[protocol]["server_rss_kib"] = rss_kib(server.pid)
        finally:
            server.stop()
    p, f = out["product"], out["floor"]
    out["ratio_p99_fixed"] = _ratio(
        (p["fixed"]["latency_ms"] or {}).get("p99"), (f["fixed"]["latency_ms"] or {}).get("p99")
    )
    out["ratio_peak"] = _ratio(
        p["saturation"]["peak_delivered_per_s"], f["saturation"]["peak_delivered_per_s"]
    )
    return out


# --- scenario 3: idle connections -----------------------------------------------------------


def idle_load(
    label: str,
    protocol: str,
    auths: list,
    params: dict,
    server: Proc,
    url: str,
    workdir: Path,
    profile: Path | None = None,
) -> dict:
    config = {
        "mode": "idle",
        "protocol": protocol,
        "label": label,
        "urls": [url],
        "auths": auths,
        "concurrency": params["concurrency"],
        "warm": 10,
    }
    gen = Generator(label.replace(" ", "-"), config, workdir)
    try:
        warm = gen.expect("warm", timeout=60)
        time.sleep(1)
        rss_before = rss_kib(server.pid)
        before = cpu_sample([server.pid], gen.proc.pid)
        threads_before = thread_cpu_seconds(server.pid)
        # py-spy over the first part of the ramp (the handshakes), not past its expected end.
        profiler = Profiler(server.pid, params["profile_seconds"], profile, workdir) if profile else None
        gen.tell("go")
        held = gen.expect("held", timeout=240)
        after = cpu_sample([server.pid], gen.proc.pid)
        threads_after = thread_cpu_seconds(server.pid)
        if profiler is not None:
            result_profile = profiler.finish()
        time.sleep(params["hold"])
        rss_after = rss_kib(server.pid)
        gen.tell("close")
        result = gen.expect("result", timeout=60)
    finally:
        gen.stop()
    added = held["connected"] - warm["connected"]
    cpu = cpu_share(before, after)
    result.update(
        {
            # Server CPU per handshake (connect + greeting), in ms: what the ramp cost the server,
            # whatever else took the core meanwhile (steadier than connects/s on a shared machine).
            "server_cpu_ms_per_connect": round(
                1000 * (after["server"] - before["server"]) / max(added, 1), 3
            ),
            "server_rss_kib_before": rss_before,
            "server_rss_kib_held": rss_after,
            "kib_per_connection": round((rss_after - rss_before) / max(added, 1), 2),
            "hold_seconds": params["hold"],
            "cpu_connecting": cpu,
            # The same per thread (ms per handshake): which thread a handshake's CPU goes to.
            "server_thread_cpu_ms_per_connect": {
                name: round(1000 * (spent - threads_before.get(name, 0.0)) / max(added, 1), 3)
                for name, spent in sorted(threads_after.items())
                if spent - threads_before.get(name, 0.0) > 0
            },
        }
    )
    if profile:
        result["profile"] = result_profile
    say(
        f"  {label}: {result['connected']} connected ({result['failed']} failed), "
        f"{result['connects_per_s']:.0f} connects/s ({result['server_cpu_ms_per_connect']} ms server CPU "
        f"each: {result['server_thread_cpu_ms_per_connect']}), {result['kib_per_connection']} KiB/connection "
        f"(RSS {rss_before // 1024} -> {rss_after // 1024} MiB), {result['held_at_end']} held after "
        f"{params['hold']}s; CPU server {result['cpu_connecting']['server']:.0%} generator "
        f"{result['cpu_connecting']['generator']:.0%}"
    )
    return result


def scenario_idle(params: dict, seed: dict, workdir: Path, profile_dir: Path | None) -> dict:
    out = {"connections": params["connections"]}
    for protocol in ("product", "floor"):
        server, url = start_product(workdir) if protocol == "product" else start_floor(workdir)
        try:
            if protocol == "product":
                auths = [{"token": t} for t in seed["tokens"][: params["connections"]]]
            else:
                auths = [{"pair": f"idle{i}", "role": "recv"} for i in range(params["connections"])]
            profile = (
                Path(f"{profile_dir}-idle-product.txt") if profile_dir and protocol == "product" else None
            )
            out[protocol] = idle_load(
                f"{protocol} idle", protocol, auths, params, server, url, workdir, profile=profile
            )
        finally:
            server.stop()
    out["ratio_kib"] = _ratio(out["product"]["kib_per_connection"], out["floor"]["kib_per_connection"])
    out["ratio_connects"] = _ratio(out["product"]["connects_per_s"], out["floor"]["connects_per_s"])
    out["ratio_cpu_per_connect"] = _ratio(
        out["product"]["server_cpu_ms_per_connect"], out["floor"]["server_cpu_ms_per_connect"]
    )
    return out


# --- scenario 8: reconnect storm --------------------------------------------------------------


def scenario_storm(params: dict, seed: dict, workdir: Path, profile_dir: Path | None) -> dict:
    """Every connection dropped at once: the product is killed (SIGKILL, what a crash or an
    impatient deploy does) and a new process started on the same port; the clients reconnect
    with socket.io-client's default backoff while the pairs keep sending."""
    port = free_port()
    server, url = start_product(workdir, port=port)
    pairs = pair_configs(seed["direct"], "product", [url], [url], params["pairs"])
    config = {
        "mode": "storm",
        "protocol": "product",
        "urls": [url],
        "auths": [{"token": t} for t in seed["idle"]["tokens"][: params["connections"]]],
        "pairs": pairs,
        "rate": params["rate"],
        "concurrency": params["concurrency"],
        "stormTimeout": params["storm_timeout"],
        "after": params["after"],
        "drain": params["drain"],
        "lateMax": params["late_max"],
        "settle": params["settle"],
        "runId": f"storm{os.getpid()}",
    }
    gen = Generator("storm", config, workdir)
    restarted = None
    try:
        ready = gen.expect("ready", timeout=params["ramp_timeout"])
        say(
            f"  {ready['connected']:,} clients greeted in {ready['ramp_seconds']}s; sending for {params['before']}s"
        )
        time.sleep(params["before"])
        killed = time.monotonic()
        os.killpg(server.pid, signal.SIGKILL)  # every connection drops at once
        server.popen.wait(10)
        server.stop()
        restarted, _ = start_product(workdir, name="product-restarted", port=port)
        restart_seconds = round(time.monotonic() - killed, 2)  # until the new process listens
        before = cpu_sample([restarted.pid], gen.proc.pid)
        recovered = gen.expect("recovered", timeout=params["storm_timeout"] + 10)
        after = cpu_sample([restarted.pid], gen.proc.pid)
        result = gen.expect("result", timeout=params["after"] + params["drain"] + params["late_max"] + 60)
    finally:
        gen.stop()
        if restarted is not None:
            restarted.stop()
    cpu = cpu_share(before, after)
    reconnections = max(result["recovered"], 1)
    result.update(
        {
            "outcome": recovered["outcome"],
            "restart_seconds": restart_seconds,
            "cpu_storm": cpu,
            # The new process's CPU from its start (imports included) until the last client synced.
            "server_cpu_ms_per_reconnect": round(
                1000 * (after["server"] - before["server"]) / reconnections, 3
            ),
        }
    )
    m = result["messages"]
    say(
        f"  storm: {result['recovered']:,} of {result['connected']:,} clients back, greeted and synced "
        f"{result['storm_seconds']}s after the drop ({result['outcome']}; p50/p99 "
        f"{(result['recovered_ms'] or {}).get('p50')}/{(result['recovered_ms'] or {}).get('p99')} ms; the new "
        f"process listened after {restart_seconds}s); "
        f"{result['server_cpu_ms_per_reconnect']} ms server CPU per reconnect; messages sent "
        f"{m['sent']} ({m['sent_during_storm']} during the storm), acked {m['acked']}, lost {m['lost']} "
        f"({m.get('lost_found_stored', 0)} of them found stored by a last fetch), late {m.get('late', 0)} "
        f"(waited {m.get('late_wait_seconds', 0)}s past the drain), "
        f"unacked {m['unacked']}, ack errors {m['ack_errors']}, {m['received_by_sync']} received by sync, "
        f"{m.get('undelivered_receiver_not_back', 0)} not delivered to receivers not back; "
        f"{result.get('never_back', 0)} clients never back, {result['connect_errors']} connect errors"
    )
    return result


# --- scenario 4: history --------------------------------------------------------------------


def scenario_history(params: dict, seed: dict, workdir: Path, profile_dir: Path | None) -> dict:
    out_json, plans = workdir / "history.json", workdir / "history-plans.txt"
    run_script(
        [
            str(BENCH / "history.py"),
            *(str(params[k]) for k in ("messages", "depth", "page", "iterations", "warmup")),
            str(out_json),
            str(plans),
        ],
        workdir=workdir,
        name="history",
        timeout=max(min(remaining() - 10, 300), 30),
    )
    result = json.loads(out_json.read_text())
    result["plans_text"] = plans.read_text()
    result["ratio_p99_newest"] = _ratio(result["newest"]["p99"], result["floor_newest"]["p99"])
    result["ratio_p99_deep"] = _ratio(result["deep"]["p99"], result["floor_deep"]["p99"])
    say(
        f"  history of {result['messages']:,} (filled in {result['fill_seconds']}s): newest p50 "
        f"{result['newest']['p50']} ms p99 {result['newest']['p99']} ms; {result['depth']:,} deep p50 "
        f"{result['deep']['p50']} ms p99 {result['deep']['p99']} ms; floor SQL p99 "
        f"{result['floor_newest']['p99']}/{result['floor_deep']['p99']} ms; index used: "
        f"{result['message_queries_use_index']}"
    )
    return result


# --- report ---------------------------------------------------------------------------------


def _ratio(a, b):
    return round(a / b, 2) if a and b else None


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:,.1f}" if value >= 100 else f"{value:,.2f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def _met(ok) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def _tail_and_disk(window: dict) -> str:
    """How many deliveries of a window were slower than the tail's mark, and what the disks wrote
    meanwhile: a tail that comes with a large write-back is the kernel's, not the server's."""
    tail, disk = window.get("tail"), window.get("disk")
    if not tail or not disk:
        return "-"
    return f"{tail['messages']:,}; {disk['written_mib']:,.0f}"


def _integrity(run: dict) -> str:
    t = run["totals"]
    text = (
        f"lost {t['lost']}, dup {t['duplicates']}, out-of-order {t['outOfOrder']}, seq gaps {t['seqGaps']}, "
        f"ack errors {t['ackErrors']}, unacked {t['unacked']}"
    )
    if "pendingAtEnd" in t:  # group: also backlog still arriving at the end, copies to the sender
        text += f", still arriving at the end {t['pendingAtEnd']}, sender copies {t['selfDeliveries']}"
    return text


# "Every delivery made" at the fixed rate: deliveries kept up with what was offered (the window's
# edges cost a message or two) and nothing was lost, duplicated or reordered.
MIN_DELIVERED_SHARE = 0.97


def _all_delivered(run: dict) -> bool:
    """Every acked group message reached every other member, once, in order, with its Seq."""
    t = run["totals"]
    return not any(
        t[k]
        for k in (
            "lost",
            "pendingAtEnd",
            "duplicates",
            "outOfOrder",
            "seqGaps",
            "seqDisorder",
            "selfDeliveries",
            "ackErrors",
            "unacked",
            "disconnects",
        )
    )


def _events(counts: dict) -> str:
    return (
        ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:3]) or "none"
    )


def _steps(run: dict) -> str:
    return (
        "; ".join(
            f"{st['offered_deliveries_per_s']:,} → {st['delivered_per_s']:,.0f}, "
            f"{_fmt((st['latency_ms'] or {}).get('p99'))} ms"
            for st in run["saturation"]["steps"]
        )
        + f" (stop: {run['saturation']['stop_reason']})"
    )


def markdown(results: dict) -> str:
    s = results["scenarios"]
    rows = []

    def row(number, metric, product, floor, ratio, target, met):
        rows.append(
            f"| {number} | {metric} | {product} | {floor} | {_fmt(ratio, '×') if ratio else '–'} | {target} | {_met(met)} |"
        )

    if "direct" in s and "error" not in s["direct"]:
        d = s["direct"]
        ps, fs, pf, ff = (
            d["product"]["saturation"],
            d["floor"]["saturation"],
            d["product"]["fixed"],
            d["floor"]["fixed"],
        )
        t = scenario_defs.by_name("direct")["targets"]
        row(
            1,
            f"direct msgs/s at saturation ({d['pairs']} pairs × {d['window']} in flight)",
            _fmt(ps["delivered_per_s"]),
            _fmt(fs["delivered_per_s"]),
            d["ratio_throughput"],
            f"≥ {t['throughput_ratio_min']}× floor",
            (d["ratio_throughput"] or 0) >= t["throughput_ratio_min"],
        )
        row(
            1,
            "direct latency p50 / p99 at saturation (ms)",
            f"{_fmt(ps['latency_ms']['p50'])} / {_fmt(ps['latency_ms']['p99'])}",
            f"{_fmt(fs['latency_ms']['p50'])} / {_fmt(fs['latency_ms']['p99'])}",
            _ratio(ps["latency_ms"]["p99"], fs["latency_ms"]["p99"]),
            "",
            None,
        )
        row(
            1,
            f"direct latency p50 at {d['fixed_rate']:,} msgs/s (ms)",
            _fmt(pf["latency_ms"]["p50"]),
            _fmt(ff["latency_ms"]["p50"]),
            _ratio(pf["latency_ms"]["p50"], ff["latency_ms"]["p50"]),
            "",
            None,
        )
        row(
            1,
            f"direct latency p99 at {d['fixed_rate']:,} msgs/s (ms)",
            _fmt(pf["latency_ms"]["p99"]),
            _fmt(ff["latency_ms"]["p99"]),
            d["ratio_p99_fixed"],
            f"< {t['p99_ms_max']:.0f} ms",
            pf["latency_ms"]["p99"] < t["p99_ms_max"],
        )
        row(
            1,
            f"deliveries over 10 ms at {d['fixed_rate']:,} msgs/s; disk written then (MiB)",
            _tail_and_disk(pf),
            _tail_and_disk(ff),
            None,
            "",
            None,
        )
        row(
            1,
            f"delivered at {d['fixed_rate']:,} msgs/s offered",
            _fmt(pf["delivered_per_s"]),
            _fmt(ff["delivered_per_s"]),
            None,
            f"{d['fixed_rate']:,}",
            None,
        )
        for name, run in (("saturation", ps), ("fixed", pf)):
            t_ = run["totals"]
            clean = not (
                t_["lost"] or t_["duplicates"] or t_["outOfOrder"] or t_["seqGaps"] or t_["ackErrors"]
            )
            row(
                1,
                f"product integrity ({name})",
                _integrity(run),
                _integrity(fs if name == "saturation" else ff),
                None,
                "all 0",
                clean,
            )
    elif "direct" in s:
        rows.append(f"| 1 | direct | error: {s['direct']['error'][:200]} | | | | |")
    if "product" in s.get("group", {}):
        g = s["group"]
        t = scenario_defs.by_name("group")["targets"]
        p, f = g["product"], g["floor"]
        pf, ff = p["fixed"], f["fixed"]
        row(
            2,
            f"group: {g['members']:,} members connected (ramp, {p.get('connects_per_s', 0):.0f} / "
            f"{f.get('connects_per_s', 0):.0f} per s); events other than messages until quiet",
            f"{sum(p['other_events_connecting'].values()):,} ({_events(p['other_events_connecting'])}), quiet "
            f"{'after' if p['quiet_reached'] else '**not reached** in'} {p['quiet_waited_seconds']:.1f} s",
            f"{sum(f['other_events_connecting'].values()):,}, quiet after {f['quiet_waited_seconds']:.1f} s",
            None,
            "",
            None,
        )
        row(
            2,
            f"group deliveries/s at {g['fixed_rate']} msgs/s offered ({pf['offered_deliveries_per_s']:,}/s: "
            f"{g['recipients_per_message']:,} recipients each)",
            f"{_fmt(pf['delivered_per_s'])} ({pf['delivered_share']:.1%})",
            f"{_fmt(ff['delivered_per_s'])} ({ff['delivered_share']:.1%})",
            _ratio(pf["delivered_per_s"], ff["delivered_per_s"]),
            f"every delivery (≥ {MIN_DELIVERED_SHARE:.0%} in the window, none lost)",
            pf["delivered_share"] >= MIN_DELIVERED_SHARE and _all_delivered(p),
        )
        row(
            2,
            f"group latency p50 / p99 at {g['fixed_rate']} msgs/s, all deliveries (ms)",
            f"{_fmt(pf['latency_ms']['p50'])} / {_fmt(pf['latency_ms']['p99'])}" if pf["latency_ms"] else "–",
            f"{_fmt(ff['latency_ms']['p50'])} / {_fmt(ff['latency_ms']['p99'])}" if ff["latency_ms"] else "–",
            g["ratio_p99_fixed"],
            f"p99 < {t['p99_ms_max']:.0f} ms",
            bool(pf["latency_ms"]) and pf["latency_ms"]["p99"] < t["p99_ms_max"],
        )
        row(
            2,
            "group saturation: peak deliveries/s (at msgs/s offered); steps offered → delivered, p99",
            f"{_fmt(p['saturation']['peak_delivered_per_s'])} (at {p['saturation']['peak_rate']}/s); {_steps(p)}",
            f"{_fmt(f['saturation']['peak_delivered_per_s'])} (at {f['saturation']['peak_rate']}/s); {_steps(f)}",
            g["ratio_peak"],
            f"≥ {t['peak_ratio_min']}× floor",
            (g["ratio_peak"] or 0) >= t["peak_ratio_min"],
        )
        pc = (pf.get("server_cpu_us_per_delivery"), p["saturation"].get("peak_server_cpu_us_per_delivery"))
        fc = (ff.get("server_cpu_us_per_delivery"), f["saturation"].get("peak_server_cpu_us_per_delivery"))
        row(
            2,
            f"group server CPU per delivery at {g['fixed_rate']} msgs/s / at the peak step (µs)",
            f"{_fmt(pc[0])} / {_fmt(pc[1])}",
            f"{_fmt(fc[0])} / {_fmt(fc[1])}",
            _ratio(pc[0], fc[0]),
            "",
            None,
        )
        row(2, "group integrity (whole run)", _integrity(p), _integrity(f), None, "all 0", _all_delivered(p))
    elif "group" in s:
        why = s["group"].get("error") or s["group"].get("skipped") or ""
        rows.append(f"| 2 | group fan-out | not measured: {why[:200]} | | | | |")
    if "idle" in s and "error" not in s["idle"]:
        i = s["idle"]
        t = scenario_defs.by_name("idle")["targets"]
        p, f = i["product"], i["floor"]
        row(
            3,
            "server RSS per idle authenticated connection (KiB)",
            _fmt(p["kib_per_connection"]),
            _fmt(f["kib_per_connection"]),
            i["ratio_kib"],
            f"≤ {t['kib_per_connection_max']:.0f} KiB",
            p["kib_per_connection"] <= t["kib_per_connection_max"],
        )
        row(
            3,
            "connections held",
            f"{p['held_at_end']:,} of {p['requested']:,}",
            f"{f['held_at_end']:,} of {f['requested']:,}",
            None,
            f"{t['held_min']:,}",
            p["held_at_end"] >= min(t["held_min"], i["connections"]),
        )
        row(
            3,
            f"connects/s ({p['concurrency']} handshakes in flight)",
            _fmt(p["connects_per_s"]),
            _fmt(f["connects_per_s"]),
            i["ratio_connects"],
            f"≥ {t['connects_ratio_min']}× floor",
            (i["ratio_connects"] or 0) >= t["connects_ratio_min"],
        )
        row(
            3,
            "server CPU per handshake, connect + greeting (ms)",
            _fmt(p.get("server_cpu_ms_per_connect")),
            _fmt(f.get("server_cpu_ms_per_connect")),
            i.get("ratio_cpu_per_connect"),
            "",
            None,
        )
    elif "idle" in s:
        rows.append(f"| 3 | idle | error: {s['idle']['error'][:200]} | | | | |")
    if "storm" in s and "error" not in s["storm"]:
        st = s["storm"]
        t = scenario_defs.by_name("storm")["targets"]
        m = st["messages"]
        back = st["recovered_ms"] or {}
        row(
            8,
            f"reconnect storm: {st['connected']:,} clients dropped at once, until all greeted and synced (s)",
            f"{_fmt(st['storm_seconds'])} ({st['recovered']:,} back; p50 / p99 "
            f"{_fmt((back.get('p50') or 0) / 1000)} / {_fmt((back.get('p99') or 0) / 1000)} s)",
            "",
            None,
            f"< {t['storm_seconds_max']:.0f} s",
            st["outcome"] == "recovered" and (st["storm_seconds"] or 1e9) < t["storm_seconds_max"],
        )
        row(
            8,
            "storm: server CPU per reconnect, new process from its start (ms)",
            _fmt(st["server_cpu_ms_per_reconnect"]),
            "",
            None,
            "",
            None,
        )
        row(
            8,
            "storm: messages sent (during the storm) / acked / lost / late / unacked / received by sync / "
            "undelivered (receiver not back)",
            f"{m['sent']:,} ({m['sent_during_storm']:,}) / {m['acked']:,} / {m['lost']} / {m.get('late', 0)} / "
            f"{m['unacked']} / {m['received_by_sync']:,} / {m.get('undelivered_receiver_not_back', 0)}",
            "",
            None,
            "none lost",
            m["lost"] == 0 and m["ack_errors"] == 0,
        )
    elif "storm" in s:
        rows.append(f"| 8 | storm | error: {s['storm']['error'][:200]} | | | | |")
    if "history" in s and "error" not in s["history"]:
        h = s["history"]
        t = scenario_defs.by_name("history")["targets"]
        for key, floor_key, what in (
            ("newest", "floor_newest", "newest page"),
            ("deep", "floor_deep", f"page {h['depth']:,} deep"),
        ):
            row(
                4,
                f"history {what} of {h['page']} (of {h['messages']:,}) p50 / p99 (ms)",
                f"{_fmt(h[key]['p50'])} / {_fmt(h[key]['p99'])}",
                f"{_fmt(h[floor_key]['p50'])} / {_fmt(h[floor_key]['p99'])}",
                _ratio(h[key]["p99"], h[floor_key]["p99"]),
                f"p99 < {t['p99_ms_max']:.0f} ms",
                h[key]["p99"] < t["p99_ms_max"],
            )
        for key, what in (("page_newest", "newest"), ("page_deep", "deep")):
            row(
                4,
                f"conversation_page (socket handler's selector), {what}, p50 / p99 (ms)",
                f"{_fmt(h[key]['p50'])} / {_fmt(h[key]['p99'])}",
                "",
                None,
                "",
                None,
            )
        row(
            4,
            "message query plan uses an index (no seq scan)",
            str(h["message_queries_use_index"]),
            "",
            None,
            "yes",
            h["message_queries_use_index"],
        )
    elif "history" in s:
        rows.append(f"| 4 | history | error: {s['history']['error'][:200]} | | | | |")
    if "twoproc" in s and "error" not in s["twoproc"]:
        tp = s["twoproc"]
        p, f = tp["product"], tp["floor"]
        one = s.get("direct", {}).get("product", {}).get("saturation", {}).get("delivered_per_s")
        row(
            5,
            "2 processes msgs/s at saturation (all pairs cross processes)",
            _fmt(p["delivered_per_s"]),
            _fmt(f["delivered_per_s"]),
            tp["ratio_throughput"],
            f"beside 1 process: {_fmt(one)}",
            None,
        )
        row(
            5,
            "2 processes latency p50 / p99 at saturation (ms)",
            f"{_fmt(p['latency_ms']['p50'])} / {_fmt(p['latency_ms']['p99'])}",
            f"{_fmt(f['latency_ms']['p50'])} / {_fmt(f['latency_ms']['p99'])}",
            None,
            "",
            None,
        )
        one_cpu = (
            s.get("direct", {}).get("product", {}).get("saturation", {}).get("server_cpu_us_per_message")
        )
        two_cpu = p.get("server_cpu_us_per_message")
        cpu_ratio = _ratio(two_cpu, one_cpu)
        row(
            5,
            "2 processes: product server CPU per message at saturation (µs), beside 1 process",
            f"{_fmt(two_cpu)} (1 process: {_fmt(one_cpu)}; {_fmt(cpu_ratio, '×')})",
            _fmt(f.get("server_cpu_us_per_message")),
            None,
            f"≤ {scenario_defs.by_name('twoproc')['targets']['cpu_ratio_max']}× 1 process",
            None
            if cpu_ratio is None
            else cpu_ratio <= scenario_defs.by_name("twoproc")["targets"]["cpu_ratio_max"],
        )
        t_ = p["totals"]
        clean = not (t_["lost"] or t_["duplicates"] or t_["outOfOrder"] or t_["seqGaps"] or t_["ackErrors"])
        row(5, "product integrity across processes", _integrity(p), _integrity(f), None, "all 0", clean)
    elif "twoproc" in s:
        rows.append(f"| 5 | two processes | error: {s['twoproc']['error'][:200]} | | | | |")

    cpu_rows = []
    for name, run in _load_runs(results):
        c = run.get("cpu") or run.get("cpu_connecting") or {}
        cpu_rows.append(
            f"| {name} | {c.get('server', 0):.0%} | {c.get('postgres', 0):.0%} | {c.get('redis', 0):.0%} | "
            f"{c.get('generator', 0):.0%} | {c.get('other', 0):.0%} | {c.get('cpu0_busy', 0):.0%} | "
            f"{c.get('cpu1_busy', 0):.0%} |"
        )
    m = results["machine"]
    lines = [
        f"# Bench {results['date']} ({results['mode']})",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB; servers on core {SERVER_CPUS}, generator on "
        f"core {GENERATOR_CPUS} (`taskset`); PostgreSQL and Redis unpinned. Product at git {results['git']['commit']}"
        f"{' (dirty tree)' if results['git']['dirty'] else ''}. Total {results['seconds']:.0f} s. Uvicorn flags "
        f"(product and floor): `{' '.join(results['uvicorn_args'])}`. Machine load at start: "
        f"{results['load_at_start']}.",
        "",
        "| # | measure | product | floor | product/floor | target | met |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "CPU during each measurement window, in shares of one core (server = all server processes; "
        "postgres = every backend of the cluster; other = busy time no listed process accounts for: kernel "
        "network work and anything else running on the machine, so a large value flags a disturbed run; core "
        "columns = whole-core busy):",
        "",
        "| run | server | postgres | redis | generator | other | core 0 | core 1 |",
        "|---|---|---|---|---|---|---|---|",
        *cpu_rows,
        "",
    ]
    profiles = [(name, run["profile"]) for name, run in _load_runs(results) if run.get("profile")]
    for proto in ("product", "floor"):
        group_run = results["scenarios"].get("group", {}).get(proto, {})
        if group_run.get("profile_saturation"):
            profiles.append((f"2 {proto} saturation steps", group_run["profile_saturation"]))
    for name, prof in profiles:
        lines += [
            f"Profile of {name} (py-spy, {prof.get('samples', 0)} samples, `{prof.get('raw', '')}`), top inclusive frames:",
            "",
        ]
        lines += [f"- {pct}% {frame}" for frame, pct in prof.get("inclusive", [])[:15]]
        lines += ["", "top product frames (inclusive):", ""]
        lines += [f"- {pct}% {frame}" for frame, pct in prof.get("product_inclusive", [])[:15]]
        lines += ["", "top self frames:", ""]
        lines += [f"- {pct}% {frame}" for frame, pct in prof.get("self", [])[:15]]
        lines += [""]
    plans = (
        f" Query plans: `{results['date_tag']}-history-plans.txt`."
        if "error" not in results["scenarios"].get("history", {"error": 1})
        else ""
    )
    lines += [f"Plot: `{results['date_tag']}.png`.{plans}", ""]
    return "\n".join(lines)


def _load_runs(results: dict) -> list[tuple[str, dict]]:
    s, runs = results["scenarios"], []
    if "error" not in s.get("direct", {"error": 1}):
        for proto in ("product", "floor"):
            runs += [
                (f"1 {proto} saturation", s["direct"][proto]["saturation"]),
                (f"1 {proto} fixed rate", s["direct"][proto]["fixed"]),
            ]
    if "product" in s.get("group", {}):
        for proto in ("product", "floor"):
            g = s["group"][proto]
            runs.append((f"2 {proto} connected, until quiet", {"cpu": g["cpu_settling"]}))
            runs.append((f"2 {proto} {g['fixed']['offered_rate']} msgs/s", g["fixed"]))
            runs += [
                (f"2 {proto} step {st['offered_rate']} msgs/s", st)
                for st in g["saturation"]["steps"]
                if st.get("cpu")
            ]
    if "error" not in s.get("idle", {"error": 1}):
        runs += [(f"3 {proto} connecting", s["idle"][proto]) for proto in ("product", "floor")]
    if "error" not in s.get("twoproc", {"error": 1}):
        runs += [(f"5 {proto} 2 processes", s["twoproc"][proto]) for proto in ("product", "floor")]
    if "error" not in s.get("storm", {"error": 1}):
        runs.append(("8 product restarted, until all back", {"cpu": s["storm"]["cpu_storm"]}))
    return runs


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["scenarios"]
    fig, ((ax1, ax2), (ax3, ax4), (ax5, ax6)) = plt.subplots(3, 2, figsize=(14, 16))
    curves = []
    if "error" not in s.get("direct", {"error": 1}):
        d = s["direct"]
        curves += [
            (f"product {d['fixed_rate']}/s", d["product"]["fixed"], "tab:blue", "-"),
            (f"floor {d['fixed_rate']}/s", d["floor"]["fixed"], "tab:gray", "-"),
            ("product saturation", d["product"]["saturation"], "tab:blue", "--"),
            ("floor saturation", d["floor"]["saturation"], "tab:gray", "--"),
        ]
    if "error" not in s.get("twoproc", {"error": 1}):
        curves += [
            ("product 2 proc saturation", s["twoproc"]["product"], "tab:orange", "--"),
            ("floor 2 proc saturation", s["twoproc"]["floor"], "tab:brown", "--"),
        ]
    labels = None
    for name, run, color, style in curves:
        lat = run.get("latency_ms")
        if not lat:
            continue
        points = [(p, v) for p, v in lat["curve"] if p >= 50]
        labels = [f"p{p:g}" for p, _v in points]
        ax1.plot(range(len(points)), [v for _p, v in points], style, color=color, marker="o", label=name)
    if labels:
        ax1.set_xticks(range(len(labels)), labels)
        ax1.set_yscale("log")
        ax1.axhline(50, color="red", linewidth=0.8, linestyle=":", label="p99 target 50 ms")
        ax1.set_ylabel("end-to-end latency, ms (log)")
        ax1.set_title("Direct messages: receiver time − send time")
        ax1.legend(fontsize=8)
        ax1.grid(True, which="both", alpha=0.3)
    if "error" not in s.get("history", {"error": 1}):
        h = s["history"]
        groups = [
            ("newest page", "newest", "page_newest", "floor_newest"),
            (f"{h['depth']:,} deep", "deep", "page_deep", "floor_deep"),
        ]
        width = 0.13
        series = [
            ("selector p50", 0, "p50", "tab:blue"),
            ("selector p99", 0, "p99", "tab:cyan"),
            ("conversation_page p50", 1, "p50", "tab:green"),
            ("conversation_page p99", 1, "p99", "tab:olive"),
            ("floor SQL p50", 2, "p50", "tab:gray"),
            ("floor SQL p99", 2, "p99", "silver"),
        ]
        for j, (name, which, pct, color) in enumerate(series):
            values = [h[g[1 + which]][pct] for g in groups]
            ax2.bar(
                [x + (j - 2.5) * width for x in range(len(groups))], values, width, label=name, color=color
            )
        ax2.set_xticks(range(len(groups)), [g[0] for g in groups])
        ax2.axhline(10, color="red", linewidth=0.8, linestyle=":", label="p99 target 10 ms")
        ax2.set_ylabel("server time, ms")
        ax2.set_title(f"History of {h['messages']:,} messages, page of {h['page']}")
        ax2.legend(fontsize=8)
        ax2.grid(True, axis="y", alpha=0.3)
    if "product" in s.get("group", {}):
        plot_group(s["group"], ax3, ax4)
    if "error" not in s.get("storm", {"error": 1}) and s["storm"].get("recovered_ms"):
        plot_storm(s["storm"], ax5)
    for ax in (ax1, ax2, ax3, ax4, ax5, ax6):
        if not ax.has_data():  # a partial run: no empty frames
            ax.axis("off")
    fig.suptitle(f"Chat server bench {results['date']} ({results['mode']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_storm(st: dict, ax) -> None:
    """Scenario 8: the share of clients back (greeted and synced) against seconds after the drop."""
    target = scenario_defs.by_name("storm")["targets"]["storm_seconds_max"]
    curve = st["recovered_ms"]["curve"]
    ax.plot([v / 1000 for _p, v in curve], [p for p, _v in curve], "-", color="tab:blue", marker="o")
    ax.axvline(target, color="red", linewidth=0.8, linestyle=":", label=f"target: all within {target:.0f} s")
    ax.set_xlabel("seconds after the drop (server killed and restarted)")
    ax.set_ylabel("% of clients greeted and synced")
    ax.set_title(
        f"Reconnect storm: {st['connected']:,} clients, all back in {st['storm_seconds']:.1f} s "
        f"({st['messages']['lost']} of {st['messages']['acked']:,} acked messages lost)"
    )
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)


def plot_group(g: dict, ax_latency, ax_saturation) -> None:
    """Scenario 2: latency percentiles over all deliveries at the fixed rate (and at the peak
    saturation step); deliveries/s against deliveries/s offered over the saturation steps."""
    target = scenario_defs.by_name("group")["targets"]["p99_ms_max"]
    labels = None
    for proto, color in (("product", "tab:blue"), ("floor", "tab:gray")):
        run = g[proto]
        for name, lat, style in (
            (f"{proto} {g['fixed_rate']} msgs/s", run["fixed"]["latency_ms"], "-"),
            (
                f"{proto} peak step {run['saturation']['peak_rate']} msgs/s",
                run["saturation"]["peak_latency_ms"],
                "--",
            ),
        ):
            if not lat:
                continue
            points = [(pct, v) for pct, v in lat["curve"] if pct >= 50]
            labels = [f"p{pct:g}" for pct, _v in points]
            ax_latency.plot(
                range(len(points)), [v for _p, v in points], style, color=color, marker="o", label=name
            )
    if labels:
        ax_latency.set_xticks(range(len(labels)), labels)
        ax_latency.set_yscale("log")
        ax_latency.axhline(
            target, color="red", linewidth=0.8, linestyle=":", label=f"p99 target {target:.0f} ms"
        )
        ax_latency.set_ylabel("delivery latency, ms (log)")
        ax_latency.set_title(
            f"Group of {g['members']:,}: member receive time − send time ({g['recipients_per_message']:,} per message)"
        )
        ax_latency.legend(fontsize=8)
        ax_latency.grid(True, which="both", alpha=0.3)
    top = 0
    for proto, color in (("product", "tab:blue"), ("floor", "tab:gray")):
        run = g[proto]
        points = [
            (
                run["fixed"]["offered_deliveries_per_s"],
                run["fixed"]["delivered_per_s"],
                run["fixed"]["latency_ms"],
            )
        ]
        points += [
            (st["offered_deliveries_per_s"], st["delivered_per_s"], st["latency_ms"])
            for st in run["saturation"]["steps"]
        ]
        xs, ys = [x for x, _y, _l in points], [y for _x, y, _l in points]
        top = max([top, *xs, *ys])
        ax_saturation.plot(xs, ys, "-o", color=color, label=f"{proto} delivered")
        for x, y, lat in points:
            if lat:
                ax_saturation.annotate(
                    f"p99 {lat['p99']:,.0f}", (x, y), fontsize=7, textcoords="offset points", xytext=(4, -10)
                )
    ax_saturation.plot([0, top], [0, top], ":", color="black", linewidth=0.8, label="offered")
    ax_saturation.set_xlabel("deliveries/s offered (msgs/s × recipients)")
    ax_saturation.set_ylabel("deliveries/s made")
    ax_saturation.set_title("Group fan-out: fixed rate, then saturation steps (p99 in ms)")
    ax_saturation.legend(fontsize=8)
    ax_saturation.grid(True, alpha=0.3)


# --- main -----------------------------------------------------------------------------------


def ensure_requirements() -> None:
    missing = [m for m in ("matplotlib", "psycopg_pool") if importlib.util.find_spec(m) is None]
    if missing or not (Path(PY).parent / "py-spy").exists():
        say(f"installing bench/requirements.txt into {Path(PY).parent.parent}")
        subprocess.run(
            [PY, "-m", "pip", "install", "--quiet", "-r", str(BENCH / "requirements.txt")], check=True
        )


def setup_database(workdir: Path) -> None:
    pg = ["-h", HOST, "-U", "postgres"]
    subprocess.run(["dropdb", *pg, "--if-exists", "--force", DB_NAME], check=True, capture_output=True)
    subprocess.run(["createdb", *pg, DB_NAME], check=True, capture_output=True)
    run_script(
        ["manage.py", "migrate", "--noinput"], workdir=workdir, name="migrate", timeout=180, cpus="0,1"
    )


def seed(kind: str, count: int, workdir: Path, *extra: str) -> dict:
    out = workdir / f"seed-{kind}.json"
    run_script(
        [str(BENCH / "seed.py"), kind, str(count), str(out), *extra],
        workdir=workdir,
        name=f"seed-{kind}",
        timeout=180,
        cpus="0,1",
    )
    return json.loads(out.read_text())


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1048576
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem, 1),
        "python": platform.python_version(),
        "node": subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip(),
    }


def machine_load() -> dict:
    """Load from outside the bench (other users' test runs share this machine): recorded with
    the results, and a warning when the machine is already busy."""
    load = {"loadavg": Path("/proc/loadavg").read_text().split()[:3]}
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        load["cpu_pressure_avg60"] = float(some.split("avg60=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        pass
    return load


def git_info() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", ".", ":!bench")),
    }


CZ_MOUNT = {
    "protocol": "gateway.protocols.czmessenger",
    "transport": "eio3",
    "path": "/v1/conversations/sockets/",
    "namespace": "/v1/conversations/events",
    "realm": "first_party",
}


def cz_pair_configs(seed: dict, url: str, count: int) -> list:
    """Scenario 1's pairs as CZ Messenger buyer (sender) and seller (receiver) on a first-party
    mount: the product's access tokens, the users' public ids as wire ids."""
    pairs = []
    for pair in seed["pairs"][:count]:
        pairs.append(
            {
                "chat": pair["chat"],
                "sender": pair["sender"],
                "receiver": pair["receiver"],
                "senderUrl": url,
                "receiverUrl": url,
                "senderAuth": {"token": pair["sender_token"], "userId": pair["sender"], "role": "BUYER"},
                "receiverAuth": {
                    "token": pair["receiver_token"],
                    "userId": pair["receiver"],
                    "role": "SELLER",
                },
            }
        )
    return pairs


def _direct_variants(params: dict, workdir: Path, mounts: list[dict], variants: list[tuple]) -> dict:
    """Scenario 1's saturation and fixed-rate loads for each variant, one after the other,
    against one product server mounting `mounts`. A variant is (name, pairs(url), client, wire)."""
    PRODUCT_ENV["CHAT_PROTOCOLS"] = json.dumps(mounts)
    out = {"pairs": params["pairs"], "window": params["window"], "fixed_rate": params["fixed_rate"]}
    server, url = start_product(workdir)
    try:
        for name, make_pairs, client, wire in variants:
            pairs = make_pairs(url)
            out[name] = {
                kind: direct_load(
                    f"{name} {kind}",
                    "product",
                    pairs,
                    window=params["window"],
                    rate=rate,
                    phases=phases,
                    server_pids=[server.pid],
                    workdir=workdir,
                    client=client,
                    wire=wire,
                )
                for kind, rate, phases in (
                    ("saturation", None, params["saturation"]),
                    ("fixed", params["fixed_rate"], params["fixed"]),
                )
            }
    finally:
        server.stop()
        PRODUCT_ENV.pop("CHAT_PROTOCOLS", None)
    return out


def _cpu_ratios(out: dict, params: dict, name: str, base: str, what: str) -> dict:
    """Server CPU per message of variant `name` over variant `base`, at saturation and fixed rate."""
    for kind in ("saturation", "fixed"):
        out[f"cpu_ratio_{kind}"] = _ratio(
            out[name][kind].get("server_cpu_us_per_message"), out[base][kind].get("server_cpu_us_per_message")
        )
    say(
        f"  {what} server CPU per message: saturation {out['cpu_ratio_saturation']}, "
        f"{params['fixed_rate']}/s {out['cpu_ratio_fixed']}"
    )
    return out


def scenario_czmessenger(params: dict, seed: dict, workdir: Path, profile_dir: Path | None) -> dict:
    """The same pairs as ExpressChat clients (socket.io-client 4, scenario 1's path) and then as
    CZ Messenger clients (socket.io-client 2.3.1), against one product server mounting both."""
    mounts = [
        {"protocol": "gateway.protocols.expresschat", "transport": "eio4", "path": "/socket.io/"},
        CZ_MOUNT,
    ]
    variants = [
        ("expresschat", lambda url: pair_configs(seed, "product", [url], [url], params["pairs"]), "v4", None),
        ("czmessenger", lambda url: cz_pair_configs(seed, url, params["pairs"]), "v2", "czmessenger"),
    ]
    out = _direct_variants(params, workdir, mounts, variants)
    return _cpu_ratios(out, params, "czmessenger", "expresschat", "CZ Messenger / ExpressChat")


def scenario_eio3(params: dict, seed: dict, workdir: Path, profile_dir: Path | None) -> dict:
    """ExpressChat direct messages from socket.io-client 4 and then 2.3.1 clients, against one
    product server that mounts ExpressChat on both Engine.IO 4 and Engine.IO 3."""
    mounts = [
        {"protocol": "gateway.protocols.expresschat", "transport": transport, "path": "/socket.io/"}
        for transport in ("eio4", "eio3")
    ]
    variants = [
        (client, lambda url: pair_configs(seed, "product", [url], [url], params["pairs"]), client, None)
        for client in ("v4", "v2")
    ]
    out = _direct_variants(params, workdir, mounts, variants)
    return _cpu_ratios(out, params, "v2", "v4", "Socket.IO 2 / Socket.IO 4")


RUNNERS = {
    "direct": scenario_direct,
    "group": scenario_group,
    "twoproc": scenario_twoproc,
    "idle": scenario_idle,
    "history": scenario_history,
    "eio3": scenario_eio3,
    "czmessenger": scenario_czmessenger,
    "storm": scenario_storm,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=scenario_defs.RUN_ORDER,
        help="run only these (repeatable); default: all",
    )
    parser.add_argument("--quick", action="store_true", help="short runs and smaller counts, for iteration")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the product server during its saturation windows (perturbs those numbers)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra environment variable for the product servers (repeatable), e.g. "
        "CHAT_METRICS_RECORDING=0 to compare with metrics recording off",
    )
    args = parser.parse_args()
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--server-env takes NAME=VALUE, not {item!r}")
        PRODUCT_ENV[name] = value
    chosen = [n for n in scenario_defs.RUN_ORDER if not args.scenario or n in args.scenario]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by servers and generator
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    ensure_requirements()

    tag = datetime.date.today().isoformat()
    full = not args.quick and chosen == scenario_defs.RUN_ORDER and not args.profile and not args.server_env
    date_tag = (
        tag
        if full
        else "-".join(
            [
                tag,
                *(["quick"] if args.quick else []),
                *(["profile"] if args.profile else []),
                *([] if chosen == scenario_defs.RUN_ORDER else chosen),
                *(re.sub(r"[^A-Za-z0-9]+", "_", item) for item in args.server_env),
            ]
        )
    )
    RESULTS.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="chatbench-"))
    profile_dir = RESULTS / f"{date_tag}-pyspy" if args.profile else None  # prefix of raw py-spy files
    results = {
        "date": tag,
        "date_tag": date_tag,
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "git": git_info(),
        "pinning": {"servers": SERVER_CPUS, "generator": GENERATOR_CPUS},
        "product_env": {k: v for k, v in PRODUCT_ENV.items() if k != "SECRET_KEY"},
        "uvicorn_args": UVICORN,
        "floor_uvicorn_args": FLOOR_UVICORN,
        "load_at_start": machine_load(),
        "floor_pool_size": int(FLOOR_POOL_SIZE),
        "scenarios": {},
    }
    if results["load_at_start"].get("cpu_pressure_avg60", 0) > 20:
        say(
            f"WARNING: the machine is busy before the bench starts ({results['load_at_start']}); numbers will be low"
        )
    say(f"scenarios {', '.join(chosen)} ({results['mode']}); logs in {workdir}; ulimit -n {hard}")
    try:
        setup_database(workdir)
        say(f"database {DB_NAME} created and migrated")
        seeds = {}
        if {"direct", "twoproc", "eio3", "czmessenger", "storm"} & set(chosen):
            seeds["direct"] = seed("direct", 100, workdir)
            say(f"seeded 100 direct pairs in {seeds['direct']['seconds']}s")
        for name in chosen:
            definition = scenario_defs.by_name(name)
            number = definition["number"]
            params = definition["quick" if args.quick else "full"]
            if name == "storm" and os.environ.get("BENCH_STORM_CONNECTIONS"):
                # A storm between quick (1,000) and full (10,000), e.g. to A/B admission control
                # on a shared machine in a minute rather than six.
                params = {**params, "connections": int(os.environ["BENCH_STORM_CONNECTIONS"])}
            if remaining() < params.get("min_budget", 30):
                results["scenarios"][name] = {
                    "error": f"time budget exhausted before this scenario (needs {params.get('min_budget', 30)} s; "
                    f"run it alone: bench/run.py --scenario {name})",
                    "budget_skip": True,
                }
                say(f"[{number}/{len(scenario_defs.RUN_ORDER)} {name}] skipped: time budget exhausted")
                continue
            say(f"[{number}/{len(scenario_defs.RUN_ORDER)} {name}] {definition['title']}")
            started = time.monotonic()
            # A bus and presence namespace per scenario: a server of an earlier scenario that did
            # not stop in time (SIGKILL) leaves its connections in the presence store, and the
            # next scenario's server would spend its first seconds reaping them.
            PRODUCT_ENV["CHANNEL_PREFIX"] = f"bench{os.getpid()}{name}"
            try:
                if name in ("idle", "storm"):
                    seeds["idle"] = seed("idle", params["connections"], workdir)
                    say(f"  seeded {params['connections']:,} idle users in {seeds['idle']['seconds']}s")
                if name == "storm":
                    seeds["storm"] = {"idle": seeds["idle"], "direct": seeds["direct"]}
                if name == "group":
                    if params["members"] > 1000:  # the product's default CHAT_GROUP_MAX_MEMBERS
                        PRODUCT_ENV["CHAT_GROUP_MAX_MEMBERS"] = str(params["members"])
                    hidden = os.environ.get(
                        "BENCH_GROUP_PRESENCE", "hidden" if params["presence_hidden"] else ""
                    )
                    seeds["group"] = seed(
                        "group",
                        params["members"],
                        workdir,
                        *(["presence-hidden"] if hidden == "hidden" else []),
                    )
                    say(
                        f"  seeded a group of {params['members']:,} members (last_seq {seeds['group']['last_seq']}, "
                        f"presence {'hidden' if seeds['group']['presence_hidden'] else 'visible'}) "
                        f"in {seeds['group']['seconds']}s"
                    )
                results["scenarios"][name] = RUNNERS[name](
                    params,
                    seeds.get(name if name in ("idle", "group", "storm") else "direct"),
                    workdir,
                    profile_dir,
                )
            except Exception as exc:  # one scenario failing must not lose the others' results
                results["scenarios"][name] = {"error": str(exc)}
                say(f"  FAILED: {exc}")
            finally:
                stop_all()
            results["scenarios"][name]["seconds"] = round(time.monotonic() - started, 1)
            say(f"[{number}/{len(scenario_defs.RUN_ORDER)} {name}] done in {time.monotonic() - started:.0f}s")
    finally:
        stop_all()
    results["seconds"] = round(time.monotonic() - STARTED, 1)
    history = results["scenarios"].get("history", {})
    if "plans_text" in history:
        (RESULTS / f"{date_tag}-history-plans.txt").write_text(history.pop("plans_text"))
    (RESULTS / f"{date_tag}.json").write_text(json.dumps(results, indent=1))
    (RESULTS / f"{date_tag}.md").write_text(markdown(results))
    plot(results, RESULTS / f"{date_tag}.png")
    say(f"wrote bench/results/{date_tag}.json, .md, .png in {results['seconds']:.0f}s total")
    if args.keep:
        say(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    # A scenario left out for the time budget (the storm, in a full run) is not a failure.
    failed = [n for n, r in results["scenarios"].items() if "error" in r and not r.get("budget_skip")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
