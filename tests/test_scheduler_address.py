"""`--scheduler`: an address is checked before any work and refused in one line if it is not one we can
reach; a scheduler that does not answer ends the run in one line within a bounded time, never a hang."""

from __future__ import annotations

import pytest
from conftest import random_images
from helpers import assert_one_line_error, call_within, cli, silent_server

from nu_keras import cluster
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError


@pytest.mark.parametrize(
    "address",
    ["ucx://127.0.0.1:1", "tls://127.0.0.1:8786", "local:²", "local:٣", "local:0", "local:65"]
    + ["tcp://127.0.0.1", "tcp://127.0.0.1:0", "tcp://127.0.0.1:70000", "127.0.0.1:８７８６", "tcp://a b:1"],
)
def test_an_address_we_cannot_use_is_refused_in_one_line_before_any_work(tmp_path, fake_npz, address):
    argv = ["sweep", "--scheduler", address, "--seeds", "1", "--data", str(fake_npz), "--out", str(tmp_path / "a")]
    assert_one_line_error(cli(argv), "--scheduler must be a Dask scheduler address", "tcp://HOST:PORT", "local:N")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    "address",
    ["tcp://10.0.0.5:8786", "10.0.0.5:8786", "tcp://[::1]:8786", "scheduler.example.org:8786", "local:1", "local:64"],
)
def test_tcp_addresses_and_local_clusters_are_accepted(address):
    assert RunConfig(scheduler=address).scheduler == address


def test_a_port_that_accepts_but_never_speaks_dask_is_refused_within_the_connect_time(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 2.0)
    with silent_server() as port:
        cfg = RunConfig(scheduler=f"tcp://127.0.0.1:{port}")
        with pytest.raises(NuKerasError, match="no Dask handshake within 2 s"):
            call_within(30, lambda: cluster.run_blocks(random_images(), cfg, [(10, [0])]))
