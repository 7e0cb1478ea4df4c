"""newswash on Beam's portable runner, with workers in other processes (issue 7).

What this proves, on loopback only (every server is bound to 127.0.0.1):

* ``test_portable_matches_direct``: Beam's own job service
  (``local_job_service_main``) and SDK worker pool (``worker_pool_main``) run
  as separate processes; ``newswash run --runner PortableRunner
  --environment_type EXTERNAL`` over a small corpus writes exactly the same
  records (every output folder, parsed as JSON, sorted) as the DirectRunner,
  the accounting balances in both reports, and ``--num-shards 2`` gives two
  shards per output on the portable runner.
* ``test_shipping_to_a_worker_without_newswash``: the worker pool runs in a
  Python environment that has apache-beam and newswash's dependencies but NOT
  newswash (checked first), from a directory outside the checkout.
  - Beam's stock pool (no ``--container_executable``) fails the job with
    ``ModuleNotFoundError`` even though the wheel was staged: the stock pool
    never installs staged packages.
  - The pool with ``pipeline/packaging.py`` as its boot program
    (``--container_executable``) and ``--newswash_ship never``: fails the same
    way, so nothing but the shipped wheel can make it work.
  - The same pool with shipping on (the default): succeeds and writes the
    same records as the DirectRunner. The wheel travelled through the job
    service's artifact staging and the runner's artifact retrieval service.

The local job service runs one SDK worker per environment, so this does not
show records spread over several workers; that is the cluster runner's job
(Reshuffle after reading, --num-shards), see docs/running-on-a-cluster.md.
"""

from __future__ import annotations

import glob
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time

import orjson
import pytest

from pipeline import packaging
from pipeline.options import STAGE_NAMES

REPO = pathlib.Path(__file__).resolve().parent.parent
OUTPUTS = ("documents", "php_leaks", "related_links", "duplicates", "dead_letter")
RUN_TIMEOUT = 150
START_TIMEOUT = 60

# Runs a Beam server module with every gRPC server bound to 127.0.0.1 instead
# of Beam's hard-coded "[::]" (all interfaces). Otherwise it is exactly
# ``python -m <module> <args>``.
LOOPBACK_LAUNCHER = """
import runpy, sys
import grpc
_server = grpc.server
def _loopback_server(*args, **kwargs):
    server = _server(*args, **kwargs)
    add = server.add_insecure_port
    server.add_insecure_port = lambda address: add(address.replace("[::]", "127.0.0.1"))
    return server
grpc.server = _loopback_server
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: pathlib.Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Server:
    """A Beam server subprocess in its own process group, stopped by its pid."""

    def __init__(self, python: str, module: str, args: list[str], port: int, cwd: pathlib.Path,
                 env: dict[str, str], log: pathlib.Path):
        self.port = port
        self.log = log
        self._handle = open(log, "wb")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [python, "-c", LOOPBACK_LAUNCHER, module, *args], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=self._handle, stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{log_tail(self.log)}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not listening on 127.0.0.1:{self.port} after {START_TIMEOUT} s:\n"
                           f"{log_tail(self.log)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.process.pid, sig)  # the server and the SDK workers it started
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._handle.close()


def python_env(bin_dir: pathlib.Path | None = None) -> dict[str, str]:
    """The environment for servers: no PYTHONPATH, ``python`` resolved in ``bin_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    bin_dir = bin_dir or pathlib.Path(sys.executable).parent
    # worker_pool_main starts SDK workers as plain "python" from PATH.
    env["PATH"] = os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"])
    return env


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[str]:
    """Input patterns (absolute: workers run elsewhere) over a few JSONL records and text
    articles with PHP leaks, repeated titles, a broken line, invalid UTF-8 and an exact
    duplicate; plus the project's samples/ when the checkout has them."""
    base = tmp_path_factory.mktemp("corpus")
    root = base / "mine"
    root.mkdir()
    patterns = [str(root / "*")]
    records = [
        {"id": "storm-1", "title": "Storm hits the coast", "url": "https://news.example.com/world/storm-1",
         "text": "Storm hits the coast\nStorm hits the coast\nThe storm reached the coast on Monday "
                 "string(11) \"hello world\" and closed two harbours.\nOfficials said it was \u201cthe "
                 "worst in a decade\u201d -- and warned of more rain.\n"},
        {"id": "markets-1", "title": "Markets rally", "url": "https://news.example.com/biz/markets-1",
         "text": "Markets rally\n\nStocks rose sharply on Tuesday after the central bank held rates "
                 "steady for a third month.\n"},
        {"id": "markets-2", "title": "Markets rally", "url": "https://news.example.com/biz/markets-2",
         "text": "Markets rally\n\nStocks rose sharply on Tuesday after the central bank held rates "
                 "steady for a third month.\n"},
    ]
    lines = [orjson.dumps(r) for r in records] + [b'{"id": "broken", "text": "unterminated']
    (root / "articles.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (root / "council.txt").write_bytes(
        b"Council approves budget\n\nCouncil approves budget\n\nThe council met on Friday. "
        b'string(5) "hello"\nThe vote was 7 to 2.\n')
    (root / "cafe.txt").write_bytes(b"Caf\xc3\xa9 opens in the old mill \xff\xfe after repairs.\n")
    samples = sorted(p for p in (REPO / "samples").glob("*") if p.is_file() and p.suffix in (".txt", ".jsonl"))
    if samples:
        (base / "samples").mkdir()
        for sample in samples:
            shutil.copy(sample, base / "samples" / sample.name)
        patterns.append(str(base / "samples" / "*"))
    return patterns


def newswash_run(corpus: list[str], output: pathlib.Path, *beam_args: str,
                 check: bool = True) -> subprocess.CompletedProcess:
    inputs = [arg for pattern in corpus for arg in ("--input", pattern)]
    command = [sys.executable, "-m", "pipeline", "run", *inputs, "--output", str(output), *beam_args]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                               check=False)
    if check:
        assert completed.returncode == 0, (
            f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stdout}\n"
            f"{completed.stderr[-6000:]}")
    return completed


def output_records(output: pathlib.Path) -> dict[str, list[bytes]]:
    """Every record of every output folder, re-serialized canonically and sorted."""
    records: dict[str, list[bytes]] = {}
    for name in OUTPUTS:
        shards = glob.glob(str(output / name / "*.jsonl"))
        assert shards, f"no shards in {output / name}"
        lines = []
        for shard in shards:
            with open(shard, "rb") as handle:
                lines += [orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)
                          for line in handle if line.strip()]
        records[name] = sorted(lines)
    return records


def balanced_report(output: pathlib.Path) -> dict:
    report = orjson.loads((output / "report.json").read_bytes())
    accounting = report["accounting"]
    assert accounting["balanced"], accounting
    assert report["input_records"] == sum(report["outputs"][n] for n in ("documents", "duplicates",
                                                                          "dead_letter"))
    return report


@pytest.fixture(scope="module")
def direct_output(corpus, tmp_path_factory) -> pathlib.Path:
    output = tmp_path_factory.mktemp("direct") / "out"
    newswash_run(corpus, output, "--runner=DirectRunner")
    return output


@pytest.fixture(scope="module")
def job_service(tmp_path_factory):
    work = tmp_path_factory.mktemp("job-service")
    port = free_port()
    server = Server(sys.executable, "apache_beam.runners.portability.local_job_service_main",
                    [f"--port={port}"], port, work, python_env(), work / "job-service.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def isolated_python(tmp_path_factory) -> pathlib.Path:
    """A venv that sees this environment's packages (Beam, ftfy, pip ...) except newswash."""
    root = tmp_path_factory.mktemp("worker-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True,
                   timeout=60)
    python = root / "venv" / "bin" / "python"
    site = pathlib.Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    ours = {pathlib.Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
    for source in ours:
        for entry in source.iterdir():
            name = entry.name.lower()
            if name in packaging.PACKAGES or "newswash" in name or (site / entry.name).exists():
                continue  # newswash itself: an installed copy, its dist-info or its editable hook
            (site / entry.name).symlink_to(entry)
    probe = subprocess.run(
        [str(python), "-c",
         "import importlib.util as u, apache_beam, ftfy, regex, orjson, pip;"
         "print(apache_beam.__version__, u.find_spec('pipeline'), u.find_spec('transforms'))"],
        cwd=root, env=python_env(python.parent), capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split()[1:] == ["None", "None"], f"the worker Python sees newswash: {probe.stdout}"
    return python


@pytest.fixture(scope="module")
def boot_executable(isolated_python, tmp_path_factory) -> pathlib.Path:
    """pipeline/packaging.py copied out of the checkout as the worker pool's boot program."""
    root = tmp_path_factory.mktemp("boot")
    shutil.copy(packaging.__file__, root / "newswash_boot.py")
    boot = root / "boot"
    boot.write_text(f'#!/bin/sh\nexec "{isolated_python}" "{root / "newswash_boot.py"}" '
                    f'--cache_dir "{root / "installed"}" "$@"\n')
    boot.chmod(0o755)
    return boot


def start_worker_pool(python: pathlib.Path, work: pathlib.Path, *extra: str) -> Server:
    port = free_port()
    return Server(str(python), "apache_beam.runners.worker.worker_pool_main",
                  [f"--service_port={port}", *extra], port, work, python_env(python.parent),
                  work / "worker-pool.log")


def portable_args(job_service: Server, pool: Server) -> list[str]:
    return ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_service.port}",
            "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool.port}"]


@pytest.mark.slow
def test_portable_matches_direct(corpus, direct_output, job_service, tmp_path):
    pool = start_worker_pool(pathlib.Path(sys.executable), tmp_path)
    try:
        output = tmp_path / "portable"
        newswash_run(corpus, output, *portable_args(job_service, pool), "--num-shards", "2")
    finally:
        pool.stop()
    assert "Starting worker" in pool.log.read_text(errors="replace"), "the job did not use the worker pool"
    portable = output_records(output)
    direct = output_records(direct_output)
    assert portable == direct
    for name in OUTPUTS:
        assert portable[name], f"the corpus must reach every output, {name} is empty"
    for line in portable["documents"]:  # every stage ran (none skipped)
        assert set(orjson.loads(line)["newswash"]["changes"]) == set(STAGE_NAMES), line[:300]
    for name in OUTPUTS:
        shards = sorted(os.path.basename(p) for p in glob.glob(str(output / name / "*.jsonl")))
        assert shards == ["part-00000-of-00002.jsonl", "part-00001-of-00002.jsonl"], (name, shards)
    portable_report, direct_report = balanced_report(output), balanced_report(direct_output)
    assert portable_report["runner"] == "PortableRunner" and direct_report["runner"] == "DirectRunner"
    assert portable_report["outputs"] == direct_report["outputs"]
    assert portable_report["dead_letter_reasons"] == direct_report["dead_letter_reasons"]


@pytest.mark.slow
def test_shipping_to_a_worker_without_newswash(corpus, direct_output, job_service, isolated_python,
                                               boot_executable, tmp_path):
    missing = ("No module named 'pipeline'", "No module named 'transforms'")
    # Beam's stager warns about every .whl given as --extra_package: proof that ours was staged
    # (newswash's own log line is INFO, below the CLI's WARNING level).
    staged = re.compile(r'The \.whl package "[^"]*/newswash-[^"]*\.whl" provided in --extra_package')

    # 1. Beam's stock worker pool ignores staged packages: the wheel is staged, the job fails.
    stock_dir = tmp_path / "stock"
    stock_dir.mkdir()
    stock = start_worker_pool(isolated_python, stock_dir)
    try:
        failed = newswash_run(corpus, tmp_path / "stock-out", *portable_args(job_service, stock),
                              check=False)
    finally:
        stock.stop()
    assert failed.returncode != 0
    assert staged.search(failed.stderr), failed.stderr[-4000:]
    assert any(m in failed.stderr + failed.stdout for m in missing), failed.stderr[-4000:]

    booted_dir = tmp_path / "booted"
    booted_dir.mkdir()
    booted = start_worker_pool(isolated_python, booted_dir, f"--container_executable={boot_executable}")
    try:
        # 2. With our boot but nothing shipped: the worker cannot import newswash.
        failed = newswash_run(corpus, tmp_path / "never-out", *portable_args(job_service, booted),
                              "--newswash_ship=never", check=False)
        assert failed.returncode != 0
        assert not staged.search(failed.stderr)
        assert any(m in failed.stderr + failed.stdout for m in missing), failed.stderr[-4000:]

        # 3. Shipped: the boot fetches the wheel from the runner, installs it, the job succeeds.
        output = tmp_path / "shipped-out"
        newswash_run(corpus, output, *portable_args(job_service, booted))
    finally:
        booted.stop()
    log = booted.log.read_text(errors="replace")
    assert "installing staged package newswash-" in log, log_tail(booted.log)
    assert output_records(output) == output_records(direct_output)
    balanced_report(output)


def test_wheel_is_reproducible_and_holds_the_packages(tmp_path):
    import zipfile  # pylint: disable=import-outside-toplevel

    first = packaging.build_wheel(tmp_path / "a")
    second = packaging.build_wheel(tmp_path / "b")
    assert os.path.basename(first) == os.path.basename(second)
    assert pathlib.Path(first).read_bytes() == pathlib.Path(second).read_bytes()
    mtime = os.stat(first).st_mtime_ns
    assert packaging.build_wheel(tmp_path / "a") == first and os.stat(first).st_mtime_ns == mtime
    with zipfile.ZipFile(first) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for module in ("pipeline/__init__.py", "pipeline/io.py", "pipeline/packaging.py",
                   "transforms/__init__.py", "transforms/document.py", "transforms/stage.py"):
        assert module in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert "Name: newswash" in metadata and "Requires-Dist: apache-beam" in metadata


@pytest.mark.parametrize("args, ships", [
    ([], False),
    (["--runner=DirectRunner"], False),
    (["--runner=PortableRunner", "--environment_type=LOOPBACK"], False),
    (["--runner=PortableRunner", "--environment_type=EXTERNAL", "--environment_config=localhost:1"], True),
    (["--runner=FlinkRunner"], True),
    (["--runner=DataflowRunner"], True),
    (["--runner=DataflowRunner", "--sdk_container_image=eu.gcr.io/p/newswash:1"], False),
    (["--runner=DataflowRunner", "--sdk_container_image=apache/beam_python3.11_sdk:2.77.0"], True),
    (["--runner=FlinkRunner", "--environment_type=DOCKER",
      "--environment_config=apache/beam_python3.11_sdk:2.77.0"], True),
    (["--runner=FlinkRunner", "--environment_type=DOCKER",
      "--environment_config=registry.example.com/newswash-worker:0.1.0"], False),
    (["--runner=PortableRunner", "--environment_type=PROCESS",
      "--environment_config={\"command\": \"/opt/newswash/boot\"}"], True),
    (["--runner=SparkRunner", "--setup_file=./setup.py"], False),
    (["--runner=FlinkRunner", "--extra_package=/dist/newswash-0.1.0.tar.gz"], False),
    (["--runner=FlinkRunner", "--newswash_ship=never"], False),
    (["--runner=DirectRunner", "--newswash_ship=always"], True),
])
def test_ships_only_to_remote_workers(args, ships, tmp_path, monkeypatch):
    from apache_beam.options.pipeline_options import SetupOptions  # pylint: disable=import-outside-toplevel

    from pipeline.cli import pipeline_options  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(packaging, "_cache_root", lambda: tmp_path)
    options = pipeline_options(args)
    shipped = [p for p in options.view_as(SetupOptions).extra_packages or () if p.startswith(str(tmp_path))]
    assert bool(shipped) == ships, (args, options.view_as(SetupOptions).extra_packages)


def test_an_unrelated_extra_package_still_gets_newswash(tmp_path, monkeypatch):
    from apache_beam.options.pipeline_options import SetupOptions  # pylint: disable=import-outside-toplevel

    from pipeline.cli import pipeline_options  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(packaging, "_cache_root", lambda: tmp_path)
    options = pipeline_options(["--runner=FlinkRunner", "--extra_package=/dist/other-1.0.whl"])
    packages = options.view_as(SetupOptions).extra_packages
    assert packages[0] == "/dist/other-1.0.whl" and os.path.basename(packages[1]).startswith("newswash-")


def test_wheel_metadata_from_the_installed_distribution(tmp_path, monkeypatch):
    """Without a pyproject.toml next to the packages (a site-packages install), the
    metadata comes from importlib.metadata and the files from the imported packages."""
    import zipfile  # pylint: disable=import-outside-toplevel

    from_checkout = packaging.build_wheel(tmp_path / "checkout")
    monkeypatch.setattr(packaging, "_source_checkout", lambda: None)
    from_distribution = packaging.build_wheel(tmp_path / "installed")
    with zipfile.ZipFile(from_checkout) as a, zipfile.ZipFile(from_distribution) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        modules = [n for n in a.namelist() if not n.startswith("newswash-")]
        assert all(a.read(n) == b.read(n) for n in modules)
        metadata = b.read(next(n for n in b.namelist() if n.endswith("/METADATA"))).decode()
        entry_points = b.read(next(n for n in b.namelist() if n.endswith("/entry_points.txt"))).decode()
    assert "Name: newswash" in metadata and "Requires-Dist: orjson" in metadata
    assert "newswash = pipeline.cli:main" in entry_points
