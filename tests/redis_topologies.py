"""Redis Sentinel and Redis Cluster in child processes, and their fixtures.

`SentinelSetup` runs a master, one replica and three sentinels watching the master
under the name `SENTINEL_SERVICE`, with timings short enough for a test to kill the
master (SIGKILL) and see the sentinels fail over within a few seconds. `ClusterSetup`
runs three cluster-enabled masters joined with `redis-cli --cluster create`. Every
process listens on 127.0.0.1 only, on a free port, keeps nothing on disk, logs to its
own file in the setup's directory, and is killed at the end.

Without the executables (`redis-server`, and `redis-sentinel` or `redis-server
--sentinel`, or `redis-cli`) the tests that need them skip, except under CI (`$CI`
set), where they fail.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis

from tests.processes import TIMEOUT, free_port
from tests.redis_server import _answers_ping

__all__ = [
    "CLUSTER_NODES",
    "SENTINEL_SERVICE",
    "ClusterSetup",
    "SentinelSetup",
    "redis_cluster",
    "redis_sentinel",
    "require_redis_cli",
    "require_redis_sentinel",
]

SENTINEL_SERVICE = "bocws"
"""The name the sentinels know the master by (`SENTINEL MONITOR bocws ...`)."""

CLUSTER_NODES = 3
"""Masters in a `ClusterSetup`: the fewest `redis-cli --cluster create` accepts."""

REJOIN_TIMEOUT = 30.0
"""Seconds for a restarted node to be a replica again: a sentinel waits 8 s before it
converts an old master that came back, and may only look at it every 10 s."""

_POLL = 0.05
"""Seconds between two looks at a topology that is settling (bounded by a deadline)."""

# Loopback only, no persistence, and full resynchronisations through
# the socket at once (Redis 7.0 would otherwise wait 5 s for more replicas, and a
# replica would write the master's snapshot to its directory and load it from there).
_SERVER_OPTIONS = [
    "--bind", "127.0.0.1",
    "--save", "",
    "--appendonly", "no",
    "--daemonize", "no",
    "--loglevel", "notice",
    "--logfile", "",  # standard output: the node's log file
    "--repl-diskless-sync", "yes",
    "--repl-diskless-sync-delay", "0",
    "--repl-diskless-load", "on-empty-db",
]  # fmt: skip


def _require(name: str, why: str) -> str:
    """The path of the executable `name`; skip the test without it (fail under CI)."""
    executable = shutil.which(name)
    if executable is None:
        message = f"no {name} on PATH: {why}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return executable


def require_redis_sentinel() -> list[str]:
    """The command that starts a sentinel, before its configuration file's path.

    `redis-sentinel` (Debian's redis-sentinel package) if it is on `PATH`, else
    `redis-server` (its `--sentinel` option comes after the file); skip the test
    without either (fail under CI).
    """
    sentinel = shutil.which("redis-sentinel")
    if sentinel is not None:
        return [sentinel]
    return [_require("redis-server", "install Debian's redis-server package")]


def require_redis_cli() -> str:
    """The path of `redis-cli` (it comes with redis-server); skip without it (fail in CI)."""
    return _require("redis-cli", "install Debian's redis-tools package")


def _info(port: int, section: str) -> dict[str, str]:
    """`INFO section` of the node on 127.0.0.1:`port` as text fields; empty if it is down."""
    try:
        with redis.Redis(port=port, socket_timeout=1.0, decode_responses=True) as client:
            reply = client.execute_command("INFO", section)
    except redis.RedisError:
        return {}
    if isinstance(reply, dict):  # redis-py parses INFO into typed values
        return {str(key): str(value) for key, value in reply.items()}
    return {}  # pragma: no cover - INFO always answers a dict


class _Node:
    """A Redis process (server or sentinel) on a fixed port that answers PING.

    Args:
        name: what the log and failure messages call it (`redis`, `sentinel` ...).
        command: the full command line.
        port: the port on 127.0.0.1 the command makes it listen on.
        log: its log file (standard output and error), appended to across restarts.
    """

    def __init__(self, name: str, command: list[str], port: int, log: Path) -> None:
        self.name = name
        self.command = command
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None

    def __repr__(self) -> str:
        return f"<{self.name} 127.0.0.1:{self.port}: {'running' if self.running else 'stopped'}>"

    def start(self) -> None:
        """Start the process; return once it answers PING (within `TIMEOUT`)."""
        assert self.process is None, "already running"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + TIMEOUT
        while not _answers_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"{self.name} did not answer PING on port {self.port} within "
                    f"{TIMEOUT:g} s; its log:\n{self.log.read_text(errors='replace')}"
                )
            time.sleep(0.005)  # polling, bounded by the deadline

    def kill(self) -> None:
        """SIGKILL the process (a crash) and wait for it; nothing if it is not running."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait(TIMEOUT)


def _fail(message: str, *nodes: _Node) -> NoReturn:
    """Fail the test with `message` and the logs of `nodes`."""
    logs = "\n".join(
        f"--- {node.name} on port {node.port} ({node.log}):\n{node.log.read_text(errors='replace')}"
        for node in nodes
        if node.log.exists()
    )
    pytest.fail(f"{message}\n{logs}")


class SentinelSetup:
    """A master, one replica and three sentinels, each in a child process.

    The sentinels watch the master as `SENTINEL_SERVICE` with a quorum of 2, declare it
    down after `down_after_ms` without an answer, and fail over to the replica. Each
    process has its own subdirectory of `directory` (`redis-PORT`, `sentinel-PORT`)
    holding its log (`redis.log`, `sentinel.log`) and, for a sentinel, the configuration
    file it rewrites (`sentinel.conf`).

    Args:
        directory: where the processes' directories go (the test's `tmp_path`).
        down_after_ms: `sentinel down-after-milliseconds`.
        failover_timeout_ms: `sentinel failover-timeout`.
    """

    def __init__(
        self, directory: Path, *, down_after_ms: int = 1000, failover_timeout_ms: int = 3000
    ) -> None:
        self.directory = directory
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.service = SENTINEL_SERVICE
        self._server = _require("redis-server", "install Debian's redis-server package")
        self._sentinel = require_redis_sentinel()
        self.servers: list[_Node] = []
        """The master first, then the replica, as started (roles change on failover)."""
        self.sentinels: list[_Node] = []
        self.killed: _Node | None = None
        """The server `kill_master` killed last, until `restart_killed`."""
        self._killed_at: float | None = None

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.sentinels]

    @property
    def url(self) -> str:
        """`redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/bocws/0`."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def __repr__(self) -> str:
        return f"<SentinelSetup {self.url}: servers on {[node.port for node in self.servers]}>"

    def _server_node(self, port: int, *options: str) -> _Node:
        directory = self.directory / f"redis-{port}"
        directory.mkdir(exist_ok=True)
        command = [self._server, "--port", str(port), "--dir", str(directory)]
        return _Node("redis", [*command, *_SERVER_OPTIONS, *options], port, directory / "redis.log")

    def _sentinel_node(self, port: int, master_port: int) -> _Node:
        directory = self.directory / f"sentinel-{port}"
        directory.mkdir(exist_ok=True)
        config = directory / "sentinel.conf"
        service = self.service
        config.write_text(
            f"port {port}\n"
            "bind 127.0.0.1\n"
            "daemonize no\n"
            'logfile ""\n'
            f"dir {directory}\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {service} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {service} 1\n"
        )
        command = [*self._sentinel, str(config)]
        if not command[0].endswith("redis-sentinel"):
            command.append("--sentinel")
        return _Node("sentinel", command, port, directory / "sentinel.log")

    def start(self) -> None:
        """Start the master, its replica, then the sentinels.

        Returns once the replica is in sync and every sentinel knows the master, the
        replica and the two other sentinels, so that a failover can happen at once.
        """
        assert not self.servers, "already started"
        master_port, replica_port = free_port(), free_port()
        while replica_port == master_port:  # pragma: no cover - unlikely
            replica_port = free_port()
        master = self._server_node(master_port)
        replica = self._server_node(replica_port, "--replicaof", "127.0.0.1", str(master_port))
        self.servers = [master, replica]
        try:
            for server in self.servers:
                server.start()
            self._wait_until(
                lambda: _info(replica_port, "replication").get("master_link_status") == "up",
                "the replica did not sync with the master",
            )
            ports: set[int] = {master_port, replica_port}
            while len(ports) < 5:
                ports.add(free_port())
            sentinel_ports = sorted(ports - {master_port, replica_port})
            self.sentinels = [self._sentinel_node(port, master_port) for port in sentinel_ports]
            for sentinel in self.sentinels:
                sentinel.start()
            self._wait_until(self._sentinels_ready, "the sentinels did not find each other")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill every process (there is nothing to save); the setup can be started anew."""
        for node in [*self.sentinels, *self.servers]:
            node.kill()
        self.sentinels, self.servers, self.killed, self._killed_at = [], [], None, None

    def _wait_until(
        self, condition: Callable[[], bool], failure: str, timeout: float = TIMEOUT
    ) -> float:
        """Poll `condition()` until true; the seconds it took; fail with the logs after
        `timeout`."""
        started = time.monotonic()
        deadline = started + timeout
        while not condition():
            if time.monotonic() > deadline:
                _fail(f"{failure} within {timeout:g} s", *self.servers, *self.sentinels)
            time.sleep(_POLL)  # polling, bounded by the deadline
        return time.monotonic() - started

    def _ask(self, sentinel: _Node, *command: str) -> object:
        with redis.Redis(port=sentinel.port, socket_timeout=1.0, decode_responses=True) as client:
            return client.execute_command(*command)

    def _sentinels_ready(self) -> bool:
        try:
            for sentinel in self.sentinels:
                state = self._ask(sentinel, "SENTINEL", "MASTER", self.service)
                assert isinstance(state, dict)
                if int(state["num-other-sentinels"]) != len(self.sentinels) - 1:
                    return False
                if int(state["num-slaves"]) < 1:
                    return False
        except redis.RedisError:
            return False
        return True

    def master_addresses(self) -> list[int | None]:
        """The master's port according to each sentinel (None for one that does not
        answer)."""
        ports: list[int | None] = []
        for sentinel in self.sentinels:
            try:
                with redis.Redis(port=sentinel.port, socket_timeout=1.0) as client:
                    address = client.sentinel_get_master_addr_by_name(self.service)
                ports.append(int(address[1]) if address else None)
            except redis.RedisError:
                ports.append(None)
        return ports

    def master_port(self) -> int:
        """The master's port, as the first sentinel that answers reports it
        (`SENTINEL get-master-addr-by-name`)."""
        for port in self.master_addresses():
            if port is not None:
                return port
        _fail("no sentinel answered", *self.sentinels)

    def server(self, port: int) -> _Node:
        """The server on `port`."""
        (node,) = [node for node in self.servers if node.port == port]
        return node

    def kill_master(self) -> int:
        """SIGKILL the server that is master now; its port."""
        port = self.master_port()
        node = self.server(port)
        assert node.running, f"the sentinels' master on port {port} is not running"
        node.kill()
        self.killed, self._killed_at = node, time.monotonic()
        return port

    def wait_for_failover(self, old_port: int, timeout: float = 3 * TIMEOUT) -> float:
        """Wait until every sentinel reports a master other than `old_port`.

        Returns the seconds since `kill_master` if it was called, else since this call;
        fails with the logs after `timeout` seconds.
        """
        started = self._killed_at if self._killed_at is not None else time.monotonic()

        def failed_over() -> bool:
            ports = self.master_addresses()
            return len(set(ports)) == 1 and ports[0] not in (None, old_port)

        self._wait_until(failed_over, f"the sentinels did not fail over from {old_port}", timeout)
        return time.monotonic() - started

    def _rejoined(self, node: _Node) -> bool:
        """Whether `node` is a replica in sync with the current master, seen up by every
        sentinel."""
        replication = _info(node.port, "replication")
        if replication.get("role") != "slave" or replication.get("master_link_status") != "up":
            return False
        if replication.get("master_port") != str(self.master_port()):
            return False
        for sentinel in self.sentinels:
            try:
                replicas = self._ask(sentinel, "SENTINEL", "REPLICAS", self.service)
            except redis.RedisError:
                return False
            assert isinstance(replicas, list)
            if [r["flags"] for r in replicas if int(r["port"]) == node.port] != ["slave"]:
                return False  # unknown yet, or still flagged s_down / disconnected
        return True

    def restart_killed(self, *, wait: bool = True, timeout: float = REJOIN_TIMEOUT) -> _Node:
        """Start the server `kill_master` killed again, on its port, empty.

        It comes back with its own command line, as a supervisor would start it: the
        first master as a master, which the sentinels turn into a replica of the current
        master about 10 s later (`+convert-to-slave`); the first replica as a replica of
        the first master's port. With `wait`, returns once it is a replica in sync with
        the current master and every sentinel sees it up, so that it can be failed
        over to in turn.
        """
        node, self._killed_at = self.killed, None
        assert node is not None, "no server was killed"
        self.killed = None
        node.start()
        if wait:
            self._wait_until(
                lambda: self._rejoined(node), f"the server on {node.port} did not rejoin", timeout
            )
        return node


def _cluster_port(taken: set[int]) -> int:
    """A port below the kernel's ephemeral range whose cluster bus port (+10000) is
    also free, and not in `taken`."""
    while True:
        port = random.randrange(10000, 22768)  # the bus port: 20000 to 32767
        if port in taken or port + 10000 in taken:
            continue
        try:
            with socket.socket() as probe, socket.socket() as bus_probe:
                probe.bind(("127.0.0.1", port))
                bus_probe.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


class ClusterSetup:
    """`CLUSTER_NODES` cluster-enabled masters (no replicas) holding all 16384 slots.

    Each node has its own subdirectory of `directory` (`cluster-PORT`) holding its log
    (`redis.log`) and its cluster configuration file (`nodes.conf`).

    Args:
        directory: where the nodes' directories go (the test's `tmp_path`).
        node_timeout_ms: `cluster-node-timeout`.
    """

    def __init__(self, directory: Path, *, node_timeout_ms: int = 2000) -> None:
        self.directory = directory
        self.node_timeout_ms = node_timeout_ms
        self._server = _require("redis-server", "install Debian's redis-server package")
        self._cli = require_redis_cli()
        self.servers: list[_Node] = []
        self.log = directory / "cluster-create.log"
        """The output of `redis-cli --cluster create`."""

    @property
    def nodes(self) -> list[int]:
        """The nodes' ports."""
        return [node.port for node in self.servers]

    @property
    def url(self) -> str:
        """`redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.nodes)

    def __repr__(self) -> str:
        return f"<ClusterSetup {self.url}>"

    def _node(self, port: int) -> _Node:
        directory = self.directory / f"cluster-{port}"
        directory.mkdir(exist_ok=True)
        command = [
            self._server,
            "--port", str(port),
            "--dir", str(directory),
            *_SERVER_OPTIONS,
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(directory / "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
        ]  # fmt: skip
        return _Node("cluster node", command, port, directory / "redis.log")

    def start(self) -> None:
        """Start the nodes, join them with `redis-cli --cluster create`, and return once
        every node reports `cluster_state:ok`."""
        assert not self.servers, "already started"
        taken: set[int] = set()
        for _ in range(CLUSTER_NODES):
            port = _cluster_port(taken)
            taken |= {port, port + 10000}
            self.servers.append(self._node(port))
        try:
            for node in self.servers:
                node.start()
            addresses = [f"127.0.0.1:{port}" for port in self.nodes]
            command = [self._cli, "--cluster", "create", *addresses]
            command += ["--cluster-replicas", "0", "--cluster-yes"]
            with self.log.open("ab") as log:
                try:
                    created = subprocess.run(
                        command,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        timeout=TIMEOUT,
                        check=False,
                    )
                except subprocess.TimeoutExpired:
                    created = None
            if created is None or created.returncode != 0:
                output = self.log.read_text(errors="replace")
                _fail(f"redis-cli --cluster create failed:\n{output}", *self.servers)
            deadline = time.monotonic() + TIMEOUT
            while not all(self._cluster_state(port) == "ok" for port in self.nodes):
                if time.monotonic() > deadline:
                    _fail(f"the cluster was not ok within {TIMEOUT:g} s", *self.servers)
                time.sleep(_POLL)  # polling, bounded by the deadline
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _cluster_state(port: int) -> str | None:
        try:
            with redis.Redis(port=port, socket_timeout=1.0, decode_responses=True) as client:
                info = client.execute_command("CLUSTER INFO")
        except redis.RedisError:
            return None
        assert isinstance(info, dict)
        state = info.get("cluster_state")
        return None if state is None else str(state)

    def stop(self) -> None:
        """Kill every node (there is nothing to save); the setup can be started anew."""
        for node in self.servers:
            node.kill()
        self.servers = []

    def flush(self) -> None:
        """Empty every node (`FLUSHALL`), for a setup shared between tests."""
        for port in self.nodes:
            with redis.Redis(port=port, socket_timeout=1.0) as client:
                client.flushall()


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    """A fresh master, replica and three sentinels for one test, killed after it."""
    setup = SentinelSetup(tmp_path)
    setup.start()
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[ClusterSetup]:
    """A fresh three-node cluster for one test, killed after it."""
    setup = ClusterSetup(tmp_path)
    setup.start()
    try:
        yield setup
    finally:
        setup.stop()
