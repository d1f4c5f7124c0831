"""`make serve-prod`: ferroscore as it runs in production, on this machine — nginx
(deploy/nginx) in front of the supervised service.

nginx listens on FERROSCORE_FRONT_PORT (8000) and passes whole, checked requests to the
service on FERROSCORE_PORT (8001 here); FERROSCORE_FRONT_TIMEOUT_S (10) bounds the time a
client may take to send its headers, and its body. Every other setting is the service's own
(`ferroscore config`). SIGTERM or SIGINT stops both: the service drains (readiness 503,
in-flight requests answered, decisions written) while nginx finishes what it holds; if
either dies, the other is stopped too. The configuration is rendered into
FERROSCORE_DATA_DIR/front, where nginx also keeps its pid and temporary files."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ferroscore.cli.serve import port_is_free
from ferroscore.config import Settings
from ferroscore.processes.lifecycle import STOP_SIGNALS, block_stop_signals

NGINX = Path(__file__).resolve().parents[1] / "deploy" / "nginx"


def render(text: str, values: dict[str, str]) -> str:
    """`${FERROSCORE_…}` filled from `values`, as envsubst does for the nginx image's
    templates; nginx's own `$variables` are left alone."""
    return re.sub(r"\$\{(FERROSCORE_[A-Z_]+)\}", lambda m: values[m.group(1)], text)


def configure(prefix: Path, front: str, upstream: str, settings: Settings) -> None:
    """Writes nginx.conf and ferroscore.conf into `prefix`, with its temporary directories."""
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "FERROSCORE_FRONT_LISTEN": front,
        "FERROSCORE_UPSTREAM": upstream,
        "FERROSCORE_MAX_BODY": str(settings.max_body_bytes),
        "FERROSCORE_MAX_ARTIFACT": str(settings.max_artifact_bytes),
        "FERROSCORE_FRONT_TIMEOUT": f"{os.environ.get('FERROSCORE_FRONT_TIMEOUT_S', '10')}s",
    }
    template = (NGINX / "templates" / "ferroscore.conf.template").read_text()
    (prefix / "ferroscore.conf").write_text(render(template, values))
    main = (NGINX / "nginx.conf").read_text()
    # Started as root, nginx would run its workers as nobody, who cannot reach the prefix.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(user + main)


def _wait_live(url: str, service: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the service exited with {service.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health/live", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the service did not answer on {url} within {timeout:g} s")


def main() -> int:
    block_stop_signals()
    os.environ.setdefault("FERROSCORE_PORT", "8001")
    settings = Settings.from_env()
    front_port = int(os.environ.get("FERROSCORE_FRONT_PORT", "8000"))
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        print("nginx is not installed: make system-packages (apt-get install nginx-light)",
              file=sys.stderr)  # fmt: skip
        return 2
    if not port_is_free(settings.host, front_port):
        print(f"port {settings.host}:{front_port} is already in use; set FERROSCORE_FRONT_PORT",
              file=sys.stderr)  # fmt: skip
        return 2
    prefix = (settings.data_dir / "front").resolve()
    upstream = f"127.0.0.1:{settings.port}"
    configure(prefix, f"{settings.host}:{front_port}", upstream, settings)
    service = subprocess.Popen([sys.executable, "-m", "ferroscore", "serve"])
    _wait_live(f"http://{upstream}", service)
    proxy = subprocess.Popen([nginx, "-p", f"{prefix}/", "-c", "nginx.conf", "-g", "daemon off;"])
    print(f"ferroscore front (nginx) on http://{settings.host}:{front_port}, "
          f"the service behind it on http://{upstream}", flush=True)  # fmt: skip
    while service.poll() is None and proxy.poll() is None:
        if signal.sigtimedwait(STOP_SIGNALS, 0.2) is not None:
            break
    for process, sig in ((service, signal.SIGTERM), (proxy, signal.SIGQUIT)):
        if process.poll() is None:
            process.send_signal(sig)  # SIGQUIT: nginx's graceful stop
    codes = [service.wait(), proxy.wait()]
    return max(abs(c) for c in codes)


if __name__ == "__main__":
    sys.exit(main())
