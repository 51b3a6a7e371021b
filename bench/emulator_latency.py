"""How fast does the local Azure answer? Latency at a steady rate, capacity, and the SDK's own share.

Target (BENCHMARKS.md): p99 < 20 ms at 50 requests/s, so the emulator is never the bottleneck.
The benchmark starts its own local Azure (time factor 0) in a temporary directory, signs in with
a service principal against the emulator's token endpoint (as the factory's hook does), and runs:

1. open loop: a realistic ARM mix at a fixed rate; each request has a planned send time and its
   latency is counted from that time, so a stalled server cannot hide queued requests
   (no coordinated omission);
2. closed loop: N clients sending the same mix back to back, for the sustained request rate;
3. SDK: the same GET sequentially through ``requests`` and through azure-mgmt-resource's
   ``resource_groups.get``, interleaved, to show the client's own overhead next to the server's.

Server-side dispatcher times come from the emulator's request log (``/_emulator/requests``).
All traffic goes to 127.0.0.1; every phase is bounded in count and time.

    python -m bench.emulator_latency [--rate 50 --duration 20 --clients 8 --json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as ``python bench/emulator_latency.py``
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

from tests.localazure import LocalAzure  # noqa: E402

LOCAL_SCOPE = "https://management.core.windows.net/.default"  # what the hook asks for on local Azure
RG_API = "2025-04-01"  # the api-version azure-mgmt-resource 26 sends
LOCATION = "westeurope"
TARGET_RATE = 50.0  # BENCHMARKS.md: p99 < 20 ms at 50 requests/s
TIMEOUT = 10.0  # per request: a stuck server shows up as errors, not as a hung benchmark

# The mix: mostly reads (a group, the group list, operation polls), some tag writes, a few HEADs.
MIX: tuple[tuple[str, int], ...] = (
    ("get_group", 45),
    ("list_groups", 15),
    ("operation_status", 22),
    ("put_group", 12),
    ("head_group", 6),
)
EXPECTED = {"get_group": 200, "list_groups": 200, "operation_status": 200, "put_group": 200, "head_group": 204}


@dataclass
class Config:
    rate: float = TARGET_RATE
    duration: float = 20.0
    workers: int = 16
    clients: int = 8
    closed_duration: float = 10.0
    sdk_calls: int = 300
    groups: int = 20
    target_ms: float = 20.0
    seed: int = 1
    phases: tuple[str, ...] = ("open", "closed", "sdk")


@dataclass
class Call:
    kind: str
    method: str
    url: str
    body: dict[str, Any] | None = None


@dataclass
class Outcome:
    latency_ms: list[float] = field(default_factory=list)  # what the client saw (open loop: from planned time)
    service_ms: list[float] = field(default_factory=list)  # actual send → answer
    lag_ms: list[float] = field(default_factory=list)  # planned → actual send (scheduler/worker delay)
    errors: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # latency per kind of call
    elapsed_s: float = 0.0

    def add(self, other: Outcome) -> None:
        self.latency_ms += other.latency_ms
        self.service_ms += other.service_ms
        self.lag_ms += other.lag_ms
        self.errors.update(other.errors)
        self.kinds.update(other.kinds)
        for kind, values in other.by_kind.items():
            self.by_kind.setdefault(kind, []).extend(values)

    def record(self, kind: str, latency_ms: float, error: str | None) -> None:
        self.latency_ms.append(latency_ms)
        self.by_kind.setdefault(kind, []).append(latency_ms)
        self.kinds[kind] += 1
        if error:
            self.errors[error] += 1


# statistics -----------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on unsorted input."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values) if values else float("nan"),
        "mean_ms": sum(values) / len(values) if values else float("nan"),
    }


# traffic ---------------------------------------------------------------------------------------
class Traffic:
    """Builds the request mix against one signed-in local Azure and sends it over keep-alive HTTPS."""

    def __init__(self, emu: LocalAzure, token: str, subscription: str) -> None:
        self.emu = emu
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.sub_url = f"{emu.endpoint}/subscriptions/{subscription}"
        self.groups: list[str] = []
        self.operations: list[str] = []

    def session(self) -> requests.Session:
        """One session per thread: one pooled TLS connection, kept alive, opened before timing starts."""
        s = requests.Session()
        s.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
        s.trust_env = False  # else REQUESTS_CA_BUNDLE/proxies from the environment override verify
        s.verify = self.emu.ca
        s.headers.update(self.headers)
        s.get(self.emu.endpoint + "/_emulator/health", timeout=TIMEOUT).raise_for_status()
        return s

    def group_url(self, name: str) -> str:
        return f"{self.sub_url}/resourcegroups/{name}?api-version={RG_API}"

    def prepare(self, count: int) -> None:
        """The groups the mix reads and writes, and finished operations (group deletes) to poll."""
        s = self.session()
        for i in range(count):
            name = f"bench-latency-{i:03d}"
            r = s.put(self.group_url(name), json={"location": LOCATION, "tags": {"bench": "latency"}}, timeout=TIMEOUT)
            r.raise_for_status()
            self.groups.append(name)
        for i in range(max(2, count // 5)):
            name = f"bench-latency-gone-{i:03d}"
            s.put(self.group_url(name), json={"location": LOCATION}, timeout=TIMEOUT).raise_for_status()
            r = s.delete(self.group_url(name), timeout=TIMEOUT)
            if r.status_code != 202:
                raise RuntimeError(f"deleting {name}: expected 202, got {r.status_code} {r.text}")
            self.operations.append(r.headers["Location"].split("?")[0].rsplit("/", 1)[-1])
        for op in self.operations:  # time factor 0: settled by the next request, or the ticker
            deadline = time.monotonic() + 10
            while s.get(self.operation_url(op), timeout=TIMEOUT).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"operation {op} did not finish")
                time.sleep(0.05)
        s.close()

    def operation_url(self, op: str) -> str:
        return f"{self.sub_url}/operationresults/{op}?api-version={RG_API}"

    def plan(self, count: int, seed: int) -> list[Call]:
        rng = random.Random(seed)
        kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=count)
        calls = []
        for i, kind in enumerate(kinds):
            group = rng.choice(self.groups)
            if kind == "get_group":
                calls.append(Call(kind, "GET", self.group_url(group)))
            elif kind == "head_group":
                calls.append(Call(kind, "HEAD", self.group_url(group)))
            elif kind == "list_groups":
                calls.append(Call(kind, "GET", f"{self.sub_url}/resourcegroups?api-version={RG_API}"))
            elif kind == "operation_status":
                calls.append(Call(kind, "GET", self.operation_url(rng.choice(self.operations))))
            else:
                body = {"location": LOCATION, "tags": {"bench": "latency", "seq": str(i)}}
                calls.append(Call(kind, "PUT", self.group_url(group), body))
        return calls

    @staticmethod
    def send(session: requests.Session, call: Call) -> str | None:
        """Send one call; the error text, or None when ARM answered as expected."""
        try:
            r = session.request(call.method, call.url, json=call.body, timeout=TIMEOUT)
            r.content  # noqa: B018  (read the body: the answer is complete only then)
        except requests.RequestException as exc:
            return f"{call.kind}: {type(exc).__name__}"
        if r.status_code != EXPECTED[call.kind]:
            return f"{call.kind}: HTTP {r.status_code}"
        return None


def _run_threads(targets: Sequence[Callable[[], None]], limit: float) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + limit
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise RuntimeError(f"benchmark threads still running after {limit:.0f} s")


# phases ----------------------------------------------------------------------------------------
def open_loop(traffic: Traffic, cfg: Config) -> Outcome:
    """Send ``rate * duration`` calls at planned times; latency counts from the planned time."""
    total = max(1, int(cfg.rate * cfg.duration))
    calls = traffic.plan(total, cfg.seed)
    sessions = [traffic.session() for _ in range(cfg.workers)]
    results = [Outcome() for _ in sessions]
    lock = threading.Lock()
    next_index = 0
    start = time.perf_counter() + 0.2

    def worker(session: requests.Session, out: Outcome) -> None:
        nonlocal next_index
        while True:
            with lock:
                i = next_index
                next_index += 1
            if i >= total:
                return
            planned = start + i / cfg.rate
            wait = planned - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            error = traffic.send(session, calls[i])
            done = time.perf_counter()
            out.record(calls[i].kind, (done - planned) * 1000, error)
            out.service_ms.append((done - sent) * 1000)
            out.lag_ms.append((sent - planned) * 1000)

    _run_threads([partial(worker, s, o) for s, o in zip(sessions, results, strict=True)], cfg.duration + 60)
    # the achieved rate is over the planned span, or longer when the sends fell behind
    merged = Outcome(elapsed_s=max(time.perf_counter() - start, total / cfg.rate))
    for r in results:
        merged.add(r)
    for s in sessions:
        s.close()
    return merged


def closed_loop(traffic: Traffic, cfg: Config) -> Outcome:
    """``clients`` threads, each sending the mix back to back for ``closed_duration`` seconds."""
    sessions = [traffic.session() for _ in range(cfg.clients)]
    results = [Outcome() for _ in sessions]
    plans = [traffic.plan(2000, cfg.seed + 1 + n) for n in range(cfg.clients)]
    start = time.perf_counter()
    end = start + cfg.closed_duration

    def client(session: requests.Session, out: Outcome, plan: list[Call]) -> None:
        i = 0
        while time.perf_counter() < end:
            call = plan[i % len(plan)]
            i += 1
            sent = time.perf_counter()
            error = traffic.send(session, call)
            out.record(call.kind, (time.perf_counter() - sent) * 1000, error)

    _run_threads([partial(client, s, o, p) for s, o, p in zip(sessions, results, plans, strict=True)],
                 cfg.closed_duration + 60)
    merged = Outcome(elapsed_s=time.perf_counter() - start)
    for r in results:
        merged.add(r)
    for s in sessions:
        s.close()
    return merged


def sdk_vs_raw(traffic: Traffic, credential: Any, subscription: str, cfg: Config) -> tuple[Outcome, Outcome, list[float]]:
    """The same GET, interleaved: raw keep-alive ``requests`` vs azure-mgmt-resource's client.

    Returns both outcomes and the server's dispatcher times of the measured calls (both clients').
    """
    from azure.mgmt.resource.resources import ResourceManagementClient

    emu = traffic.emu
    client = ResourceManagementClient(credential, subscription, base_url=emu.endpoint,
                                      credential_scopes=[LOCAL_SCOPE], connection_verify=emu.ca)
    group = traffic.groups[0]
    call = Call("get_group", "GET", traffic.group_url(group))
    session = traffic.session()
    raw, sdk = Outcome(), Outcome()
    for _ in range(5):  # warm up: token cache, connection pool, lazy imports
        client.resource_groups.get(group)
        traffic.send(session, call)
    _, seq = server_times(emu, 0)
    for _ in range(cfg.sdk_calls):
        t0 = time.perf_counter()
        error = traffic.send(session, call)
        t1 = time.perf_counter()
        raw.record("get_group", (t1 - t0) * 1000, error)
        try:
            got = client.resource_groups.get(group)
            error = None if got.name == group else f"get_group: wrong group {got.name}"
        except Exception as exc:  # an SDK failure is a result to report, not a crash
            error = f"get_group: {type(exc).__name__}"
        sdk.record("get_group", (time.perf_counter() - t1) * 1000, error)
    server, _ = server_times(emu, seq)
    for out in (raw, sdk):  # sequential: each client's rate is one over its own time per call
        out.elapsed_s = sum(out.latency_ms) / 1000
    session.close()
    client.close()
    return raw, sdk, server


def server_times(emu: LocalAzure, since: int) -> tuple[list[float], int]:
    """Dispatcher milliseconds of the ARM calls logged after ``since`` (the log keeps the last 5000)."""
    snap = emu.ops("GET", "requests", since=since)
    ms = [e["ms"] for e in snap["entries"] if not e["operation"].startswith("emulator/")]
    return ms, int(snap["total"])


# the run ---------------------------------------------------------------------------------------
@contextmanager
def local_azure() -> Iterator[LocalAzure]:
    """A fresh local Azure in a temporary directory, always stopped (by PID) on the way out."""
    with tempfile.TemporaryDirectory(prefix="bench-local-azure-") as tmp:
        emu = LocalAzure(Path(tmp), time_factor=0.0)
        try:
            emu.start()
            yield emu
        finally:
            emu.stop()


def phase_result(name: str, out: Outcome, server_ms: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "phase": name,
        "requests": len(out.latency_ms),
        "elapsed_s": out.elapsed_s,
        "achieved_rps": len(out.latency_ms) / out.elapsed_s if out.elapsed_s > 0 else 0.0,
        "errors": sum(out.errors.values()),
        "error_kinds": dict(out.errors),
        "mix": dict(out.kinds),
        "latency": summary(out.latency_ms),
        "latency_by_kind": {k: summary(v) for k, v in sorted(out.by_kind.items())},
        **extra,
    }
    if out.lag_ms:
        result["service_time"] = summary(out.service_ms)
        result["send_lag"] = summary(out.lag_ms)
    if server_ms is not None:
        result["server_dispatch"] = summary(server_ms)
    return result


def run(cfg: Config) -> dict[str, Any]:
    from azure.identity import ClientSecretCredential

    report: dict[str, Any] = {
        "benchmark": "emulator_latency",
        "config": asdict(cfg),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "phases": {},
    }
    with local_azure() as emu:
        info = emu.info
        subscription = str(info["subscription_id"])
        report["emulator"] = {"endpoint": emu.endpoint, "pid": emu.proc.pid if emu.proc else None}
        credential = ClientSecretCredential(
            tenant_id=str(info["tenant_id"]), client_id="bench-latency", client_secret="local-secret",
            authority=emu.endpoint, disable_instance_discovery=True, connection_verify=emu.ca,
        )
        traffic = Traffic(emu, credential.get_token(LOCAL_SCOPE).token, subscription)
        traffic.prepare(cfg.groups)
        _, seq = server_times(emu, 0)
        phases = report["phases"]
        if "open" in cfg.phases:
            out = open_loop(traffic, cfg)
            server, seq = server_times(emu, seq)
            phases["open"] = phase_result(f"open loop @ {cfg.rate:g}/s", out, server, planned_rps=cfg.rate)
            p99 = phases["open"]["latency"]["p99_ms"]
            report["target"] = {"p99_ms": cfg.target_ms, "rate": cfg.rate, "measured_p99_ms": p99,
                                "ratio": p99 / cfg.target_ms, "met": p99 < cfg.target_ms}
        if "closed" in cfg.phases:
            out = closed_loop(traffic, cfg)
            server, seq = server_times(emu, seq)
            phases["closed"] = phase_result(f"closed loop, {cfg.clients} clients", out, server, clients=cfg.clients)
        if "sdk" in cfg.phases:
            raw, sdk, server = sdk_vs_raw(traffic, credential, subscription, cfg)
            phases["raw_get"] = phase_result("sequential GET, requests", raw)
            phases["sdk_get"] = phase_result("sequential GET, SDK", sdk, server)
            sdk_p50, raw_p50 = phases["sdk_get"]["latency"]["p50_ms"], phases["raw_get"]["latency"]["p50_ms"]
            phases["sdk_get"]["overhead_p50_ms"] = sdk_p50 - raw_p50
            phases["sdk_get"]["sdk_over_raw_p50"] = sdk_p50 / raw_p50
        credential.close()
    return report


# output ----------------------------------------------------------------------------------------
def table(report: dict[str, Any]) -> str:
    head = f"{'phase':<34}{'n':>7}{'req/s':>9}{'err':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"
    lines = ["local Azure request latency (ms)", head, "-" * len(head)]

    def row(label: str, stats: dict[str, float], rps: str = "", err: str = "") -> None:
        lines.append(f"{label:<34}{int(stats['count']):>7}{rps:>9}{err:>6}{stats['p50_ms']:>9.2f}"
                     f"{stats['p90_ms']:>9.2f}{stats['p99_ms']:>9.2f}{stats['max_ms']:>9.2f}")

    for phase in report["phases"].values():
        row(phase["phase"], phase["latency"], f"{phase['achieved_rps']:.1f}", str(phase["errors"]))
        if "service_time" in phase:
            row("  service time (send → answer)", phase["service_time"])
            row("  send lag (planned → send)", phase["send_lag"])
        if "server_dispatch" in phase:
            row("  server dispatcher", phase["server_dispatch"])
        if len(phase["latency_by_kind"]) > 1:
            for kind, stats in phase["latency_by_kind"].items():
                row(f"  {kind}", stats)
    phases = report["phases"]
    if "sdk_get" in phases:
        sdk = phases["sdk_get"]
        lines.append(f"SDK client overhead per GET: {sdk['overhead_p50_ms']:+.2f} ms at p50 "
                     f"({sdk['sdk_over_raw_p50']:.2f}x the raw request)")
    if "target" in report:
        t = report["target"]
        verdict = "met" if t["met"] else "MISSED"
        note = "" if t["rate"] == TARGET_RATE else f"; the target is defined at {TARGET_RATE:g} req/s"
        lines.append(f"target p99 < {t['p99_ms']:g} ms at {t['rate']:g} req/s: p99 = {t['measured_p99_ms']:.2f} ms, "
                     f"p99/target = {t['ratio']:.2f} ({verdict}{note})")
    for phase in phases.values():
        for kind, n in phase["error_kinds"].items():
            lines.append(f"errors in {phase['phase']}: {n} x {kind}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[Config, str | None]:
    d = Config()
    p = argparse.ArgumentParser(prog="python -m bench.emulator_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=d.rate, help="open loop: requests per second")
    p.add_argument("--duration", type=float, default=d.duration, help="open loop: seconds")
    p.add_argument("--workers", type=int, default=d.workers, help="open loop: sender threads (connections)")
    p.add_argument("--clients", type=int, default=d.clients, help="closed loop: concurrent clients")
    p.add_argument("--closed-duration", type=float, default=d.closed_duration, help="closed loop: seconds")
    p.add_argument("--sdk-calls", type=int, default=d.sdk_calls, help="sequential GETs through each client")
    p.add_argument("--groups", type=int, default=d.groups, help="resource groups the mix reads and writes")
    p.add_argument("--target-ms", type=float, default=d.target_ms, help="the p99 target at --rate")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--phases", default=",".join(d.phases), help="comma-separated subset of open,closed,sdk")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    a = p.parse_args(argv)
    phases = tuple(x.strip() for x in a.phases.split(",") if x.strip())
    unknown = set(phases) - set(d.phases)
    if unknown:
        p.error(f"unknown phases: {', '.join(sorted(unknown))}")
    limits = (a.rate > 0, 0 < a.duration <= 600, 1 <= a.workers <= 256, 1 <= a.clients <= 256,
              0 < a.closed_duration <= 600, 1 <= a.sdk_calls <= 100_000, 1 <= a.groups <= 1000)
    if not all(limits) or a.rate * a.duration > 1_000_000:
        p.error("out of bounds: rate > 0, durations 0-600 s, workers/clients 1-256, sdk-calls 1-100000, groups 1-1000")
    cfg = Config(rate=a.rate, duration=a.duration, workers=a.workers, clients=a.clients,
                 closed_duration=a.closed_duration, sdk_calls=a.sdk_calls, groups=a.groups,
                 target_ms=a.target_ms, seed=a.seed, phases=phases)
    return cfg, a.json


def main(argv: list[str] | None = None) -> int:
    cfg, json_path = parse_args(argv)
    report = run(cfg)
    print(table(report))
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
