"""Scenario 7: the password in the connection's Secret is rotated and the old one stops working."""

import time

import pytest

from tests.integration.support import condition

from .tools import connect

pytestmark = pytest.mark.apiserver


def test_password_rotation_is_picked_up_without_a_restart(cluster, emulator, operator, report):
    row = report("7. Secret rotation (old password stops working on the server, Secret updated 1 s later)",
                 "same process picks up the new password at the first 401 (syncInterval 60 s, so not by the periodic "
                 "re-read): flips made after the rotation converge within 15 s, twice; the connection stays/is "
                 "Connected; requests after the Secret update authenticate; no password in logs")
    emu = emulator(auto_trigger=False, users={"op": {"password": "pw-one", "privileges": ["manage_rollup", "monitor"]}})
    emu.add_job("r1", state="stopped")
    emu.add_job("r2", state="started")
    cluster.secret("creds", {"username": "op", "password": "pw-one"})
    connect(cluster, emu, syncInterval="60s", auth={"basic": {"secretRef": {"name": "creds"}}})
    cluster.job("r1", "stopped")
    cluster.job("r2", "started")
    op = operator()
    cluster.wait_ready("r1", timeout=20)
    cluster.wait_ready("r2", timeout=20)
    pid = op.proc.pid

    t_rotate = time.time()
    emu.set_user_password("op", "pw-two")  # the old password stops working now
    time.sleep(1.0)
    cluster.secret("creds", {"username": "op", "password": "pw-two"})
    t_secret = time.time()
    cluster.set_desired("r1", "started")
    cluster.set_desired("r2", "stopped")
    r1 = cluster.wait_ready("r1", timeout=15)
    r2 = cluster.wait_ready("r2", timeout=15)
    t_ready = time.time()
    assert emu.job_state("r1") == "started" and emu.job_state("r2") == "stopped"
    assert r1["status"]["jobState"] == "started" and r2["status"]["jobState"] == "stopped"
    # and it keeps converging: one more flip each
    cluster.set_desired("r1", "stopped")
    cluster.set_desired("r2", "started")
    cluster.wait_ready("r1", timeout=15)
    cluster.wait_ready("r2", timeout=15)
    conn = cluster.wait("es", lambda o: condition(o, "Ready").get("reason") == "Connected", timeout=10,
                        plural="elasticsearchconnections", what="connection Connected")
    assert conn["status"]["reachable"] is True
    assert op.alive() and op.proc.pid == pid
    reqs = [r for r in emu.requests() if r.timestamp > t_rotate]
    rejected = [r for r in reqs if r.status == 401]
    accepted = [r for r in reqs if r.timestamp > t_secret and r.status < 400]
    assert accepted and all(r.user == "op" for r in accepted)
    assert not [r for r in reqs if r.status == 401 and r.timestamp > t_ready], "401s after convergence"
    logs = op.logs()
    assert "pw-one" not in logs and "pw-two" not in logs and "Traceback" not in logs
    row.num(rejected_401=len(rejected), flips_ready_after_secret_update_s=t_ready - t_secret,
            calls_after_rotation=len(reqs))
