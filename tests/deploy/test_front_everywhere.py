"""Every deployment we ship puts the front (nginx from deploy/nginx) before the service:
the Kubernetes pod declares only the front's port and the Service targets it, the service
listens on loopback, the probes go through the front; compose publishes only nginx; the
container's nginx configuration is valid and sized as the serve-prod one."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
NGINX = ROOT / "deploy" / "nginx"


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _containers() -> dict[str, dict[str, Any]]:
    [deployment] = _documents("deployment.yaml")
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_the_pod_is_reached_through_the_front_only() -> None:
    containers = _containers()
    front, service = containers["front"], containers["ferroscore"]
    assert "ports" not in service, "the service declares no port: the front's is the pod's"
    assert front["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    [svc] = _documents("service.yaml")
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]
    config = {d["metadata"]["name"]: d["data"] for d in _documents("configmap.yaml")}
    assert config["ferroscore"]["FERROSCORE_HOST"] == "127.0.0.1"
    assert config["ferroscore-front"]["FERROSCORE_UPSTREAM"] == (
        f"127.0.0.1:{config['ferroscore']['FERROSCORE_PORT']}"
    )
    assert config["ferroscore-front"]["FERROSCORE_FRONT_LISTEN"] == "8000"
    for container in containers.values():
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in ("http", 8000), (container, probe)


def test_compose_publishes_the_front_only() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "ports" not in services["ferroscore"]
    assert services["ferroscore"]["environment"]["FERROSCORE_FRONT"] == "true"
    assert services["nginx"]["build"]["dockerfile"] == "deploy/nginx/Dockerfile"


def test_both_nginx_configurations_are_sized_alike() -> None:
    def sizes(text: str) -> list[str]:
        return re.findall(r"(worker_rlimit_nofile \d+|worker_connections \d+)", text)

    assert sizes((NGINX / "nginx.conf").read_text()) == sizes(
        (NGINX / "container.conf").read_text()
    )


def test_the_container_configuration_is_valid_nginx(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from serve_prod import render

    values = {"FERROSCORE_FRONT_LISTEN": "127.0.0.1:8000", "FERROSCORE_UPSTREAM": "127.0.0.1:8001",
              "FERROSCORE_MAX_BODY": "1048576", "FERROSCORE_MAX_ARTIFACT": "268435456",
              "FERROSCORE_FRONT_TIMEOUT": "10s"}  # fmt: skip
    template = (NGINX / "templates" / "ferroscore.conf.template").read_text()
    (tmp_path / "ferroscore.conf").write_text(render(template, values))
    main = (NGINX / "container.conf").read_text().replace("/tmp/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(main)
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    assert nginx is not None
    checked = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf")],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
