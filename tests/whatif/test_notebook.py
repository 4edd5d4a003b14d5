"""The whatif section of notebooks/02_ttl_model.ipynb, executed headless on a sample log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis import notebooks
from tests.whatif.test_parsers import SAMPLES

TTL_MODEL = Path(__file__).resolve().parents[2] / "notebooks" / "02_ttl_model.ipynb"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_notebook_runs_whatif_on_a_log_and_shows_the_trade_off(tmp_path: Path) -> None:
    assert {"whatif_log", "whatif_format", "whatif_ttls", "whatif_swr"} <= set(
        notebooks.parameter_names(notebooks.read(TTL_MODEL))
    )
    log = SAMPLES / "access.combined.log"
    params = {"whatif_log": str(log), "whatif_ttls": [1, 10, 60], "whatif_swr": 0.0}
    nb = notebooks.execute(TTL_MODEL, params, out=tmp_path / "02_ttl_model.ipynb")
    last = nb.cells[-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    assert f"{log} (combined): 62 GET/HEAD requests" in text
    rows = re.findall(r"^\s+(\d+)\s+[\d.]+%\s+(\d+)", text, flags=re.MULTILINE)
    assert [ttl for ttl, _ in rows] == ["1", "10", "60"]
    upstream = [int(count) for _, count in rows]
    assert upstream == sorted(upstream, reverse=True)
    assert any("image/png" in o.get("data", {}) for o in last.outputs)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
