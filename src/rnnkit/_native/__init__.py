"""rnnkit's compiled time loops (``rnn.cpp``), built on first use and cached; optional.

``ops()`` returns ``torch.ops.rnnkit_native`` once the library is built and loaded, or None, in
which case every caller takes its plain-PyTorch twin (``cells/_bptt.py``, ``cells/_minimal.py``).
Nothing is required: without a C++ compiler, or with ``RNNKIT_NATIVE=0``, rnnkit runs the same
math in PyTorch ops.

The build is a ``g++`` compile and link against torch's headers and libraries (about 15-20 s,
once). The shared library is cached under ``$RNNKIT_CACHE`` (default ``~/.cache/rnnkit``, or the
temporary folder where the home is read-only) in a folder named by a hash of the source, torch's
version, the compiler and the CPU's instruction-set flags (it is compiled with ``-march=native``),
written to a temporary name and renamed into place, so concurrent first uses (pytest workers,
torchrun processes) neither clash nor load half a file. Each use marks its build as used; builds
of other setups (an older rnnkit or torch) unused for :data:`PRUNE_AFTER_DAYS` are deleted.
A build that fails is remembered for the process and reported once as a warning.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("rnn.cpp")
_LIBRARY = "rnnkit_native"
_lock = threading.Lock()
_state: dict[str, object] = {}  # "ops" once loaded, "error" once failed
PRUNE_AFTER_DAYS = 30  # a cached build of another setup unused this long is deleted


def enabled() -> bool:
    """False when the user switched the compiled loops off with ``RNNKIT_NATIVE=0``."""
    return os.environ.get("RNNKIT_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def ops():
    """``torch.ops.rnnkit_native``, building and loading it on first call; None when unavailable."""
    if not enabled():
        return None
    if "ops" in _state or "error" in _state:
        return _state.get("ops")
    with _lock:
        if "ops" not in _state and "error" not in _state:
            try:
                torch.ops.load_library(str(build()))
                _state["ops"] = getattr(torch.ops, _LIBRARY)
            except Exception as error:  # no compiler, no headers, a failed build: fall back
                _state["error"] = error
                warnings.warn(
                    f"rnnkit: the compiled RNN loops are unavailable ({_first_line(error)}); using the PyTorch "
                    "implementation (same results, slower). Set RNNKIT_NATIVE=0 to skip the build.",
                    RuntimeWarning,
                    stacklevel=2,
                )
    return _state.get("ops")


def available() -> bool:
    return ops() is not None


def build() -> Path:
    """The shared library's path, compiling it unless a cached build for this setup exists."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler found (install g++)")
    key = _build_key(compiler)
    for root in _cache_roots():
        folder = root / key
        target = folder / f"{_LIBRARY}.so"
        if target.exists():
            _mark_used(target)
            _prune(root, keep=folder)
            return target
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:  # a read-only or missing home: try the next place
            continue
        if os.access(folder, os.W_OK):
            break
    else:
        raise RuntimeError(f"no writable cache folder among {', '.join(map(str, _cache_roots()))}")
    fd, temporary = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    objects = Path(temporary).with_suffix(".o")
    try:
        compile_step, link_step = _commands(compiler, objects, Path(temporary))
        for command in (compile_step, link_step):
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                (folder / "build.log").write_text(" ".join(command) + "\n" + result.stdout + result.stderr)
                raise RuntimeError(f"compiling {SOURCE.name} failed; the compiler's output is in {folder / 'build.log'}")
        os.replace(temporary, target)
    finally:
        for leftover in (temporary, objects):
            if os.path.exists(leftover):
                os.unlink(leftover)
    _prune(folder.parent, keep=folder)
    return target


def _mark_used(library: Path) -> None:
    """Set the build's modification time to now: what :func:`_prune` reads as its last use."""
    try:
        os.utime(library)
    except OSError:  # a cache someone else owns: it is still usable
        pass


def _prune(root: Path, keep: Path) -> None:
    """Delete the builds under ``root`` other than ``keep`` that nothing used for PRUNE_AFTER_DAYS.

    Only folders named like a build key holding a library are touched. A process that still has a
    deleted library loaded keeps running (the mapping outlives the file); a later one rebuilds."""
    cutoff = time.time() - PRUNE_AFTER_DAYS * 86400
    try:
        folders = list(root.iterdir())
    except OSError:
        return
    for folder in folders:
        if folder == keep or len(folder.name) != 16 or not _is_hex(folder.name):
            continue
        try:
            unused = (folder / f"{_LIBRARY}.so").stat().st_mtime < cutoff
        except OSError:  # no library in it (a build under way, or one that failed): left alone
            continue
        if unused:
            shutil.rmtree(folder, ignore_errors=True)


def _is_hex(name: str) -> bool:
    return all(c in "0123456789abcdef" for c in name)


def _commands(compiler: str, objects: Path, output: Path) -> tuple[list[str], list[str]]:
    """The compile and the link step. Two steps on purpose: ``-ffast-math`` at link time would add
    gcc's crtfastmath.o, which switches the whole process to flush subnormals to zero on load."""
    from torch.utils import cpp_extension

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    includes = [f"-I{p}" for p in cpp_extension.include_paths()]
    libraries = [f"-L{p}" for p in cpp_extension.library_paths()]
    # -ffast-math lets gcc call glibc's vector exp/tanh (libmvec) in the gate loops: about 10x
    # the scalar calls. The math differs from PyTorch's in the last bits only (tests: 1e-5 fp32).
    compile_step = [
        compiler, "-c", str(SOURCE), "-o", str(objects), "-fPIC", "-std=c++17", "-O3", "-march=native",
        "-ffast-math", "-fopenmp-simd", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *includes,
    ]  # fmt: skip
    link_step = [
        compiler, str(objects), "-o", str(output), "-shared", *libraries, "-lc10", "-ltorch_cpu", "-ltorch",
        "-lmvec", "-lm", f"-Wl,-rpath,{cpp_extension.library_paths()[0]}",
    ]  # fmt: skip
    return compile_step, link_step


def _build_key(compiler: str) -> str:
    digest = hashlib.sha256()
    digest.update(SOURCE.read_bytes())
    digest.update(torch.__version__.encode())
    for command in _commands(compiler, Path("x.o"), Path("x.so")):
        digest.update(" ".join(command).encode())
    digest.update(_compiler_version(compiler).encode())
    digest.update(_cpu_flags().encode())
    return digest.hexdigest()[:16]


def _compiler_version(compiler: str) -> str:
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return ""


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return sys.platform


def _cache_roots() -> list[Path]:
    """Where builds are cached: ``$RNNKIT_CACHE``, else ``$XDG_CACHE_HOME/rnnkit`` (``~/.cache``),
    then the temporary folder (for a read-only home)."""
    root = os.environ.get("RNNKIT_CACHE")
    if root:
        return [Path(root)]
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rnnkit"
    return [home, Path(tempfile.gettempdir()) / f"rnnkit-{os.getuid() if hasattr(os, 'getuid') else 'user'}"]


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
