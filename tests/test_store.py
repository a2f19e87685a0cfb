"""The run store on the embedded fakeredis server and on a real redis-server (``redis`` mark)."""

from __future__ import annotations

import uuid

import pytest

from replay import store as store_mod
from replay.store import RunStore, StoreError, connect, open_store, redact


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, tmp_path):
    """A RunStore in a fresh namespace on either backend."""
    ns = f"t-{uuid.uuid4().hex[:8]}"
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        s = RunStore(url, ns)
    else:
        s = RunStore(store_mod.embedded_url(), ns, str(tmp_path / "snap.pkl"))
    yield s
    s.r.delete(*(list(s.r.scan_iter(match=s.key("*"))) or ["-"]))


def test_checkpoints_keep_the_newest_and_drop_by_range(store):
    for t in (100, 300, 200):
        store.put_checkpoint("run", "lay", 0, t, f"state{t}".encode())
    assert store.latest_checkpoint("run", "lay", 0) == (300, b"state300")
    assert store.latest_checkpoint("run", "lay", 1) is None
    store.drop_checkpoints("run", "lay", 0, keep_until=200)
    assert store.latest_checkpoint("run", "lay", 0) == (200, b"state200")
    store.drop_checkpoints("run", "lay", 0, keep_from=200)
    assert sorted(store.r.hkeys(store.key("ckpt", "run", "lay", 0))) == [b"200"]


def test_commits_return_chunks_in_time_order(store):
    assert store.committed("run", "lay") == (-1, [])
    store.commit("run", "lay", 7200, b"second")
    store.commit("run", "lay", 3600, b"first")  # an older commit never hides a newer chunk order
    t, chunks = store.committed("run", "lay")
    assert t == 3600 and chunks == [b"first"]
    store.commit("run", "lay", 10800, b"third")
    assert store.committed("run", "lay") == (10800, [b"first", b"second", b"third"])


def test_result_cache_replaces_the_run_state(store):
    store.put_checkpoint("run", "lay", 0, 5, b"x")
    store.commit("run", "lay", 5, b"c")
    store.set_progress("run", {"sim_us": 5})
    assert store.get_result("run") is None
    store.put_result("run", {"a/summary.json": b"{}", "a/fleet.parquet": b"PAR1"})
    assert store.get_result("run") == {"a/summary.json": b"{}", "a/fleet.parquet": b"PAR1"}
    assert store.latest_checkpoint("run", "lay", 0) is None
    assert store.committed("run", "lay") == (-1, [])
    assert not store.r.exists(store.key("progress", "run"))


def test_finished_waves_are_kept_until_the_run_is_done(store):
    big = bytes(range(256)) * 5000  # larger than a piece
    store.put_wave("run", "wave-a", b"first wave")
    store.put_wave("run", "wave-b", big)
    assert store.get_wave("run", "wave-a") == b"first wave" and store.get_wave("run", "wave-b") == big
    assert store.get_wave("run", "wave-c") is None and store.get_wave("other", "wave-a") is None
    store.put_result("run", {"a/summary.json": b"{}"})  # the run is done: its waves go
    assert store.get_wave("run", "wave-a") is None and store.get_wave("run", "wave-b") is None
    assert not list(store.r.scan_iter(match=store.key("wave:run:*")))


def test_store_pickles_by_url_for_actors(store):
    import pickle

    clone = pickle.loads(pickle.dumps(store))
    store.put_checkpoint("run", "lay", 2, 9, b"from-driver")
    assert clone.latest_checkpoint("run", "lay", 2) == (9, b"from-driver")
    assert clone.snapshot_path is None  # only the driver persists the embedded store


def test_embedded_store_survives_a_restart_through_its_snapshot(tmp_path):
    ns = f"t-{uuid.uuid4().hex[:8]}"
    path = str(tmp_path / "snap.pkl")
    s = open_store(None, ns, path)
    s.put_result("run", {"f": b"bytes"})
    s.put_checkpoint("other", "lay", 0, 60, b"ckpt")
    s.persist()
    store_mod._EMBEDDED.stop()  # the process that held the fake server is gone
    again = open_store(None, ns, path)
    assert again.get_result("run") == {"f": b"bytes"}
    assert again.latest_checkpoint("other", "lay", 0) == (60, b"ckpt")


def test_unreachable_store_is_a_clear_error_without_the_password():
    with pytest.raises(StoreError) as err:
        connect("redis://user:s3cret@127.0.0.1:1/0", timeout_s=0.5)
    assert "unreachable" in str(err.value) and "s3cret" not in str(err.value)
    assert "***" in str(err.value)


def test_redact():
    assert redact("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"


def test_values_larger_than_a_piece_round_trip_and_are_dropped(store):
    big = bytes(range(256)) * ((3 * store_mod.CHUNK_BYTES) // 256 + 17)  # four pieces, the last partial
    store.put_checkpoint("run", "lay", 0, 100, big)
    store.put_checkpoint("run", "lay", 0, 200, big[::-1])
    assert store.latest_checkpoint("run", "lay", 0) == (200, big[::-1])
    store.drop_checkpoints("run", "lay", 0, keep_from=200)
    assert store.latest_checkpoint("run", "lay", 0) == (200, big[::-1])
    store.put_result("run", {"a/fleet.parquet": big})  # caching a result clears the run's checkpoints ...
    assert store.get_result("run") == {"a/fleet.parquet": big}
    assert not list(store.r.scan_iter(match=store.key("ckpt:run:*")))  # ... pieces included


def test_large_values_survive_a_snapshot_of_the_embedded_store(tmp_path):
    ns = f"t-{uuid.uuid4().hex[:8]}"
    snap = str(tmp_path / "snap.pkl")
    big = b"x" * (2 * store_mod.CHUNK_BYTES + 5)
    s = RunStore(store_mod.embedded_url(), ns, snap)
    s.put_checkpoint("run", "lay", 0, 7, big)
    s.persist()
    s.r.delete(*list(s.r.scan_iter(match=s.key("*"))))
    assert s.latest_checkpoint("run", "lay", 0) is None
    s.load()
    assert s.latest_checkpoint("run", "lay", 0) == (7, big)


def test_embedded_server_finishes_a_large_reply_to_a_slow_reader():
    # fakeredis' TCP server makes the socket non-blocking to poll for commands, and then wrote a reply with
    # sendall: a reply larger than the socket buffers, to a client that did not read it at once, failed with
    # EAGAIN and the server closed the connection ("Connection closed by server" mid-run, on a checkpoint read)
    import socket
    import time

    server = store_mod.EmbeddedServer()
    try:
        r = connect(server.url)
        piece = bytes(range(256)) * 2048  # 512 KiB
        for _ in range(64):  # 32 MiB in commands of a piece each (the fake server parses each whole)
            r.append("big", piece)
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
            time.sleep(1.0)  # a busy client: the server's buffers fill before it reads
            want = len(piece) * 64
            head = f"${want}\r\n".encode()
            got = bytearray()
            while len(got) < len(head) + want + 2:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
        assert bytes(got[:len(head)]) == head
        assert len(got) == len(head) + want + 2, "the server closed the connection part-way through the reply"
        assert bytes(got[len(head):len(head) + len(piece)]) == piece
    finally:
        server.stop()


def test_ctrl_c_as_the_embedded_server_prints_its_port_is_quiet_too(monkeypatch):
    # the parent reads the port as soon as it is flushed and may send Ctrl-C at once: the interrupt can be
    # raised as ``print`` returns, before the server loop starts (seen once in CI as a traceback)
    import builtins

    import replay.fake_server as fs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    served = []
    monkeypatch.setattr(builtins, "print", interrupted)
    monkeypatch.setattr(fs.TcpFakeServer, "serve_forever", lambda self, *a: served.append(1))
    try:
        fs.main()
    except KeyboardInterrupt:  # (caught here: an interrupt escaping into pytest would stop the whole session)
        pytest.fail("Ctrl-C while the port was printed escaped main() as a traceback")
    assert served == []


def test_ctrl_c_stops_the_embedded_server_without_a_traceback():
    # Ctrl-C reaches every process of the terminal's foreground group, the embedded server among them;
    # the run that started it prints the one line that says what happened
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "replay.fake_server"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert int(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode == 0
