"""Static checks of the Dockerfile, compose.yaml and the Kubernetes example (no Docker engine here):
the files parse, every path they name exists, the configurations they carry validate, and the
image's entrypoint and HEALTHCHECK commands work when run directly."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.servers import free_port
from monitor.config import validate

ROOT = Path(__file__).resolve().parents[2]


# --- Dockerfile --------------------------------------------------------------------
def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    assert not current, "a continuation line runs off the end of the Dockerfile"
    return out


def _dockerignore_allows(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes. Checks the path and its parents."""
    allowed = True
    candidates = [path] + [str(p) for p in Path(path).parents if str(p) != "."]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        if any(fnmatch.fnmatch(c, pat) or (pat == "**") for c in candidates):
            allowed = negate
    return allowed


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions(ROOT / "Dockerfile")


def test_dockerfile_copies_only_existing_paths_the_context_keeps(instructions: list[tuple[str, str]]) -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    copies = [args for word, args in instructions if word in ("COPY", "ADD")]
    assert copies
    for args in copies:
        parts = [p for p in args.split() if not p.startswith("--")]
        if "--from=" in args:
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            assert _dockerignore_allows(source.rstrip("/"), ignore), f"{source} is excluded by .dockerignore"
    # the package data the UI needs is inside a copied directory
    assert (ROOT / "monitor/web/static/ui.js").exists()


def test_dockerfile_runs_non_root_with_healthcheck(instructions: list[tuple[str, str]]) -> None:
    words = [w for w, _ in instructions]
    assert words[0] in ("ARG", "FROM")
    users = [a for w, a in instructions if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    last_from = max(i for i, (w, _) in enumerate(instructions) if w == "FROM")
    assert any(w == "USER" for w, _ in instructions[last_from:]), "the runtime stage must set USER"
    health = [a for w, a in instructions if w == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0]
    for word in ("ENTRYPOINT", "CMD"):
        values = [a for w, a in instructions if w == word]
        assert values and isinstance(json.loads(values[-1]), list), f"{word} must be exec form"
    assert "EXPOSE" in words


def _healthcheck_argv(instructions: list[tuple[str, str]]) -> list[str]:
    args = next(a for w, a in instructions if w == "HEALTHCHECK")
    cmd = args[args.index("CMD") + 3:].strip()
    argv: list[str] = json.loads(cmd)
    return argv


def test_image_entrypoint_and_healthcheck_work_when_run_directly(
    instructions: list[tuple[str, str]], fresh_db: str
) -> None:
    """ENTRYPOINT + CMD with the baked-in config, configured by environment as in the image."""
    entrypoint = json.loads(next(a for w, a in reversed(instructions) if w == "ENTRYPOINT"))
    cmd = json.loads(next(a for w, a in reversed(instructions) if w == "CMD"))
    assert entrypoint == ["dbpulse"]
    config_path = cmd[cmd.index("--config") + 1]
    copied = next(a.split() for w, a in instructions if w == "COPY" and a.split()[-1] == config_path)
    local_config = ROOT / copied[-2]
    exe = shutil.which("dbpulse", path=str(Path(sys.executable).parent)) or "dbpulse"
    argv = [exe, *[str(local_config) if a == config_path else a for a in cmd]]
    port = free_port()
    env = {**os.environ, "DBPULSE_LISTEN": f"127.0.0.1:{port}", "DBPULSE_POSTGRES": fresh_db}
    health = _healthcheck_argv(instructions)
    health[0] = sys.executable if health[0] == "python" else health[0]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        ok = False
        while time.monotonic() < deadline and not ok:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            ok = subprocess.run(health, env=env, capture_output=True, timeout=10).returncode == 0
            time.sleep(0.2)
        assert ok, "the HEALTHCHECK command never succeeded against the running entrypoint"
    finally:
        proc.terminate()
        proc.wait(10)
    # ... and it fails when nothing listens
    assert subprocess.run(health, env=env, capture_output=True, timeout=10).returncode != 0


def test_image_without_targets_says_what_to_configure(instructions: list[tuple[str, str]]) -> None:
    config = ROOT / "deploy/docker/dbpulse.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBPULSE_")}
    result = subprocess.run([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                            env={**env, "DBPULSE_LISTEN": f"127.0.0.1:{free_port()}"},
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and "nothing to watch" in result.stderr


# --- compose.yaml ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "dbpulse", "prometheus", "alertmanager", "grafana"} <= set(services)
    command = " ".join(services["postgres"]["command"])
    assert "shared_preload_libraries=pg_stat_statements" in command
    dockerfile = ROOT / services["postgres"]["build"]["context"] / services["postgres"]["build"]["dockerfile"]
    assert "hypopg" in dockerfile.read_text()
    assert services["dbpulse"]["build"] in (".", {"context": "."})
    assert "19630:19630" in services["dbpulse"]["ports"]


def test_compose_mounts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("."):
                assert (ROOT / host).exists(), f"{name}: {host} does not exist"
        build = service.get("build")
        if isinstance(build, dict):
            assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).exists()
        elif build:
            assert (ROOT / build / "Dockerfile").exists()


def _mount(service: dict[str, Any], target: str) -> Path:
    for volume in service["volumes"]:
        host, container = volume.split(":")[:2]
        if container == target:
            return ROOT / host
    raise AssertionError(f"nothing mounted at {target}")


def test_compose_configs_are_valid_and_consistent(compose: dict[str, Any], tmp_path: Path) -> None:
    services = compose["services"]
    # dbpulse's file validates, its hosts are compose services, its password comes from the environment
    config_file = _mount(services["dbpulse"], "/etc/dbpulse/dbpulse.yaml")
    config = validate(yaml.safe_load(config_file.read_text()), str(config_file))
    assert config.postgres.targets and config.redis.targets
    assert "@postgres:" in config.postgres.targets[0].dsn and "redis:6379" in config.redis.targets[0].url
    assert config.postgres.targets[0].password_env in services["dbpulse"]["environment"]
    # Prometheus: scrapes dbpulse, alerts to alertmanager, loads the rules directory that is mounted
    prom_file = _mount(services["prometheus"], "/etc/prometheus/prometheus.yml")
    prom = yaml.safe_load(prom_file.read_text())
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert "dbpulse:19630" in targets
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]
    rules_dir = _mount(services["prometheus"], "/etc/prometheus/rules")
    pattern = prom["rule_files"][0].replace("/etc/prometheus/rules/", "")
    rule_files = sorted(rules_dir.glob(pattern))
    assert rule_files, f"no rule file matches {pattern} in {rules_dir}"
    assert _mount(services["alertmanager"], "/etc/alertmanager/alertmanager.yml").exists()
    # Grafana: the dashboards provider reads the path where the dashboards are mounted
    provider_dir = _mount(services["grafana"], "/etc/grafana/provisioning/dashboards")
    provider = yaml.safe_load(next(provider_dir.glob("*.yaml")).read_text())
    dash_path = provider["providers"][0]["options"]["path"]
    assert list(_mount(services["grafana"], dash_path).glob("*.json"))
    datasources = yaml.safe_load(next(_mount(services["grafana"], "/etc/grafana/provisioning/datasources")
                                      .glob("*.yaml")).read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    # promtool, where installed, checks the Prometheus file with the rules it will load
    promtool = shutil.which("promtool")
    if promtool:
        local = dict(prom, rule_files=[str(p) for p in rule_files])
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(local))
        result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_compose_postgres_init_script_is_valid_shell() -> None:
    for script in (ROOT / "deploy/compose/postgres-init").glob("*.sh"):
        assert os.access(script, os.X_OK), f"{script} must be executable"
        assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0


# --- Kubernetes ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    kdir = ROOT / "deploy/kubernetes"
    kustomization = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        assert (kdir / resource).exists(), resource
        docs.extend(d for d in yaml.safe_load_all((kdir / resource).read_text()) if d)
    docs.extend(d for d in yaml.safe_load_all((kdir / "podmonitor.yaml").read_text()) if d)
    return docs


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{kind}: {len(found)}"
    return found[0]


def test_kubernetes_sidecar_with_probes(manifests: list[dict[str, Any]]) -> None:
    deployment = _one(manifests, "Deployment")
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert len(containers) >= 2, "dbpulse runs next to the application container"
    sidecar = containers["dbpulse"]
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports["metrics"] == 19630
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert sidecar["securityContext"]["runAsUser"] != 0
    # the config file the args name is the ConfigMap's key, mounted where the args say
    config_arg = sidecar["args"][sidecar["args"].index("--config") + 1]
    mount = next(m for m in sidecar["volumeMounts"] if config_arg.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    configmap = next(d for d in manifests if d["kind"] == "ConfigMap"
                     and d["metadata"]["name"] == volume["configMap"]["name"])
    key = config_arg[len(mount["mountPath"]) + 1:]
    config = validate(yaml.safe_load(configmap["data"][key]), f"ConfigMap {key}")
    assert config.health.targets and config.health.targets[0].url.startswith("http://127.0.0.1:")
    # the password comes from the Secret that the example defines, under the env name the config reads
    env = {e["name"]: e for e in sidecar["env"]}
    password_env = config.postgres.targets[0].password_env
    assert password_env in env
    ref = env[password_env]["valueFrom"]["secretKeyRef"]
    secret = next(d for d in manifests if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"])
    assert ref["key"] in secret["stringData"]


def test_kubernetes_service_and_monitors_select_the_metrics_port(manifests: list[dict[str, Any]]) -> None:
    deployment = _one(manifests, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = _one(manifests, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    monitor = _one(manifests, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    pods = _one(manifests, "PodMonitor")
    assert pods["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pods["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
