"""Adding a source is one folder plus its template: nothing of the service changes.

A copy of the tree gets ``collectors/echo/`` (settings, poller, snapshot, its
catalogue entry and its spec) and ``templates/sections/echo.html``, and no
other file. Then, in that copy, the layer contracts hold, ``check-config``
counts its targets, ``dbpulse run --help`` offers its flag, a running
service polls it, exports its metric and shows its section with its declared
chart on the main page, and the per-source check of rules and dashboards
passes: echo declares no alerts (``rule_groups=()``) and the generator draws
its dashboard from its chart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import DbpulseProcess

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("monitor", "collectors", "demo", "harness", "rules", "dashboards")

FOLDER = {
    "__init__.py": '"""A source that reads a number from its configuration: the smallest source there is."""\n',
    "settings.py": '''"""The echo section."""

from __future__ import annotations

from collectors.base.settings import PollSettings, TargetBase


class EchoTarget(TargetBase):
    url: str

    def derived_name(self) -> str:
        return self.url.rsplit("/", 1)[-1] or "echo"


class EchoSettings(PollSettings):
    targets: list[EchoTarget] = []
''',
    "poller.py": '''"""Reads the number after the last slash of the target's URL."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.base.poller import Poller
from collectors.base.samples import Sample, SampleList
from collectors.echo.settings import EchoSettings, EchoTarget


@dataclass(frozen=True)
class EchoSnapshot:
    target: str
    value: float

    def samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_echo_value", self.value)
        return out.samples


class EchoPoller(Poller):
    source = "echo"

    def __init__(self, target: EchoTarget, settings: EchoSettings) -> None:
        self.target, self.url = target.target, target.url
        self.interval, self.timeout = settings.interval_of(target), settings.timeout_of(target)

    async def poll(self) -> EchoSnapshot:
        return EchoSnapshot(self.target, float(self.url.rsplit("/", 1)[-1]))


def pollers(settings: EchoSettings) -> list[Poller]:
    return [EchoPoller(t, settings) for t in settings.targets]
''',
    "metrics.yaml": '''dbpulse_echo_value:
  type: gauge
  unit: ""
  labels: [target]
  help: The number the echo source read.
''',
    "spec.py": '''"""The echo source's spec."""

from __future__ import annotations

from collectors.base.settings import named_url
from collectors.base.spec import ChartSpec, Flag, SourceSpec
from collectors.echo.poller import EchoSnapshot, pollers
from collectors.echo.settings import EchoSettings

SPEC = SourceSpec(
    name="echo", title="Echo", order=5, settings=EchoSettings, pollers=pollers, snapshot=EchoSnapshot,
    flags=(Flag("--echo", "[NAME=]URL", "an echo to watch (repeatable)", convert=named_url),),
    charts=(ChartSpec("value", "Echoed value", "count", "dbpulse_echo_value", line="value"),),
    rule_groups=(),  # no alerts; its dashboard is drawn from its charts
)
''',
}
TEMPLATE = '''{% import "macros.html" as m %}
{% macro summary(snap) -%}echoed {{ snap.value|num }}{%- endmacro %}
{% macro section(state, snap, now) -%}
{{ m.section_head(state, "Echo") }}
{{ m.charts(charts_of(state)) }}
<p id="echo-value">{{ snap.value|num if snap is not none else "none yet" }}</p>
</section>
{%- endmacro %}
'''


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    for name in COPIED:
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    folder = tree / "collectors" / "echo"
    folder.mkdir()
    for name, text in FOLDER.items():
        (folder / name).write_text(text)
    (tree / "monitor" / "web" / "templates" / "sections" / "echo.html").write_text(TEMPLATE)
    return tree


def dbpulse(tree: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *argv], cwd=tree, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_the_contracts_hold_with_the_new_source(tree: Path) -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_and_flags_know_the_new_source(tree: Path) -> None:
    config = tree / "dbpulse.yaml"
    config.write_text("echo:\n  interval: 1\n  targets:\n    - url: echo://here/7\n")
    checked = dbpulse(tree, "check-config", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "1 Echo target(s)" in checked.stdout and "echo 7 (" in checked.stdout
    assert "--echo [NAME=]URL" in dbpulse(tree, "run", "--help").stdout
    wrong = tree / "wrong.yaml"
    wrong.write_text("echo:\n  targets:\n    - adress: echo://here/7\n")
    assert "echo.targets[0]" in dbpulse(tree, "check-config", str(wrong)).stderr


def test_the_service_polls_exports_and_shows_the_new_source(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)  # `python -m` puts the working directory first: the copy's packages, not the checkout's
    svc = DbpulseProcess("--echo", "answer=echo://here/42", "--interval", "1", "--advisor-interval", "0",
                         env={"PYTHONPATH": str(tree)})
    svc.start()
    try:
        deadline = time.monotonic() + 30
        page = metrics = ""
        while time.monotonic() < deadline:
            metrics = urllib.request.urlopen(svc.base + "/metrics", timeout=5).read().decode()
            page = urllib.request.urlopen(svc.base + "/", timeout=5).read().decode()
            if 'dbpulse_echo_value{target="answer"} 42.0' in metrics and 'id="echo-value">42<' in page:
                break
            time.sleep(0.3)
        assert 'dbpulse_echo_value{target="answer"} 42.0' in metrics
        assert 'id="echo-value">42<' in page
        assert 'data-chart="echo:answer:value"' in page
    finally:
        svc.stop()


def test_its_dashboard_is_drawn_from_its_spec_and_the_per_source_check_passes(tree: Path) -> None:
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from collectors.registry import sources\n"
        "from tests.lint.source_parts import generator, panel_exprs, problems\n"
        "boards = generator(Path('.')).boards()\n"
        "echo = [b() for b in boards['echo']]\n"
        "print(json.dumps({'problems': problems(Path('.'), sources(), boards), 'uids': [m['uid'] for m in echo],\n"
        "                  'exprs': [e for m in echo for e in panel_exprs(m)]}))\n"
    )
    # The copy's packages first; the checkout's tests (the check itself) after them.
    result = subprocess.run([sys.executable, "-c", script], cwd=tree, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": f"{tree}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["problems"] == []
    assert out["uids"] == ["dbpulse-echo"]
    assert out["exprs"] == ['dbpulse_echo_value{job=~"$job", instance=~"$instance", target=~"$target"}']
