"""`sam build` (in-process builders, no Docker) produces a deployable artifact: the importable package `proxy/`
next to its runtime dependencies, nothing else from the repository."""

from __future__ import annotations

from pathlib import Path

from tests.sam.support import REPO, load_template


def artifact_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_artifact_is_the_proxy_package_plus_its_dependencies(sam_build: Path) -> None:
    built = load_template(sam_build / "template.yaml")
    code = {
        logical: sam_build / resource["Properties"]["CodeUri"]
        for logical, resource in built["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(code) == {"ProxyFunction", "InvalidationFunction"}
    template = load_template(REPO / "sam" / "template.yaml")
    architecture = template["Parameters"]["Architecture"]["Default"]
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    runtime = template["Globals"]["Function"]["Runtime"]
    abi = "cpython-" + runtime.removeprefix("python").replace(".", "")
    for root in code.values():
        files = artifact_files(root)
        sources = {f"proxy/{p.name}" for p in (REPO / "proxy").glob("*.py")}
        assert sources <= files  # every module of the proxy package, under proxy/
        assert {"proxy/handler.py", "proxy/invalidate.py", "redis/__init__.py", "urllib3/__init__.py"} <= files
        top = {f.split("/")[0] for f in files}
        assert top <= {"proxy", "redis", "urllib3", "hiredis"} | {t for t in top if t.endswith(".dist-info")}, top
        assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
        # compiled code only from wheels for the function's runtime and architecture, never for the build machine
        compiled = [f for f in files if f.endswith((".so", ".pyd"))]
        assert compiled, "hiredis (the C reply parser) is missing"
        assert all(f.endswith(f".{abi}-{machine}-linux-gnu.so") for f in compiled), (abi, machine, compiled)
        size = sum((root / f).stat().st_size for f in files)
        assert size < 10 * 1024 * 1024, f"{root} is {size} bytes"
    assert artifact_files(code["ProxyFunction"]) == artifact_files(code["InvalidationFunction"])
