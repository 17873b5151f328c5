"""Git facts recorded with a job (jobs/gitinfo.py): remote, commit, branch, capped diff."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from launch_jupyter.jobs import capture
from launch_jupyter.jobs.gitinfo import git_info, safe_remote


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, make_notebook) -> Path:
    """A work tree with one commit on branch 'main', a remote holding a token, a notebook."""
    folder = tmp_path
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "config", "user.email", "t@example.com")
    _git(folder, "config", "user.name", "T")
    _git(folder, "remote", "add", "origin", "https://ghp_TOKEN123@github.com/acme/models.git")
    make_notebook([("parameters", "lr = 0.1"), "print(lr)"], name="train.ipynb")
    (folder / "helper.py").write_text("X = 1\n")
    _git(folder, "add", ".")
    _git(folder, "commit", "-q", "-m", "first")
    return folder


def test_capture_records_remote_commit_branch_without_credentials(repo: Path):
    job = capture(repo / "train.ipynb")
    git = job.spec()["git"]
    assert git["commit"] == _git(repo, "rev-parse", "HEAD")
    assert git["branch"] == "main"
    assert git["remote"] == "https://github.com/acme/models.git"
    assert "TOKEN" not in str(job.spec())
    assert git["dirty"] is False and git["diff"] == "" and git["untracked"] == []


def test_uncommitted_changes_are_recorded_but_hidden_files_are_not(repo: Path):
    (repo / "helper.py").write_text("X = 2\n")
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "notes.txt").write_text("new\n")
    git = git_info(repo)
    assert git is not None and git["dirty"] is True
    assert "-X = 1" in git["diff"] and "+X = 2" in git["diff"]
    assert git["untracked"] == ["notes.txt"]
    _git(repo, "add", "-f", ".env")
    assert "SECRET" not in git_info(repo)["diff"]


def test_the_diff_is_capped(repo: Path):
    (repo / "helper.py").write_text("".join(f"line {n}\n" for n in range(5000)))
    git = git_info(repo, max_diff=1000)
    assert git["diff_truncated"] is True and len(git["diff"].encode()) <= 1000


def test_git_facts_stay_out_of_the_digest(repo: Path):
    first = capture(repo / "train.ipynb")
    (repo / "unrelated.txt").write_text("x\n")
    _git(repo, "add", "unrelated.txt")
    _git(repo, "commit", "-q", "-m", "second")
    _git(repo, "checkout", "-q", "-b", "feature")
    second = capture(repo / "train.ipynb")
    assert second.spec()["git"]["commit"] != first.spec()["git"]["commit"]
    assert second.spec()["git"]["branch"] == "feature"
    assert second.digest == first.digest


def test_outside_a_work_tree_there_is_nothing(make_notebook, tmp_path: Path):
    assert capture(make_notebook(["x = 1"])).spec()["git"] is None
    assert git_info(tmp_path) is None


def test_a_repository_without_commits_has_no_commit(tmp_path: Path, make_notebook):
    _git(tmp_path, "init", "-q", "-b", "trunk")
    nb = make_notebook(["x = 1"])
    git = capture(nb).spec()["git"]
    assert git["commit"] is None and git["branch"] == "trunk" and git["untracked"] == [nb.name]


def test_safe_remote_keeps_ssh_and_plain_urls():
    assert safe_remote("git@github.com:acme/x.git") == "git@github.com:acme/x.git"
    assert safe_remote("https://u:p@host/x") == "https://host/x"
    assert safe_remote("https://host/x") == "https://host/x"


def test_job_show_prints_git_and_lock(repo: Path, cli, home: Path):
    (repo / "helper.py").write_text("X = 3\n")
    ref = cli("job", "create", str(repo / "train.ipynb"), check=True).stdout.strip()
    shown = cli("job", "show", ref, check=True).stdout
    commit = _git(repo, "rev-parse", "HEAD")
    assert (f"git: https://github.com/acme/models.git commit {commit[:12]} branch main, "
            "uncommitted changes") in shown
    assert "+X = 3" in shown
    assert "lock: 0 packages" in shown
    data = cli.json("job", "show", ref)
    assert data["git"]["commit"] == commit and data["git"]["dirty"] is True
    assert data["lock"]["packages"] == [] and data["lock"]["direct"] == []
