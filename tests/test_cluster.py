"""A real multi-node Ray cluster: a head and two worker nodes, each a ``ray start`` in its own network
namespace, with a real ``redis-server`` as the run store.

The test builds the network itself and removes it at the end: a namespace ``<tag>-hub`` holding a
bridge, and per node a namespace ``<tag>-<node>`` whose ``eth0`` (a veth into the hub's bridge) has
the address 10.231.0.N/24. Nothing is added to the host's own namespace, so no address outside
these namespaces is used or touched. The worker nodes also run in a mount namespace of their own
where the test's folder (the trace file, the driver's outputs and work folders) is covered by an
empty tmpfs: a shard on a worker node sees nothing of the driver's disk, so the run only works if
the trace pieces come through Ray and scratch files stay on the node.

The driver runs in the head's namespace (``python tests/test_cluster.py <json>``, see ``_driver``),
as a job submitted on a head node would. Needs root (``ip netns``), iproute2 and redis-server;
.ci/run installs both. Where namespaces are unavailable (or with ``MEMCG_REPLAY_TEST_CLUSTER=local``)
the same tests run on ``ray.cluster_utils.Cluster`` (``LocalCluster``) with ``REDIS_URL`` as the store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NET = "10.231.0"
NODES = ("head", "w1", "w2")  # the tests' cluster: addresses NET.1, NET.2, NET.3
GCS_PORT, REDIS_PORT = 6379, 6390
#: node death is noticed after failure_threshold health checks (Ray's default: 5 x 3 s)
FAST_HEALTH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "1000",
               "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "1000"}

# 4 machines x 10 simulated minutes in 60 s rounds, a checkpoint every 120 s
QUICK = ("policy=none", "executor.shards=4", "executor.step_s=60", "executor.checkpoint_every_s=120",
         "executor.checkpoint_min_wall_s=0", "executor.timeout_s=120", "plots=false", "fleet.machines=4")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


def netns_usable() -> str:
    """'' when this process can make network namespaces and run the nodes, else why not."""
    for tool in ("ip", "unshare", "redis-server"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "ip netns needs root"
    probe = f"mrprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"ip netns add failed: {getattr(exc, 'stderr', b'') or exc}"
    return ""


class NetnsCluster:
    """Three Ray nodes and a redis-server in network namespaces of their own (see the module docstring)."""

    def __init__(self, root: Path, hidden: Path, workers: int = 2, cpus: int = 1) -> None:
        self.root, self.hidden = root, hidden  # root: short (Ray's socket paths), hidden: the driver's folder
        self.nodes = ("head", *(f"w{i + 1}" for i in range(workers)))  # addresses NET.1, NET.2, ...
        self.cpus = cpus  # Ray CPUs per node
        self.tag = f"mr{os.getpid()}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.made: list[str] = []
        self.bin = str(Path(sys.executable).parent)

    def ns(self, node: str) -> str:
        return f"{self.tag}-{node}"

    def ip_of(self, node: str) -> str:
        return f"{NET}.{self.nodes.index(node) + 1}"

    @property
    def address(self) -> str:
        return f"{self.ip_of('head')}:{GCS_PORT}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.ip_of('head')}:{REDIS_PORT}/0"

    def worker_addresses(self) -> str:
        return ", ".join(self.ip_of(n) for n in self.nodes[1:])

    def env(self, node: str) -> dict[str, str]:
        tmp = self.root / node / "tmp"  # the node's TMPDIR: its shards' scratch folders
        tmp.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "REDIS_URL"}
        return dict(env, **FAST_HEALTH, RAY_TMPDIR=str(self.root / node), TMPDIR=str(tmp), RAY_AUTH_MODE="disabled",
                    RAY_USAGE_STATS_ENABLED="0", PATH=f"{self.bin}:{env.get('PATH', '')}", PYTHONPATH=str(ROOT))

    def up(self) -> None:
        hub = self.ns("hub")
        _ip("netns", "add", hub)
        self.made.append(hub)
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        for node in self.nodes:
            ns = self.ns(node)
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", hub, "link", "add", f"v-{node}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", hub, "link", "set", f"v-{node}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.ip_of(node)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        self._start("redis", "head", ["redis-server", "--bind", self.ip_of("head"), "--port", str(REDIS_PORT),
                                      "--save", "", "--appendonly", "no", "--dir", str(self.root),
                                      "--protected-mode", "no"])  # no password: the namespaces are private
        common = [f"--num-cpus={self.cpus}", "--object-store-memory=100000000", "--disable-usage-stats", "--block"]
        # each node its own temp dir (a worker node would otherwise share the head's session folder)
        self._start("head", "head", ["ray", "start", "--head", f"--node-ip-address={self.ip_of('head')}",
                                     f"--port={GCS_PORT}", "--include-dashboard=false",
                                     f"--temp-dir={self.root / 'head' / 'ray'}", *common])
        self._wait_started("head")  # a worker (or a driver) started before the head's GCS listens is refused
        for node in self.nodes[1:]:
            self._start(node, node, ["ray", "start", f"--address={self.address}",
                                     f"--node-ip-address={self.ip_of(node)}", f"--temp-dir={self.root / node / 'ray'}",
                                     *common], hide=True)
        for node in self.nodes[1:]:
            self._wait_started(node)

    def _wait_started(self, name: str, timeout_s: float = 240.0) -> None:
        """Wait until ``ray start`` of ``name`` says its runtime is up (slow on a loaded box); fail with its log."""
        log = self.root / f"{name}.log"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if b"Ray runtime started" in log.read_bytes():
                return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.25)
        raise RuntimeError(f"ray start of {name} did not come up within {timeout_s:.0f} s:\n"
                           + log.read_text(errors="replace")[-3000:])

    def _start(self, name: str, node: str, argv: list[str], hide: bool = False) -> None:
        if hide:  # the node's own mount namespace: the driver's folder is an empty tmpfs there
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs -o size=1m hidden "$0" && exec "$@"', str(self.hidden), *argv]
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 -- closed with the process
        self.procs[name] = subprocess.Popen(["ip", "netns", "exec", self.ns(node), *argv], env=self.env(node),
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def pids(self, node: str) -> list[int]:
        """Every process in the node's network namespace."""
        out = subprocess.run(["ip", "netns", "pids", self.ns(node)], capture_output=True, text=True, timeout=60, check=False)
        return [int(p) for p in out.stdout.split()]

    def kill_node(self, node: str) -> int:
        """SIGKILL everything in the node's namespace (raylet, object store, workers); returns how many."""
        return _kill(self.pids(node))

    def down(self) -> None:
        for ns in reversed(self.made):
            node = ns.rsplit("-", 1)[1]
            if node != "hub":
                self.kill_node(node)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=60, check=False)
        self.made = []

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def drive(self, job: dict, timeout: float = 240) -> dict:
        """Run ``_driver(job)`` in the head's namespace; returns what it wrote."""
        out = self.hidden / f"job-{time.monotonic_ns()}.json"
        job = dict(job, out=str(out), address=self.address, tag=self.tag)
        proc = subprocess.run(["ip", "netns", "exec", self.ns("head"), sys.executable, __file__, json.dumps(job)],
                              env=dict(self.env("head"), RAY_ADDRESS=self.address), cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if not out.exists():
            logs = "\n".join(f"{n} log:\n{self.log(n)}" for n in self.nodes)
            raise AssertionError(f"driver failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n{logs}")
        return dict(json.loads(out.read_text()), stderr=proc.stderr)


class LocalCluster:
    """Where network namespaces are unavailable: ``ray.cluster_utils.Cluster``, a head and two worker
    raylets on this host (one address for all), ``REDIS_URL`` as the store. Each node has its own
    TMPDIR (scratch folders); the driver's folder is not hidden from the worker nodes, and losing a
    node is its raylet killed (its workers and object store go with it)."""

    def __init__(self, root: Path, hidden: Path, redis_url: str) -> None:
        self.root, self.hidden, self.redis_url = root, hidden, redis_url
        self.tag = f"mr{os.getpid()}"
        self.nodes = NODES
        self.by_name: dict = {}

    def up(self) -> None:
        from ray.cluster_utils import Cluster

        common = {"num_cpus": 1, "object_store_memory": 100_000_000}
        fast = {k[4:]: int(v) for k, v in FAST_HEALTH.items()}  # RAY_health_check_... -> health_check_...
        self.cluster = Cluster(initialize_head=True, head_node_args=dict(
            common, include_dashboard=False, env_vars=self._env("head"), _system_config=fast))
        self.by_name["head"] = self.cluster.head_node
        for node in NODES[1:]:
            self.by_name[node] = self.cluster.add_node(**common, env_vars=self._env(node))
        self.cluster.wait_for_nodes()

    def _env(self, node: str) -> dict[str, str]:
        tmp = self.root / node / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {"TMPDIR": str(tmp)}

    @property
    def address(self) -> str:
        return self.cluster.address

    def worker_addresses(self) -> str:
        return self.cluster.head_node.node_ip_address

    def down(self) -> None:
        if hasattr(self, "cluster"):
            self.cluster.shutdown()

    def drive(self, job: dict, timeout: float = 240) -> dict:
        from ray._private import ray_constants

        victims = {n.node_id: {"pids": [p.process.pid for p in n.all_processes[ray_constants.PROCESS_TYPE_RAYLET]]}
                   for name, n in self.by_name.items() if name != "head"}
        out = self.hidden / f"job-{time.monotonic_ns()}.json"
        job = dict(job, out=str(out), address=self.address, tag=self.tag, victims=victims)
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        proc = subprocess.run([sys.executable, __file__, json.dumps(job)], env=dict(env, RAY_ADDRESS=self.address),
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
        if not out.exists():
            raise AssertionError(f"driver failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return dict(json.loads(out.read_text()), stderr=proc.stderr)


# -- the driver, run in the head's namespace -----------------------------------------------------
def _driver(job: dict) -> None:
    import io

    from hydra import compose, initialize_config_dir

    from replay.app import run, run_command
    from replay.config import RayCfg, register_configs, to_config
    from replay.executors import alive_nodes, ensure_ray

    # Ctrl-C raises KeyboardInterrupt here whatever this process inherited: a suite started as a background
    # job (``cmd &`` in a script, nohup) ignores SIGINT, and the interrupted run then went on to the end
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ensure_ray(RayCfg(address=job["address"]))
    deadline = time.monotonic() + 120
    while len(alive_nodes()) < job.get("nodes", 3):  # the worker nodes may still be joining
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(alive_nodes())} Ray nodes came up")
        time.sleep(0.5)
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = to_config(compose(config_name="config", overrides=job["overrides"]))
    seen: dict = {"nodes_alive": len(alive_nodes())}
    by_ip = {n["NodeManagerAddress"]: n["NodeID"] for n in alive_nodes()}

    def hook(k: int, executor) -> None:
        import ray

        if k == job.get("kill_at"):
            seen["before"] = executor.nodes()
            # a worker node that holds a shard: its namespace, or (LocalCluster) its raylet's pid
            victims = job.get("victims") or {by_ip[f"{NET}.{i + 1}"]: {"ns": f"{job['tag']}-{node}"}
                                               for i, node in enumerate(NODES) if i and f"{NET}.{i + 1}" in by_ip}
            seen["victim_id"], how = next((n, v) for n, v in victims.items() if n in seen["before"])
            if "ns" in how:
                seen["killed"] = _kill_ns(how["ns"])
            else:  # the raylet and the shard actors on its node, at once (workers notice a dead raylet late)
                here = [p for p, n in zip(executor.pids(), seen["before"]) if n == seen["victim_id"]]
                seen["killed"] = _kill(how["pids"] + here)
        if k == job.get("check_at"):
            seen["after"] = executor.nodes()
            seen["restored"] = ray.get([a.restored_from.remote() for a in executor.actors], timeout=120)
        if k == job.get("interrupt_at"):
            seen["scratch"] = sorted(str(p.relative_to(job["root"])) for p in Path(job["root"]).glob(
                "*/tmp/memcg-replay-scratch/*/*"))
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as a user would
    if job.get("command"):
        err = io.StringIO()
        seen["status"] = run_command(cfg, err, hook)
        seen["error"] = err.getvalue()
    else:
        res = run(cfg, hook)
        seen["resumed"] = res.resumed
        seen["run_dir"] = res.run_dir
    seen["left_scratch"] = sorted(str(p) for p in Path(job["root"]).glob("*/tmp/memcg-replay-scratch/*"))
    Path(job["out"]).write_text(json.dumps(seen))


def _kill_ns(ns: str) -> int:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=60, check=False)
    return _kill([int(p) for p in out.stdout.split()])


def _kill(pids: list[int]) -> int:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


# -- the tests ------------------------------------------------------------------------------------
pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The namespaces' cluster; else (or with MEMCG_REPLAY_TEST_CLUSTER=local) ``LocalCluster`` when
    REDIS_URL names a Redis; else skip."""
    why = netns_usable() if os.environ.get("MEMCG_REPLAY_TEST_CLUSTER", "netns") == "netns" else "not asked for"
    if why and not os.environ.get("REDIS_URL"):
        pytest.skip(f"no network namespaces here ({why}) and no REDIS_URL for ray.cluster_utils.Cluster")
    root = Path(tempfile.mkdtemp(prefix="mrc-", dir="/tmp"))  # short: Ray's socket paths
    hidden = tmp_path_factory.mktemp("driver")
    c = LocalCluster(root, hidden, os.environ["REDIS_URL"]) if why else NetnsCluster(root, hidden)
    try:
        c.up()
        yield c
    finally:
        try:
            c.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _trace(folder: Path) -> Path:
    """A 4-machine file trace (the tiny preset) in the driver's folder, which worker nodes cannot see."""
    import dataclasses

    from traces.generate import PRESETS, generate
    from traces.io import write_trace

    path = folder / "trace.parquet"
    if not path.exists():
        write_trace(generate(dataclasses.replace(PRESETS["tiny"], machines=4), 7), path)
    return path


def _files(run_dir: str, policy: str, seed: int = 0) -> dict[str, bytes]:
    from replay.outputs import partition_files

    return {n: Path(run_dir, rel).read_bytes() for n, rel in partition_files(policy, seed).items()}


def _local(compose_replay, *overrides: str, output: str) -> str:
    from replay.app import run

    return run(compose_replay("executor=local", *QUICK, *overrides, "store.cache=false", output=output)).run_dir


def _job(c: NetnsCluster, name: str, *overrides: str, **extra) -> dict:
    over = ["executor=ray", *QUICK, *overrides, f"output_dir={c.hidden / name}", "progress=true", f"store.namespace={c.tag}"]
    return c.drive(dict(extra, overrides=over, root=str(c.root)))


def test_the_embedded_store_is_refused_on_a_multi_node_cluster(cluster):
    got = _job(cluster, "embedded", "trace=tiny", f"store.embedded_path={cluster.hidden / 'store.pkl'}",
               command=True)
    assert got["nodes_alive"] == 3
    assert got["status"] == 2, got
    [line] = got["error"].splitlines()
    assert line.startswith("error: store: the embedded run store listens on this machine's loopback only")
    assert f"2 other nodes ({cluster.worker_addresses()})" in line and "use store=redis" in line


def test_driver_interrupted_then_rerun_resumes_from_the_store(cluster, compose_replay):
    """Synthetic, two policies: shards generate their machines' events into their node's scratch
    folder (the driver's folder is invisible to them), Ctrl-C stops the driver, the rerun resumes."""
    both = ("trace=tiny", "policy.names=[none,reparent]")
    ref = _local(compose_replay, *both, output="ref-synth")
    store = ("store=redis", f"store.url={cluster.redis_url}")
    stopped = _job(cluster, "synth", *both, *store, command=True, interrupt_at=4)  # t=300 s, last commit 240 s
    assert stopped["status"] == 130, stopped
    assert stopped["error"].startswith("error: interrupted; run the same command again to resume")
    # the shards had left their generated events on their own nodes, among them the worker nodes
    nodes_with_scratch = {s.split("/")[0] for s in stopped["scratch"]}
    assert {"w1", "w2"} <= nodes_with_scratch, stopped["scratch"]
    assert stopped["left_scratch"] == []  # ... and the run removed them from every node as it stopped
    again = _job(cluster, "synth", *both, *store)
    assert again["resumed"] == {"none": 240_000_000}
    for p in ("none", "reparent"):
        assert _files(again["run_dir"], p) == _files(ref, p), p
    assert again["left_scratch"] == []
    assert "[setup] 4 machines in 1 wave of 4 shards" in again["stderr"]  # progress before the first round


def test_a_worker_node_lost_mid_run_gives_bit_identical_results(cluster, compose_replay):
    """Kill every process of a worker node (raylet, object store, shard actors) after round 2: its
    shards restart on the surviving nodes from their 120 s checkpoints; the trace file exists on the
    driver's disk only, its pieces reach the new actors through Ray."""
    trace = ("trace=file", f"trace.path={_trace(cluster.hidden)}")
    ref = _local(compose_replay, *trace, output="ref-file")
    t0 = time.monotonic()
    got = _job(cluster, "lost", *trace, "store=redis", f"store.url={cluster.redis_url}", "store.cache=false",
               kill_at=2, check_at=5)
    victim = got["victim_id"]
    moved = [i for i, n in enumerate(got["before"]) if n == victim]
    assert moved and got["killed"] > 0
    assert victim not in got["after"]  # every shard now runs on a surviving node ...
    assert all(got["restored"][i] == 120_000_000 for i in moved), got["restored"]  # ... from its checkpoint
    assert _files(got["run_dir"], "none") == _files(ref, "none")
    print(f"node-loss run: {time.monotonic() - t0:.1f} s")


# -- sizing and progress, without the namespaces ------------------------------------------------
def _spec(machines: int, events: int, pack: bool = False):
    from replay.shard import ShardSpec

    return ShardSpec(0, [f"m-{i:04d}" for i in range(machines)], 0, "", {}, "none", 0, 60_000_000,
                     pack=pack, events=events)


def test_shard_memory_grows_with_machines_and_events_and_can_be_set():
    from replay.config import ExecutorCfg
    from replay.executors import shard_memory_mib

    auto = ExecutorCfg()
    small, more_events, more_machines = (shard_memory_mib(_spec(10, 1000), auto),
                                         shard_memory_mib(_spec(10, 100_000_000), auto),
                                         shard_memory_mib(_spec(1000, 1000), auto))
    assert small < more_machines < more_events  # 100M events (~4.7 GiB) outweigh 1000 machines (~2 GiB)
    assert more_events - small == pytest.approx(100_000_000 * 49 / 2**20, abs=2)
    assert shard_memory_mib(_spec(1000, 1000, pack=True), auto) < more_machines
    assert shard_memory_mib(_spec(10, 1000), ExecutorCfg(shard_memory_mib=777)) == 777
    assert shard_memory_mib(_spec(10, 1000), ExecutorCfg(shard_memory_mib=-1)) == 0


def test_shard_count_grows_until_each_shard_fits_the_largest_node(ray_session):
    from replay.config import ExecutorCfg
    from replay.executors import EVENT_BYTES, alive_nodes, ray_cpus, shard_count, shards_to_fit

    assert shards_to_fit(100, 50_000_000, False, [1000, 600]) == 4  # 200 + 2384 MiB over 744 MiB of room
    assert shards_to_fit(100, 50_000_000, True, [1000]) == 4  # 20 + 2384 MiB
    assert shards_to_fit(100, 1000, False, [1000]) == 1
    assert shards_to_fit(100, 1000, False, []) == 1  # no node says how much memory it has
    node_mib = max(int(n["Resources"]["memory"]) >> 20 for n in alive_nodes())
    events = node_mib * 3 * (1 << 20) // EVENT_BYTES  # three nodes' worth of events
    auto = ExecutorCfg(kind="ray")
    assert shard_count(auto, 1000, 1000) == ray_cpus() == 2  # small: one shard per CPU
    assert shard_count(auto, 10, events) == 4  # 3 nodes' worth plus the actors' base memory
    assert shard_count(auto, 3, events) == 3  # never more shards than machines
    assert shard_count(ExecutorCfg(kind="ray", shards=2), 1000, events) == 2  # an explicit count stays
    assert shard_count(ExecutorCfg(kind="ray", shard_memory_mib=100), 1000, events) == 2  # so does an explicit size


def test_shards_that_do_not_fit_the_nodes_are_refused_before_any_actor_starts(ray_session):
    from core.errors import ConfigError
    from replay.config import ExecutorCfg, RayCfg
    from replay.executors import RayExecutor, alive_nodes

    node_mib = max(int(n["Resources"]["memory"]) >> 20 for n in alive_nodes())
    ex = RayExecutor(ExecutorCfg(shard_memory_mib=node_mib + 1), RayCfg())
    with pytest.raises(ConfigError, match=r"a shard needs about [\d,]+ MiB and the largest Ray node offers"):
        ex.start([_spec(1, 10)])
    ex = RayExecutor(ExecutorCfg(shard_memory_mib=node_mib // 2 + 1), RayCfg())
    with pytest.raises(ConfigError, match=r"3 shards need about [\d,]+ MiB and the Ray cluster offers"):
        ex.start([_spec(1, 10)] * 3)
    assert ex.actors == []


def test_cleanup_removes_the_runs_scratch_folder_and_survives_a_node_it_cannot_reach(ray_session, monkeypatch):
    import replay.executors as ex
    from replay.config import ExecutorCfg, RayCfg
    from replay.shard import node_scratch

    executor = ex.RayExecutor(ExecutorCfg(timeout_s=60), RayCfg())
    left = Path(node_scratch(executor.scratch), "synth-0000.parquet")  # this host is the session's one node
    left.parent.mkdir(parents=True)
    left.write_bytes(b"events")
    other = Path(node_scratch("run-of-someone-else"))
    other.mkdir(parents=True, exist_ok=True)
    real = ex.alive_nodes()
    gone = dict(real[0], NodeID="ab" * 28)  # a node listed alive that no longer exists
    monkeypatch.setattr(ex, "alive_nodes", lambda: [gone, *real])
    t0 = time.monotonic()
    executor.cleanup()
    assert not left.parent.exists() and other.exists()
    assert time.monotonic() - t0 < ex.CLEANUP_S + 10
    other.rmdir()


def test_setup_is_reported_before_the_first_round(compose_replay, capsys, monkeypatch):
    from replay import app

    monkeypatch.setattr(app, "_PER_MACHINE", {})
    app.run(compose_replay("executor=local", *QUICK, "trace=tiny", "executor.shards=2", "progress=true",
                       "+trace.params.duration_s=120", output="notes"))
    err = capsys.readouterr().err.splitlines()
    first_round = next(i for i, line in enumerate(err) if "|" in line and "sim " in line)
    assert err[:first_round] == ["[setup] local executor",
                                 "[setup] 4 machines in 1 wave of 2 shards; 1 policy to replay",
                                 "[none] setting up shard 1/2 (2 machines)",
                                 "[none] setting up shard 2/2 (2 machines)"]
    assert app._PER_MACHINE == {}  # in-process nothing is sized: no machine generated to estimate events


if __name__ == "__main__":
    _driver(json.loads(sys.argv[1]))
