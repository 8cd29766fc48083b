"""`make stepN DOCKER=1`'s own output, with docker compose and the demo stood in for (no engine in CI)."""

from __future__ import annotations

from workshop.lessons.stages import find_stage
from workshop.runner import docker


def test_the_app_line_names_the_repository_the_demo_asked_for(monkeypatch, capsys):
    """DEMO_REPO moves the demo's repository: the `curl` line printed after it said pallets/flask anyway."""
    asked = []

    def demo_run(demo):
        asked.append((demo.app_url, demo.repo))
        return True, None

    monkeypatch.setattr(docker, "docker_engine_answers", lambda: True)
    monkeypatch.setattr(docker, "_compose", lambda *args, **kwargs: 0)
    monkeypatch.setattr(docker.Demo, "run", demo_run)
    monkeypatch.setenv("DEMO_REPO", "octocat/hello-world")
    monkeypatch.setenv("APP_PORT", "18480")
    assert docker.run_with_docker(find_stage("step3"), once=True) == 0
    assert asked == [("http://localhost:18480", "octocat/hello-world")]
    assert "app: curl localhost:18480/contributors/octocat/hello-world" in capsys.readouterr().out


def test_lesson_9_is_asked_through_traefik(monkeypatch, capsys):
    monkeypatch.setattr(docker, "docker_engine_answers", lambda: True)
    monkeypatch.setattr(docker, "_compose", lambda *args, **kwargs: 0)
    monkeypatch.setattr(docker.Demo, "run", lambda demo: (True, None))
    monkeypatch.delenv("DEMO_REPO", raising=False)
    monkeypatch.setenv("EDGE_PORT", "18483")
    assert docker.run_with_docker(find_stage("step9"), once=True) == 0
    assert "app: curl localhost:18483/contributors/pallets/flask" in capsys.readouterr().out
