"""Ship newswash itself to remote Beam workers, and a worker boot that installs it.

Two halves, one file:

1. Submitter side, :func:`ship_project_to_workers` (called by the CLI for every
   run). For a runner whose workers are other processes or machines
   (Dataflow, Flink, Spark, the Portable runner with a DOCKER, PROCESS or
   EXTERNAL environment) it writes a pure-Python wheel of newswash and adds it
   to ``SetupOptions.extra_packages``. Beam's stager then stages it with the
   job (as Beam does for any ``--extra_package``) together with
   ``extra_packages.txt``; Beam's SDK container boot
   (``/opt/apache/beam/boot``) pip-installs it on every worker before the SDK
   harness starts. The wheel is written without building anything and
   without touching the checkout: the package files, ``METADATA`` from
   ``pyproject.toml`` (source checkout) or from the installed distribution
   (``importlib.metadata``), a ``RECORD`` with sha256 hashes, entries sorted
   with fixed timestamps, so the same sources always give the same bytes. It
   is cached under ``<tempdir>/newswash-ship/<content hash>/``.

   Nothing is shipped for in-process runs (DirectRunner, FnApiRunner,
   ``--environment_type LOOPBACK`` or ``EMBED``), nor when the user already
   arranged it: ``--setup_file``, an ``--extra_package`` named
   ``newswash-*``, or a custom worker image (``--sdk_container_image``, or
   ``--environment_type DOCKER --environment_config IMAGE``, other than Beam's
   own ``beam_pythonX.Y_sdk`` images) which is assumed to contain newswash. ``--newswash_ship never`` turns it off and
   ``--newswash_ship always`` forces it.

2. Worker side, a boot program implementing Beam's SDK container contract
   (``--id --provision_endpoint --artifact_endpoint --control_endpoint
   --logging_endpoint``) for machines without Docker. Beam's Python worker
   pool (``python -m apache_beam.runners.worker.worker_pool_main``) does NOT
   install staged packages by itself: without ``--container_executable`` it
   starts ``python -c 'SdkHarness(...).run()'`` with whatever that Python can
   import. Run this file as a script (it needs only the standard library,
   pip and apache-beam) as the pool's ``--container_executable`` or as the
   command of ``--environment_type PROCESS``; it fetches the job's staged
   artifacts through the runner's artifact service, pip-installs the extra
   packages (``--no-deps --no-index``, into a per-content cached directory put
   on ``PYTHONPATH``) and then execs Beam's ``sdk_worker_main``. The worker
   machine must already have newswash's dependencies (apache-beam, ftfy,
   regex, orjson, numpy; numba too for speed: without it dedupe computes the
   same signatures with numpy); only newswash itself travels with the job.

       cp pipeline/packaging.py /opt/newswash/newswash_boot.py
       printf '#!/bin/sh\\nexec /opt/beam/bin/python /opt/newswash/newswash_boot.py "$@"\\n' \\
           > /opt/newswash/boot && chmod +x /opt/newswash/boot
       python -m apache_beam.runners.worker.worker_pool_main --service_port=50000 \\
           --container_executable=/opt/newswash/boot
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

if __name__ == "__main__":
    # Run as a script (``python newswash_boot.py``): never import from this file's
    # directory, which in a checkout holds modules such as io.py and options.py.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

__all__ = [
    "PROJECT",
    "PACKAGES",
    "NewswashShippingOptions",
    "needs_shipping",
    "build_wheel",
    "ship_project_to_workers",
    "boot_main",
]

_LOGGER = logging.getLogger(__name__)

PROJECT = "newswash"
PACKAGES = ("pipeline", "transforms")
SHIP_MODES = ("auto", "always", "never")

# Runners whose SDK harness runs inside the submitting process (or its
# children on this machine, which import the same checkout).
_IN_PROCESS_RUNNERS = frozenset({
    "directrunner", "switchingdirectrunner", "bundlebaseddirectrunner", "fnapirunner",
    "interactiverunner", "testdirectrunner", "prismrunner",
})
# Environments that run the SDK harness inside the submitting process.
_IN_PROCESS_ENVIRONMENTS = frozenset({"LOOPBACK", "EMBED", "BEAM_PYTHON"})
# 1980-01-01, the earliest time a zip entry can hold: fixed so wheels are reproducible.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIPPED_NAMES = ("__pycache__",)
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".swp", "~", ".orig", ".rej")


def _shipping_options_class():
    from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel

    class NewswashShippingOptions(PipelineOptions):
        """``--newswash_ship {auto,always,never}``."""

        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_argument(
                "--newswash_ship", default="auto", choices=SHIP_MODES,
                help="ship newswash to remote workers as an --extra_package: auto (default: "
                     "for non-local runners unless --setup_file, a newswash --extra_package "
                     "or a custom worker image is given), always, never")

    return NewswashShippingOptions


try:
    NewswashShippingOptions = _shipping_options_class()
except ImportError:  # run as the worker boot script on a machine without Beam
    NewswashShippingOptions = None  # type: ignore[assignment,misc]


# --------------------------------------------------------------------------
# Submitter side
# --------------------------------------------------------------------------

def _runner_name(runner) -> str:
    if runner is None:
        return "directrunner"
    name = runner if isinstance(runner, str) else type(runner).__name__
    name = name.rsplit(".", 1)[-1].lower()
    return name if name.endswith("runner") else name + "runner"


def needs_shipping(options) -> tuple[bool, str]:
    """Whether ``options`` call for shipping newswash, and why (for the log)."""
    from apache_beam.options.pipeline_options import (  # pylint: disable=import-outside-toplevel
        PortableOptions, SetupOptions, StandardOptions, WorkerOptions)

    mode = options.view_as(NewswashShippingOptions).newswash_ship
    if mode == "never":
        return False, "--newswash_ship never"
    if mode == "always":
        return True, "--newswash_ship always"
    runner = _runner_name(options.view_as(StandardOptions).runner)
    if runner in _IN_PROCESS_RUNNERS:
        return False, f"{runner} runs the workers locally from this checkout"
    environment = (options.view_as(PortableOptions).environment_type or "").upper()
    if environment in _IN_PROCESS_ENVIRONMENTS:
        return False, f"--environment_type {environment} runs the workers in this process"
    setup = options.view_as(SetupOptions)
    if setup.setup_file:
        return False, f"--setup_file {setup.setup_file} already ships the project"
    for package in setup.extra_packages or ():
        if os.path.basename(package).lower().replace("_", "-").startswith(PROJECT + "-"):
            return False, f"--extra_package {package} already ships newswash"
    image = options.view_as(WorkerOptions).sdk_container_image
    if image and not _is_stock_beam_image(image):
        return False, f"--sdk_container_image {image} is assumed to contain newswash"
    config = options.view_as(PortableOptions).environment_config
    if environment == "DOCKER" and config and not _is_stock_beam_image(config):
        return False, f"the DOCKER image {config} is assumed to contain newswash"
    return True, f"{runner} with {environment or 'its default'} environment runs remote workers"


def _is_stock_beam_image(image: str) -> bool:
    """Beam's own Python SDK image (Docker Hub, or Dataflow's copy), which lacks newswash."""
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return re.fullmatch(r"beam_python\d+(\.\d+)?_sdk", repository) is not None


def _wanted(relative: Path) -> bool:
    parts = relative.parts
    if any(part in _SKIPPED_NAMES or part.startswith(".") for part in parts):
        return False
    return not relative.name.endswith(_SKIPPED_SUFFIXES)


def _source_checkout() -> Path | None:
    """The checkout root when newswash runs from sources with its pyproject.toml."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or not all((root / p / "__init__.py").is_file() for p in PACKAGES):
        return None
    return root


def _metadata_from_pyproject(pyproject: Path) -> tuple[str, str, list[str], list[str]]:
    """(name, version, metadata lines, entry_points.txt lines)."""
    import tomllib  # pylint: disable=import-outside-toplevel  # Python >= 3.11

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    name, version = project["name"], project["version"]
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])]
    scripts = project.get("scripts", {})
    entry_points = ["[console_scripts]", *(f"{k} = {v}" for k, v in sorted(scripts.items()))] if scripts else []
    return name, version, lines, entry_points


def _package_directory(package: str) -> Path:
    """The directory the running process imports ``package`` from."""
    import importlib  # pylint: disable=import-outside-toplevel

    module = importlib.import_module(package)
    if not getattr(module, "__file__", None):
        raise RuntimeError(f"cannot ship {package}: it is not a regular package ({module!r})")
    return Path(module.__file__).resolve().parent


def _project_files() -> tuple[str, str, list[str], list[str], list[tuple[str, bytes]]]:
    """name, version, METADATA lines, entry points, and (archive path, bytes) of every package file.

    The files are exactly those of the packages this process imports (a
    checkout, an editable install or site-packages), so the workers run the
    code the job was built with. The metadata comes from ``pyproject.toml``
    when it sits next to the packages, else from the installed distribution.
    """
    root = _source_checkout()
    metadata_source = None
    if root is not None:
        try:
            metadata_source = _metadata_from_pyproject(root / "pyproject.toml")
        except ImportError:  # no tomllib (Python 3.10): the installed metadata has the same fields
            pass
    name, version, metadata, entry_points = metadata_source or _metadata_from_distribution()
    files: list[tuple[str, bytes]] = []
    for package in PACKAGES:
        directory = _package_directory(package)
        for path in sorted(directory.rglob("*")):
            relative = Path(package) / path.relative_to(directory)
            if path.is_file() and _wanted(relative):
                files.append((relative.as_posix(), path.read_bytes()))
    return name, version, metadata, entry_points, files


def _metadata_from_distribution() -> tuple[str, str, list[str], list[str]]:
    import importlib.metadata  # pylint: disable=import-outside-toplevel

    try:
        distribution = importlib.metadata.distribution(PROJECT)
    except importlib.metadata.PackageNotFoundError as error:
        raise RuntimeError(f"cannot ship {PROJECT}: no pyproject.toml next to the packages and no "
                           f"installed {PROJECT} distribution; pass --setup_file or "
                           "--extra_package, or --newswash_ship never") from error
    meta = distribution.metadata
    lines = ["Metadata-Version: 2.1", f"Name: {meta['Name']}", f"Version: {meta['Version']}"]
    for field in ("Summary", "Requires-Python"):
        if meta.get(field):
            lines.append(f"{field}: {meta[field]}")
    lines += [f"Requires-Dist: {r}" for r in (meta.get_all("Requires-Dist") or []) if "extra ==" not in r]
    scripts = sorted((e.name, e.value) for e in distribution.entry_points if e.group == "console_scripts")
    entry_points = ["[console_scripts]", *(f"{k} = {v}" for k, v in scripts)] if scripts else []
    return meta["Name"], meta["Version"], lines, entry_points


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest},{len(data)}"


def _cache_root() -> Path:
    return Path(tempfile.gettempdir()) / "newswash-ship"


def build_wheel(cache_dir: str | os.PathLike | None = None) -> str:
    """Writes (or reuses) the newswash wheel; returns its path.

    The wheel's bytes depend only on the package files and metadata, and it
    lives under ``<cache_dir>/<sha256 of its content>/``, so a second call
    with unchanged sources returns the cached file without rewriting it.
    """
    name, version, metadata, entry_points, files = _project_files()
    dist_name = name.replace("-", "_")
    dist_info = f"{dist_name}-{version}.dist-info"
    entries = list(files)
    entries.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode("utf-8")))
    entries.append((f"{dist_info}/WHEEL", (
        "Wheel-Version: 1.0\nGenerator: newswash.pipeline.packaging\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n").encode("ascii")))
    if entry_points:
        entries.append((f"{dist_info}/entry_points.txt", ("\n".join(entry_points) + "\n").encode("utf-8")))
    entries.append((f"{dist_info}/top_level.txt", ("\n".join(PACKAGES) + "\n").encode("ascii")))
    content = hashlib.sha256()
    for archive_name, data in entries:
        content.update(archive_name.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
    key = content.hexdigest()[:20]
    target_dir = Path(cache_dir) if cache_dir is not None else _cache_root()
    wheel = target_dir / key / f"{dist_name}-{version}-py3-none-any.whl"
    if wheel.is_file():
        return str(wheel)
    record = [f"{archive_name},{_record_hash(data)}" for archive_name, data in entries]
    record.append(f"{dist_info}/RECORD,,")
    entries.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode("utf-8")))
    wheel.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=wheel.parent, suffix=".partial")
    os.close(handle)
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for archive_name, data in entries:
                info = zipfile.ZipInfo(archive_name, date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        os.replace(partial, wheel)  # atomic: concurrent builders write identical bytes
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return str(wheel)


def ship_project_to_workers(options) -> None:
    """Adds a newswash wheel to ``--extra_package`` when remote workers need it."""
    from apache_beam.options.pipeline_options import SetupOptions  # pylint: disable=import-outside-toplevel

    ship, reason = needs_shipping(options)
    if not ship:
        _LOGGER.info("newswash is not shipped to the workers: %s", reason)
        return
    wheel = build_wheel()
    setup = options.view_as(SetupOptions)
    setup.extra_packages = [*(setup.extra_packages or []), wheel]
    _LOGGER.info("shipping newswash to the workers as --extra_package %s (%s)", wheel, reason)


# --------------------------------------------------------------------------
# Worker side: a boot program for the SDK container contract
# --------------------------------------------------------------------------

EXTRA_PACKAGES_FILE = "extra_packages.txt"  # as in apache_beam.runners.portability.stager
WORKFLOW_TARBALL = "workflow.tar.gz"  # the sdist Beam builds from --setup_file
REQUIREMENTS_FILE = "requirements.txt"  # from --requirements_file


def _boot_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newswash_boot.py",
        description="Beam SDK worker boot without Docker: fetch the job's staged packages, "
                    "install them, start the Python SDK harness.")
    parser.add_argument("--id", required=True, help="worker id")
    parser.add_argument("--provision_endpoint", required=True)
    parser.add_argument("--artifact_endpoint", default="")
    parser.add_argument("--control_endpoint", default="")
    parser.add_argument("--logging_endpoint", default="")
    parser.add_argument("--semi_persistent_directory", default="")
    parser.add_argument("--cache_dir", default=os.path.join(tempfile.gettempdir(), "newswash-boot"),
                        help="where installed packages are kept, one directory per content hash")
    return parser


def _fetch_artifacts(info, artifact_url: str, metadata, dest: Path) -> list[str]:
    """Writes every STAGING_TO artifact to ``dest/<staged name>``; returns the names."""
    import grpc  # pylint: disable=import-outside-toplevel
    from apache_beam.portability import common_urns  # pylint: disable=import-outside-toplevel
    from apache_beam.portability.api import (  # pylint: disable=import-outside-toplevel
        beam_artifact_api_pb2, beam_artifact_api_pb2_grpc, beam_runner_api_pb2)

    names: list[str] = []
    if not info.dependencies:
        return names
    with grpc.insecure_channel(artifact_url) as channel:
        stub = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(channel)
        for dependency in info.dependencies:
            if dependency.role_urn != common_urns.artifact_roles.STAGING_TO.urn:
                _LOGGER.warning("ignoring artifact with role %s", dependency.role_urn)
                continue
            staged_name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                dependency.role_payload).staged_name
            name = os.path.basename(staged_name)
            with open(dest / name, "wb") as handle:
                for chunk in stub.GetArtifact(
                        beam_artifact_api_pb2.GetArtifactRequest(artifact=dependency), metadata=metadata):
                    handle.write(chunk.data)
            names.append(name)
    return names


def _packages_to_install(staged: Path, names: Sequence[str]) -> list[Path]:
    ordered: list[Path] = []
    listing = staged / EXTRA_PACKAGES_FILE
    if listing.is_file():
        ordered += [staged / line.strip() for line in listing.read_text().splitlines() if line.strip()]
    if WORKFLOW_TARBALL in names:
        ordered.append(staged / WORKFLOW_TARBALL)
    if REQUIREMENTS_FILE in names:
        _LOGGER.warning("%s was staged but this boot does not install requirements (no network "
                        "assumed); preinstall them on the worker", REQUIREMENTS_FILE)
    return ordered


def _install(packages: Iterable[Path], cache_dir: Path) -> Path | None:
    """pip-installs ``packages`` (in order) into a directory keyed by their content."""
    import shutil  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel

    packages = list(packages)
    if not packages:
        return None
    key = hashlib.sha256()
    for package in packages:
        key.update(package.name.encode("utf-8") + b"\0" + hashlib.sha256(package.read_bytes()).digest())
    site = cache_dir / key.hexdigest()[:20]
    if (site / ".complete").is_file():
        _LOGGER.info("reusing installed packages in %s", site)
        return site
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".partial-"))
    try:
        for package in packages:
            _LOGGER.info("installing staged package %s", package.name)
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-deps", "--no-index", "--target", str(partial), str(package)],
                check=True, stdout=sys.stderr)
        (partial / ".complete").write_text("ok\n")
        try:
            os.rename(partial, site)
        except OSError:  # another worker on this machine installed the same packages first
            if not (site / ".complete").is_file():
                raise
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return site


def boot_main(argv: Sequence[str] | None = None) -> int:
    """Provision, fetch and install the staged packages, then exec the SDK harness."""
    logging.basicConfig(level=logging.INFO, format="newswash-boot %(levelname)s: %(message)s",
                        stream=sys.stderr, force=True)
    import grpc  # pylint: disable=import-outside-toplevel
    from google.protobuf import json_format, text_format  # pylint: disable=import-outside-toplevel
    from apache_beam.portability.api import (  # pylint: disable=import-outside-toplevel
        beam_provision_api_pb2, beam_provision_api_pb2_grpc)

    args = _boot_parser().parse_args(argv)
    metadata = [("worker_id", args.id)]
    with grpc.insecure_channel(args.provision_endpoint) as channel:
        info = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=metadata).info
    work = Path(args.semi_persistent_directory or tempfile.mkdtemp(prefix=f"newswash-worker-{args.id}-"))
    staged = work / "staged"
    staged.mkdir(parents=True, exist_ok=True)
    # The endpoints given on the command line are the container contract; the
    # provision info repeats them on some runners.
    artifact_url = args.artifact_endpoint or info.artifact_endpoint.url
    names = _fetch_artifacts(info, artifact_url, metadata, staged)
    _LOGGER.info("worker %s: fetched %d staged artifacts: %s", args.id, len(names), ", ".join(names))
    site = _install(_packages_to_install(staged, names), Path(args.cache_dir))

    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env["WORKER_ID"] = args.id
    env["SEMI_PERSISTENT_DIRECTORY"] = str(work)
    env["PIPELINE_OPTIONS"] = json_format.MessageToJson(info.pipeline_options)
    env["RUNNER_CAPABILITIES"] = " ".join(info.runner_capabilities)
    for variable, endpoint, given in (
            ("CONTROL_API_SERVICE_DESCRIPTOR", info.control_endpoint, args.control_endpoint),
            ("LOGGING_API_SERVICE_DESCRIPTOR", info.logging_endpoint, args.logging_endpoint)):
        url = given or endpoint.url
        if url:
            env[variable] = text_format.MessageToString(type(endpoint)(url=url))
    if info.status_endpoint.url:
        env["STATUS_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.status_endpoint)
    command = [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"]
    _LOGGER.info("worker %s: starting the SDK harness (extra PYTHONPATH: %s)", args.id, site)
    sys.stderr.flush()
    os.execve(sys.executable, command, env)  # the pool stops this very process
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(boot_main())
