"""Starting test workers as Python subprocesses, with a time limit."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def free_ports(count):
    """`count` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(script, *args, tf_config=None):
    """Starts `python script *args` with this checkout on `PYTHONPATH`.

    `TF_CONFIG` is set to `tf_config` (as JSON) when given, else removed.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), env.get("PYTHONPATH", "")]
    )
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_all(processes, timeout=TIMEOUT_S):
    """Waits for a dict of named processes.

    On a timeout all are killed; on a timeout or a non-zero exit the test
    fails with the end of each process' output.
    """
    outputs = {}
    try:
        for name, process in processes.items():
            outputs[name], _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for name, process in processes.items():
            process.kill()
            outputs[name] = process.communicate()[0]
        pytest.fail(
            f"Subprocesses did not finish within {timeout} s:\n"
            + "\n".join(f"--- {n}:\n{o[-3000:]}" for n, o in outputs.items())
        )
    failed = {
        name: outputs[name][-3000:]
        for name, process in processes.items()
        if process.returncode != 0
    }
    if failed:
        pytest.fail(
            "Subprocess(es) failed:\n"
            + "\n".join(f"--- {n}:\n{o}" for n, o in failed.items())
        )
