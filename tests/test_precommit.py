"""The pre-commit hooks: their definitions, and real `pre-commit try-repo` runs against this checkout.

try-repo clones this checkout (with its uncommitted changes) and builds the
hooks' environment the way pre-commit always does: a fresh virtualenv and
``pip install .``. Installing torch into it from the registry would take
minutes and gigabytes per run, so the test lets pip find the dependencies
already installed in the test venv (a folder of links to them on PYTHONPATH,
without auditor itself) and forbids the index: auditor in the hook
environment is still the wheel pip builds from this checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART, REPO

from auditor.testing import make_image_folder, run_cli, write_manifest

HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"


def _hooks() -> dict[str, dict]:
    return {hook["id"]: hook for hook in yaml.safe_load(HOOKS_FILE.read_text(encoding="utf-8"))}


# -- the definitions -------------------------------------------------------------------


def test_hook_definitions_pass_pre_commits_own_schema():
    from pre_commit import clientlib  # the test extra installs pre-commit: missing is a failure, not a skip

    loaded = clientlib.load_manifest(str(HOOKS_FILE))
    assert {hook["id"] for hook in loaded} >= {"auditor-validate", "auditor-static"}


def test_validate_hook_takes_changed_manifests_quietly():
    hook = _hooks()["auditor-validate"]
    assert hook["entry"].split() == ["auditor", "validate", "--quiet"]
    assert hook["language"] == "python" and hook["pass_filenames"] is True
    pattern = re.compile(hook["files"])
    for path in ("audit.yaml", "audit.yml", "configs/audit-ci.yaml", "exp/audit_large.yml"):
        assert pattern.search(path), path
    for path in (
        "data/labels.yaml",
        "myaudit.yaml",
        "audit.yaml.bak",
        "audit/notes.txt",
        ".pre-commit-config.yaml",
    ):
        assert not pattern.search(path), path


def test_static_hook_runs_once_on_its_manifest_argument():
    hook = _hooks()["auditor-static"]
    assert hook["entry"].split() == ["auditor", "run", "--static", "--quiet", "--format", "json", "--redact"]
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False and hook["require_serial"] is True


# -- what the hooks' commands do ----------------------------------------------------------


def _project(root: Path, *, dog: int, typo: bool) -> Path:
    """A small labelled project: `dog: 2` makes LD001/LD005 warnings; `typo` an invalid second manifest."""
    make_image_folder(root / "data" / "train", {"cat": 30, "dog": dog}, size=16)
    make_image_folder(root / "data" / "val", {"cat": 5, "dog": 5}, size=16, seed=1)
    splits = {
        "train": {"format": "image_folder", "root": "data/train"},
        "val": {"format": "image_folder", "root": "data/val"},
    }
    write_manifest(
        root, {"version": 1, "data": splits, "audits": {"label_distribution": {}}, "fail_on": "warning"}
    )
    option = "max_imbalance_ration" if typo else "max_imbalance_ratio"
    write_manifest(
        root / "configs" / "audit-strict.yaml",
        {
            "version": 1,
            "data": {"train": {"format": "image_folder", "root": "../data/train"}},
            "audits": {"label_distribution": {option: 50}},
        },
    )
    return root


def test_hook_commands_are_quiet_when_clean_and_deterministic_when_not(tmp_path):
    clean = _project(tmp_path / "clean", dog=30, typo=False)
    for args in (
        ("validate", "--quiet", "audit.yaml", "configs/audit-strict.yaml"),
        ("run", "--static", "--quiet"),
    ):
        result = run_cli(*args, cwd=clean)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stdout + result.stderr

    dirty = _project(tmp_path / "dirty", dog=2, typo=True)
    outputs = []
    for seed in ("1", "2"):  # different string-hash orders, as two separate commits would get
        result = run_cli("run", "--static", "--quiet", cwd=dirty, env={"PYTHONHASHSEED": seed})
        assert result.returncode == 1, result.stdout + result.stderr
        outputs.append(re.sub(r"in \d+\.\d+s", "in <t>", result.stdout))
    assert "LD001" in outputs[0] and "LD005" in outputs[0]
    assert outputs[0] == outputs[1]  # same findings, same order, same text: only the timing differs
    invalid = run_cli("validate", "--quiet", "audit.yaml", "configs/audit-strict.yaml", cwd=dirty)
    assert invalid.returncode == 2 and "max_imbalance_ration" in invalid.stderr and invalid.stdout == ""


_COUNT_OPENS = textwrap.dedent("""
    import json, os, sys
    root = os.path.realpath(sys.argv[1])
    opened = set()
    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(args[0]))
            if path.startswith(root + os.sep):
                opened.add(os.path.relpath(path, root))
    sys.addaudithook(hook)
    from auditor.cli.app import main
    code = main(sys.argv[3:])
    with open(sys.argv[2], "w") as out:
        json.dump(sorted(opened), out)
    sys.exit(code)
""")


def _files_opened(data: Path, *args: str, cwd: Path) -> tuple[int, list[str]]:
    """Run auditor in a subprocess; return its exit code and every file under ``data`` it opened."""
    log = cwd / "opened.json"
    done = subprocess.run(
        # --in-process: the audit hook counts the opens of its own process, and `auditor run` otherwise
        # reads the data in a worker process (docs/reliability.md).
        [
            sys.executable,
            "-c",
            _COUNT_OPENS,
            str(data),
            str(log),
            *args,
            *(["--in-process"] if args[0] == "run" else []),
        ],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, json.loads(log.read_text())


def test_label_counting_reads_no_image_bytes(tmp_path):
    project = _project(tmp_path, dog=2, typo=False)
    code, opened = _files_opened(project / "data", "run", "--static", "--quiet", cwd=project)
    assert code == 1 and opened == []


@pytest.mark.slow
def test_leakage_rerun_reads_only_changed_images(tmp_path):
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART / "data", project / "data")
    splits = {name: {"format": "image_folder", "root": f"data/{name}"} for name in ("train", "val")}
    write_manifest(project, {"version": 1, "data": splits, "audits": {"split_leakage": {}}})
    args = ("run", "--static", "--quiet", "--format", "json")  # as the auditor-static hook runs it
    _, first = _files_opened(project / "data", *args, cwd=project)
    assert first, "the first run must hash the images"
    _, second = _files_opened(project / "data", *args, cwd=project)
    assert second == [], f"a re-run with a warm cache read {len(second)} unchanged images: {second[:5]}"
    changed = project / "data" / first[0]
    changed.write_bytes(changed.read_bytes() + b"\0")  # same name, new content and size
    _, third = _files_opened(project / "data", *args, cwd=project)
    assert third == [first[0]]


@pytest.mark.slow
def test_static_hook_rerun_on_the_quickstart_reads_no_image(tmp_path):
    """Every static audit together, as the hook runs them: hashes and measurements come from the cache."""
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns("reports", ".auditor-cache"))
    args = _hooks()["auditor-static"]["entry"].split()[1:]
    code, first = _files_opened(project / "data", *args, "audit.yaml", cwd=project)
    assert code == 1 and first, "the first run must read the images"
    code, second = _files_opened(project / "data", *args, "audit.yaml", cwd=project)
    assert code == 1 and second == [], f"a warm re-run read {len(second)} unchanged images: {second[:5]}"


# -- real pre-commit ---------------------------------------------------------------------


def _dependency_links(target: Path) -> Path:
    """Links to every installed distribution except auditor and pip: pip in the hook env installs auditor itself."""
    target.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(("auditor", "__editable__", "_auditor", "pip")) or name.endswith(".pth"):
            continue
        (target / entry.name).symlink_to(entry)
    return target


@pytest.fixture(scope="module")
def precommit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--git-dir"], check=False, capture_output=True
    ).returncode:
        pytest.skip("this checkout is not a git repository, which pre-commit try-repo needs")
    import pre_commit  # noqa: F401 - the test extra installs it: missing is a failure, not a skip

    # The hooks file is part of the product: a missing or untracked one fails, it is not skipped.
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--error-unmatch", ".pre-commit-hooks.yaml"],
        check=False,
        capture_output=True,
    )
    assert tracked.returncode == 0, ".pre-commit-hooks.yaml is not tracked by git, so try-repo cannot see it"
    root = tmp_path_factory.mktemp("precommit")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_INDEX_URL")}
    env.update(
        PYTHONPATH=str(_dependency_links(root / "deps")),
        PIP_NO_INDEX="1",  # no network: every dependency must come from the links above
        PIP_NO_BUILD_ISOLATION="false",  # pip's inverted spelling: "false" turns isolation off
        PRE_COMMIT_HOME=str(root / "pre-commit-home"),
        VIRTUALENV_OVERRIDE_APP_DATA=str(root / "virtualenv-app-data"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        NO_COLOR="1",
        COLUMNS="120",
        TERM="dumb",
    )
    return env


def _git(cwd: Path, *args: str, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _try_repo(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Every hook of this checkout on the staged files: what `git commit` would run."""
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO)],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _status(output: str, hook_name_start: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(hook_name_start))
    return line.rsplit(".", 1)[-1].strip()


@pytest.mark.slow
def test_try_repo_fails_a_bad_commit_and_passes_the_fixed_one(tmp_path, precommit_env):
    project = _project(tmp_path / "project", dog=2, typo=True)
    (project / ".gitignore").write_text("reports/\n.auditor-cache/\n")
    _git(project, "init", "-q", ".", env=precommit_env)
    _git(project, "add", "-A", env=precommit_env)

    failing = _try_repo(project, precommit_env)
    output = failing.stdout + failing.stderr
    assert failing.returncode == 1, output
    assert _status(output, "auditor validate") == "Failed", output
    assert _status(output, "auditor static") == "Failed", output
    assert "max_imbalance_ration" in output and "audit-strict.yaml" in output  # validate names file and key
    assert "LD001" in output and "LD005" in output  # static names the findings

    make_image_folder(project / "data" / "train", {"cat": 30, "dog": 30}, size=16, seed=2)
    strict = project / "configs" / "audit-strict.yaml"
    strict.write_text(strict.read_text().replace("max_imbalance_ration", "max_imbalance_ratio"))
    _git(project, "add", "-A", env=precommit_env)
    passing = _try_repo(project, precommit_env)
    output = passing.stdout + passing.stderr
    assert passing.returncode == 0, output
    assert _status(output, "auditor validate") == "Passed", output
    assert _status(output, "auditor static") == "Passed", output
    assert "LD0" not in output and "report:" not in output  # quiet when clean
    _git(project, "commit", "-q", "-m", "balanced data", env=precommit_env)


@pytest.mark.slow
def test_validate_hook_sees_only_staged_manifests(tmp_path, precommit_env):
    """pass_filenames: a broken manifest that is not part of the commit does not block it."""
    project = _project(tmp_path / "project", dog=30, typo=True)
    (project / ".gitignore").write_text("reports/\n.auditor-cache/\nconfigs/\n")
    _git(project, "init", "-q", ".", env=precommit_env)
    _git(project, "add", "-A", env=precommit_env)
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "auditor-validate"],
        cwd=project,
        env=precommit_env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _status(done.stdout, "auditor validate") == "Passed"
