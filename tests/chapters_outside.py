"""Run every chapter the way Colab does: alone, outside the repository,
with lstmlib installed from a wheel.

    python -m tests.chapters_outside [--seed-base B] [NOTEBOOK ...]

builds a wheel of lstmlib from this checkout, installs it (without its
dependencies, which the current environment has) into a fresh folder,
copies each chapter into an empty folder of its own under a temporary
directory outside the repository, and executes them there under nbval
(``--nbval-lax``: any exception or failed ``assert`` fails), with the
wheel's lstmlib first on the path and ``LSTMLIB_SEED`` set to the seed
base. A chapter that reads a file of the repository, or a module that only
the checkout has, fails here.

``make test`` runs this as its one execution of the notebooks under
pytest, at another seed base than the site build (``NBVAL_SEED``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def chapters() -> list[Path]:
    """The book's notebooks, in file-name order."""
    return sorted((ROOT / "book").glob("*.ipynb"))


def install_wheel(work: Path) -> Path:
    """A wheel of this checkout's lstmlib, built from a clean copy of what
    packaging reads (no stale ``build/`` folder can leak into it),
    installed into ``work/site``; returns the folder to put first on
    ``PYTHONPATH``."""
    source, wheels, site = work / "source", work / "wheel", work / "site"
    shutil.copytree(ROOT / "lstmlib", source / "lstmlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--no-build-isolation",      # setuptools of this venv
                    "--quiet", "--wheel-dir", str(wheels), str(source)],
                   check=True)
    (wheel,) = wheels.glob("lstmlib-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps",
                    "--quiet", "--target", str(site), str(wheel)],
                   check=True)
    return site


def copy_alone(notebooks: list[Path], work: Path) -> list[Path]:
    """Each notebook copied into an empty folder of its own."""
    copies = []
    for notebook in notebooks:
        folder = work / "chapters" / notebook.stem
        folder.mkdir(parents=True)
        copies.append(Path(shutil.copy2(notebook, folder)))
    return copies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="chapters to run (default: every book/*.ipynb)")
    parser.add_argument("--seed-base", type=int,
                        default=int(os.environ.get("LSTMLIB_SEED", 0)),
                        help="LSTMLIB_SEED for the chapters "
                             "(default: $LSTMLIB_SEED, else 0)")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or chapters()
    for notebook in notebooks:
        if notebook.suffix != ".ipynb" or not notebook.is_file():
            parser.error(f"expected notebook files (.ipynb), got {notebook}")
    with tempfile.TemporaryDirectory(prefix="lstmlib-outside-") as tmp:
        work = Path(tmp)
        site = install_wheel(work)
        copies = copy_alone(notebooks, work)
        env = dict(os.environ, PYTHONPATH=str(site),
                   LSTMLIB_SEED=str(args.seed_base))
        check = subprocess.run(
            [sys.executable, "-c", "import lstmlib; print(lstmlib.__file__)"],
            cwd=work, env=env, capture_output=True, text=True, check=True)
        if not check.stdout.startswith(str(site)):
            print(f"chapters_outside: lstmlib resolved to "
                  f"{check.stdout.strip()}, not the wheel in {site}",
                  file=sys.stderr)
            return 1
        print(f"lstmlib from the wheel: {check.stdout.strip()}; "
              f"LSTMLIB_SEED={args.seed_base}; {len(copies)} chapter(s), "
              f"each alone in a folder under {work / 'chapters'}",
              flush=True)
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "--nbval-lax", "--nbval-current-env", "--rootdir", str(work),
             *map(str, copies)], cwd=work, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
