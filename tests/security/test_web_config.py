"""--web-config: TLS (with and without client certificates) and basic auth on a real server."""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from monitor.cli import main
from tests.support import DbpulseProcess

PASSWORD = "Canary-Web-8814"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
                str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(d / f"{name}.ext"),
                "-out", str(d / f"{name}.crt"))
    return d


def fetch(url: str, context: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None,
          timeout: float = 5) -> int:
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout,
                                    context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def client_context(pki: Path, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if with_cert:
        context.load_cert_chain(pki / "client.crt", pki / "client.key")
    return context


def test_basic_auth_guards_every_path_but_healthz(fresh_db: str, tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    web = tmp_path / "web.yaml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--web-config", str(web), "--interval", "1").start(
            wait_ready=False) as svc:
        base = svc.base
        assert fetch(base + "/healthz") == 200
        for path in ("/metrics", "/readyz", "/", "/nope"):
            assert fetch(base + path) == 401, path
            assert fetch(base + path, auth=("prometheus", "wrong")) == 401, path
            assert fetch(base + path, auth=("nobody", PASSWORD)) == 401, path
        assert fetch(base + "/metrics", auth=("prometheus", PASSWORD)) == 200
        assert fetch(base + "/metrics", auth=("prometheus", PASSWORD)) == 200  # cached check
    assert PASSWORD not in svc.log


def test_tls_with_required_client_certificates(fresh_db: str, pki: Path, tmp_path: Path) -> None:
    web = tmp_path / "web.yaml"
    web.write_text(
        "tls_server_config:\n"
        f"  cert_file: {pki / 'server.crt'}\n  key_file: {pki / 'server.key'}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki / 'ca.crt'}\n"
        "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n"
    )
    svc = DbpulseProcess("--postgres", f"shop={fresh_db}", "--web-config", str(web), "--interval", "1")
    svc.base = svc.base.replace("http://", "https://")
    svc.proc = subprocess.Popen(svc.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=svc.env)
    try:
        url = f"https://127.0.0.1:{svc.port}/metrics"
        good = client_context(pki, with_cert=True)
        for _ in range(100):
            try:
                if fetch(url, good) == 200:
                    break
            except (urllib.error.URLError, ConnectionError, ssl.SSLError):
                pass
            time.sleep(0.1)
        assert fetch(url, good) == 200
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            fetch(url, client_context(pki, with_cert=False))
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served
            fetch(f"http://127.0.0.1:{svc.port}/metrics")
        with urllib.request.urlopen(url, context=good, timeout=5) as response:
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        svc.proc.terminate()
        svc.proc.wait(10)


@pytest.mark.parametrize(("content", "expected"), [
    ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users: passwords must be bcrypt hashes"),
    ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
     "tls_server_config.cert_file: file not found"),
    ("tls_srv_config: {}\n", "tls_srv_config: unknown key"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n",
     "tls_server_config.min_version: must be one of"),
])
def test_bad_web_config_is_a_clear_error(content: str, expected: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    web = tmp_path / "web.yaml"
    web.write_text(content)
    assert main(["run", "--postgres", "postgresql:///x", "--web-config", str(web)]) == 2
    err = capsys.readouterr().err
    assert str(web) in err and expected in err


def test_bad_passwords_never_stall_the_event_loop(fresh_db: str, tmp_path: Path) -> None:
    """bcrypt runs off the event loop: a flood of wrong passwords leaves /healthz and polls responsive."""
    import concurrent.futures

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=12)).decode()
    web = tmp_path / "web.yaml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--web-config", str(web), "--interval", "0.5").start(
            wait_ready=False) as svc:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            # One check at a time, each deliberately slow: the last of the flood waits for seven others, which
            # takes a while on a loaded machine, hence its long timeout.
            flood = [pool.submit(fetch, svc.base + "/metrics", None, ("prometheus", f"wrong{i}"), 120)
                     for i in range(8)]
            for _ in range(10):
                assert fetch(svc.base + "/healthz") == 200
            pending = sum(not f.done() for f in flood)  # eight checks, one at a time: most still queued
            assert all(f.result() == 401 for f in flood)
        assert pending > 0


async def test_bcrypt_runs_off_the_event_loop_one_check_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spy on the real bcrypt.checkpw: never on the event loop's thread, never two at once, and
    unknown users cost a check too (against a dummy hash), so timing does not tell names apart."""
    import asyncio
    import threading

    from monitor.web.webconfig import BasicAuth

    loop_thread = threading.get_ident()
    calls: list[int] = []
    running, most = 0, 0
    lock = threading.Lock()
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        calls.append(threading.get_ident())
        try:
            return real(password, hashed)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    auth = BasicAuth({"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()})

    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    results = await asyncio.gather(*(auth.check(header("prometheus", f"wrong{i}")) for i in range(6)),
                                   auth.check(header("nobody", PASSWORD)), auth.check(header("prometheus", PASSWORD)))
    assert results == [False] * 7 + [True]
    assert len(calls) == 8 and loop_thread not in calls and most == 1
    assert await auth.check(header("prometheus", PASSWORD)) and len(calls) == 8  # good credentials remembered
