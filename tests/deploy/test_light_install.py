"""The light install for users (issue 24, 8): `make install` puts dbpulse and only what `dbpulse run` needs into a
virtualenv of its own, with nothing of the test toolchain and nothing of the checkout; the command works.

It runs the real target on a clean virtualenv (DBPULSE_HOME and BINDIR point into a temporary directory, as a user
would point them into their home), then `dbpulse --version`, `dbpulse check-config` on the example configuration
and `dbpulse advise --help`. How long it takes is measured and printed, not asserted (a loaded CI machine is
slow); docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Test tools, the demo's libraries and the development checkout: none of them belongs to a user's install.
NOT_INSTALLED = {"pytest", "pytest-asyncio", "hypothesis", "mypy", "ruff", "import-linter", "looptime", "psutil",
                 "tpchgen-cli", "sqlalchemy", "greenlet", "types-pyyaml"}


def test_make_install_is_light_and_gives_a_working_command(tmp_path: Path) -> None:
    home, bindir = tmp_path / "dbpulse", tmp_path / "bin"
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("DBPULSE_")}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if not p.startswith(str(ROOT)))
    started = time.monotonic()
    result = subprocess.run(["make", "-s", "install", f"DBPULSE_HOME={home}", f"BINDIR={bindir}"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    print(f"make install took {took:.1f} s")  # measured, not asserted: see docs/benchmarks.md
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"install: {bindir}/dbpulse (dbpulse " in result.stdout

    dbpulse = bindir / "dbpulse"
    assert dbpulse.is_symlink() and dbpulse.resolve() == (home / "venv" / "bin" / "dbpulse").resolve()
    version = subprocess.run([str(dbpulse), "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("dbpulse "), version.stderr

    python = home / "venv" / "bin" / "python"
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                            capture_output=True, text=True, env=env, timeout=120)
    packages = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "dbpulse" in packages and {"aiohttp", "psycopg", "pglast", "rich"} <= packages
    assert not packages & NOT_INSTALLED, packages & NOT_INSTALLED
    # an installed copy, not the checkout: the demo and the test servers are not part of it
    probe = subprocess.run([str(python), "-c", "import importlib.util as u, monitor; print(monitor.__file__); "
                            "print(u.find_spec('demo'), u.find_spec('harness'))"],
                           capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert str(home) in probe.stdout.splitlines()[0] and probe.stdout.splitlines()[1] == "None None"

    # the example configuration checks out, once its secrets exist (a password in the environment, one in a file)
    secret = tmp_path / "billing-db"
    secret.write_text("s3cret\n")
    config = tmp_path / "dbpulse.yaml"
    config.write_text((ROOT / "examples" / "dbpulse.yaml").read_text().replace("/run/secrets/billing-db", str(secret)))
    checked = subprocess.run([str(dbpulse), "check-config", str(config)], capture_output=True, text=True,
                             env={**env, "DBPULSE_SHOP_PASSWORD": "s3cret"}, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "s3cret" not in checked.stdout + checked.stderr
    helped = subprocess.run([str(dbpulse), "advise", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert helped.returncode == 0 and "--format {text,md,json,html}" in helped.stdout
