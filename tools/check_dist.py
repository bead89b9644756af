"""Build the sdist and the wheel, check them, and import the wheel in a fresh virtualenv.

Run by ``make package-check`` (part of ``make test``). It proves what a pip user gets: the
metadata renders (``twine check``), the wheel holds the three packages with their
``py.typed`` markers, and a venv with only the wheel (and its declared dependencies)
imports ``flagkit``, ``flagkit_django`` and ``flagkit_flask``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flagkit", "flagkit_django", "flagkit_flask")
# The local server's dashboard is package data: without these files it cannot be served.
DASHBOARD_FILES = tuple(
    f"flagkit/server/dashboard/static/{name}" for name in ("index.html", "app.js", "app.css")
)


def run(*args: str | Path, cwd: Path = ROOT) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=cwd, check=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="flagkit-dist-") as tmp:
        out = Path(tmp) / "dist"
        run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ".")
        wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            print(f"expected one wheel and one sdist in {out}, got {wheels + sdists}")
            return 1
        run(sys.executable, "-m", "twine", "check", "--strict", wheels[0], sdists[0])
        names = set(zipfile.ZipFile(wheels[0]).namelist())
        missing = [f"{p}/py.typed" for p in PACKAGES if f"{p}/py.typed" not in names]
        missing += [f for f in DASHBOARD_FILES if f not in names]
        if missing:
            print(f"the wheel lacks {missing}")
            return 1
        env_dir = Path(tmp) / "venv"
        venv.create(env_dir, with_pip=True)
        python = env_dir / "bin" / "python"
        run(python, "-m", "pip", "install", "--quiet", f"{wheels[0]}[django,flask]")
        probe = (
            "import flagkit, flagkit_django, flagkit_flask, pathlib; "
            "assert 'site-packages' in flagkit.__file__, flagkit.__file__; "
            "print('imports from', pathlib.Path(flagkit.__file__).parent.parent, "
            "'version', flagkit.__version__)"
        )
        run(python, "-c", probe, cwd=Path(tmp))
    print("package check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
