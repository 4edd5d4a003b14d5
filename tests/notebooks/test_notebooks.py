"""Both notebooks: committed stripped (nbstripout) and thin, and executed headless (papermill) on the real run's
results."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from analysis import agreement, notebooks, ttl_model
from tests.notebooks.conftest import RealRuns

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RESULTS = ROOT / "notebooks" / "01_results.ipynb"
TTL_MODEL = ROOT / "notebooks" / "02_ttl_model.ipynb"


def text_of(nb: Any) -> str:
    """Everything the executed cells printed."""
    parts: list[str] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            elif "text/plain" in output.get("data", {}):
                parts.append(output["data"]["text/plain"])
    return "".join(parts)


def images_of(nb: Any) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def errors_of(nb: Any) -> list[str]:
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    return [f"{o['ename']}: {o['evalue']}" for o in outputs if o["output_type"] == "error"]


# ---------------------------------------------------------------------------------------------- as committed


def test_both_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_results.ipynb", "02_ttl_model.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs_and_one_parameters_cell(path: Path) -> None:
    raw = json.loads(path.read_text())  # the file itself, not through the helpers under test
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [], "".join(cell["source"])[:80]
        assert cell["execution_count"] is None
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert notebooks.problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_stay_thin(path: Path) -> None:
    """The logic lives in analysis (tested); a notebook only defines its `show` helper."""
    nb = notebooks.read(path)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert re.findall(r"^def (\w+)", source, flags=re.MULTILINE) == ["show"]
    assert "from analysis import" in source
    assert "import matplotlib" not in source


def test_parameters_are_read_from_the_parameters_cell_and_unknown_ones_refused() -> None:
    nb = notebooks.read(TTL_MODEL)
    assert {"keys", "zipf_s", "rate", "ttl_seconds", "measured_runs", "prices", "deployment"} <= set(
        notebooks.parameter_names(nb)
    )
    notebooks.check_parameters(nb, {"keys": 5, "measured_runs": {"results/x": 3.0}})
    with pytest.raises(notebooks.NotebookError, match="unknown parameter"):
        notebooks.check_parameters(nb, {"kyes": 5})
    assert notebooks.parse_param('results_dirs=["a", "b"]') == ("results_dirs", ["a", "b"])
    assert notebooks.parse_param("charts_dir=out/charts") == ("charts_dir", "out/charts")
    with pytest.raises(notebooks.NotebookError, match="name=value"):
        notebooks.parse_param("no-equals-sign")


def test_check_finds_an_unstripped_notebook_and_strip_fixes_it(tmp_path: Path) -> None:
    raw = json.loads(RESULTS.read_text())
    raw["cells"][2]["execution_count"] = 3
    raw["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    path = tmp_path / "01_results.ipynb"
    path.write_text(json.dumps(raw))
    assert notebooks.main(["check", str(path)]) == 1
    assert notebooks.main(["strip", str(path)]) == 0
    assert notebooks.main(["check", str(path)]) == 0
    assert json.loads(path.read_text()) == json.loads(RESULTS.read_text())


def test_cli_errors_are_messages_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert notebooks.main(["run", str(tmp_path / "missing.ipynb")]) == 2
    assert "no notebook at" in capsys.readouterr().err
    assert notebooks.main(["run", str(TTL_MODEL), "-p", "nope=1", "--out", str(tmp_path / "x.ipynb")]) == 2
    assert "unknown parameter(s) nope" in capsys.readouterr().err
    (tmp_path / "broken.ipynb").write_text("{")
    assert notebooks.main(["check", str(tmp_path / "broken.ipynb")]) == 2
    assert "not a readable notebook" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- executed


@pytest.mark.redis_server
@pytest.mark.slow
@pytest.mark.timeout(900)  # waits for the session's real runs (maybe two of each)
def test_results_notebook_runs_on_the_real_runs(real_runs: RealRuns, tmp_path: Path) -> None:
    charts = tmp_path / "charts"
    out = tmp_path / "01_results.ipynb"
    params = {"results_dirs": [str(real_runs.steady), str(real_runs.outage)], "charts_dir": str(charts)}
    nb = notebooks.execute(RESULTS, params, out=out)
    assert errors_of(nb) == []
    text = text_of(nb)
    assert "scenario steady" in text
    assert "scenario outage" in text
    assert re.search(r"^outage\s+\d+\s+[\d.]+%", text, flags=re.MULTILINE), text  # the phase table
    assert "proxy requests caused" in text
    assert images_of(nb) >= 5  # latency CDF, hit ratio, outage timeline, upstream saved, Locust history
    names = sorted(p.name for p in charts.glob("*.png"))
    assert names == sorted(
        [
            "latency_cdf.png",
            "hit_ratio.png",
            "outage_timeline_outage.png",
            "upstream_saved.png",
            "locust_history.png",
        ]
    )
    # The executed copy has outputs; stripping it gives back the committed notebook exactly.
    assert notebooks.main(["check", str(out)]) == 1
    assert notebooks.main(["strip", str(out)]) == 0
    assert notebooks.main(["check", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(RESULTS.read_text())


@pytest.mark.redis_server
@pytest.mark.slow
@pytest.mark.timeout(900)  # waits for the session's real runs (maybe two of each)
def test_ttl_model_notebook_shows_predicted_vs_measured(real_runs: RealRuns, tmp_path: Path) -> None:
    """Within 5 percentage points, printed by the notebook."""
    params = {"measured_runs": {str(real_runs.steady): real_runs.ttl_s}, "keys": 20_000, "rate": 80.0}
    nb = notebooks.execute(TTL_MODEL, params, out=tmp_path / "02_ttl_model.ipynb")
    assert errors_of(nb) == []
    injected = nb.cells[notebooks.parameters_index(nb) + 1]  # papermill's cell, right after the parameters
    assert injected.metadata["tags"] == [notebooks.INJECTED_TAG]
    assert "keys = 20000" in injected.source.splitlines()
    text = text_of(nb)
    line = re.search(
        r"hit ratio \(no upstream request\): predicted ([\d.]+)%  measured ([\d.]+)% \(stub\)  "
        r"difference ([+-][\d.]+) pp  \(tolerance 5 pp: (\w+)\)",
        text,
    )
    assert line is not None, text
    predicted, measured, difference, verdict = line.groups()
    assert verdict == "OK"
    assert abs(float(difference)) <= 5.0
    # The notebook shows the same figures as the pure computation on that run's summary.json.
    expected = agreement.compare_run(real_runs.summary("steady"), real_runs.ttl_s)
    assert float(predicted) == pytest.approx(100 * expected.prediction.hit_ratio, abs=0.05)
    assert float(measured) == pytest.approx(100 * expected.measured_hit_ratio, abs=0.05)
    # The parameters reached the model: the headline is for 20,000 keys at 80 req/s.
    headline = ttl_model.hit_ratio(20_000, 1.0, 80.0, 300.0)
    assert f"20,000 keys, zipf s=1, 80 req/s, TTL 300 s: hit ratio {headline:.1%}" in text
    assert "USD/month" in text
    assert images_of(nb) >= 6  # 2 sweeps, the run's TTL curve and warm-up, the cost breakdown and curve
