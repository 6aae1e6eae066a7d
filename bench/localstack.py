"""Native LocalStack (no Docker) for the benchmark: its own Python 3.13 venv, a free port.

moto's server scans its whole queue on every call, so it cannot drain 100k messages;
LocalStack can. `localstack-core` needs Python 3.13 (3.11 and 3.12 fail), so it lives in a
venv of its own under the git-ignored `.local/bench/`, and runs as
`python -m localstack.runtime.main` (the `localstack` CLI refuses to start without an account).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGES = [
    "localstack-core[runtime]==2026.3.0",
    "cbor2<6",
    "pyopenssl<26",
    "cryptography<47",
    "service-identity",
]
START_TIMEOUT_SECONDS = 120


class BenchSetupError(RuntimeError):
    """Something the benchmark needs is missing; the message names the fix."""


def find_python313() -> str:
    """BENCH_PYTHON313, else python3.13 on the PATH, else pyenv's."""
    candidates = [os.environ.get("BENCH_PYTHON313"), shutil.which("python3.13")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    for candidate in candidates:
        if candidate and _is_python313(candidate):
            return candidate
    raise BenchSetupError(
        "Python 3.13 is needed to run LocalStack natively (3.11 and 3.12 fail) and none was "
        "found: install it (e.g. `pyenv install 3.13`) or set BENCH_PYTHON313=/path/to/python3.13"
    )


def _is_python313(path: str) -> bool:
    """True if `path` runs and is 3.13 (a pyenv shim may exist and still refuse to run)."""
    try:
        check = subprocess.run(
            [path, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return False
    return check.stdout.strip() == "True"


def ensure_venv(home: Path) -> Path:
    """The venv's python, installing localstack-core on first use."""
    venv = home / "localstack-venv"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == "\n".join(PACKAGES):
        return python
    python313 = find_python313()
    print(f"[bench] installing LocalStack into {venv} (once)", flush=True)
    try:
        subprocess.run([python313, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    except subprocess.CalledProcessError as error:
        raise BenchSetupError(
            f"could not install LocalStack into {venv} ({error}): check that PyPI is reachable"
        ) from error
    marker.write_text("\n".join(PACKAGES))
    return python


def environment(state: Path, port: int) -> dict[str, str]:
    """The settings that make LocalStack run as a plain local process on 127.0.0.1:port."""
    folders = {name: state / name for name in ("home", "tmp", "filesystem", "config")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # otherwise it believes it is in a container and writes to /etc and /var/lib
        "OVERRIDE_IN_DOCKER": "0",
        # the default gateway ignores the host and binds every interface
        "GATEWAY_SERVER": "hypercorn",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        # queue URLs in the exercise's form: http://localhost:PORT/000000000000/NAME
        "SQS_ENDPOINT_STRATEGY": "off",
        "LOCALSTACK_HOST": f"localhost:{port}",
        "SERVICES": "sqs",
        "EAGER_SERVICE_LOADING": "1",
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "HOME": str(folders["home"]),
        "TMPDIR": str(folders["tmp"]),
        "FILESYSTEM_ROOT": str(folders["filesystem"]),
        "CONFIG_DIR": str(folders["config"]),
    }


@contextmanager
def running(home: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """LocalStack serving SQS on 127.0.0.1:port until the block ends."""
    python = ensure_venv(home)
    state = home / "localstack-state"
    shutil.rmtree(state, ignore_errors=True)  # no queue survives from an earlier run
    state.mkdir(parents=True)
    log = (state / "localstack.log").open("wb")
    process = subprocess.Popen(
        [str(python), "-m", "localstack.runtime.main"],
        env=environment(state, port),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_healthy(process, port, state / "localstack.log")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    url = f"http://127.0.0.1:{port}/_localstack/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchSetupError(f"LocalStack exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if b'"sqs": "running"' in response.read():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise BenchSetupError(
        f"LocalStack did not become healthy in {START_TIMEOUT_SECONDS} s; see {log}"
    )
