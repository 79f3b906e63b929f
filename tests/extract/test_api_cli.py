"""Public API, bad input, CLI, contract checker, evaluation and the ensemble."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from endoked.cli import main
from endoked.errors import ConfigError
from endoked.extract import ExtractConfig, ReportLabels, create_extractor, extract, list_extractors, process_batch
from endoked.extract.ensemble import EnsembleExtractor, combine
from endoked.extract.evaluate import evaluate, to_markdown
from endoked.extract.schema import CONTRACT_KEYS, PolypLabel

GOOD_TEXT = "Findings: a 6 mm sessile polyp in the sigmoid colon, removed with a cold snare."


def test_registry_lists_backends_and_rejects_unknown() -> None:
    assert list_extractors() == ["ensemble", "llm", "rules"]
    with pytest.raises(ConfigError, match="ensemble, llm, rules"):
        create_extractor("regex")


def test_extract_one_report() -> None:
    out = extract(GOOD_TEXT)
    assert isinstance(out, ReportLabels)
    assert (out.polyp, out.polyp_count, out.polyps[0].location) == ("present", 1, "sigmoid")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "a", "text": ""}, "empty"),
        ({"id": "b", "text": "   \n "}, "empty"),
        ({"id": "c", "text": "\x00\x01\x02\x03binary\x04\x05\x06\x07\x08" * 20}, "binary"),
        ({"id": "d", "text": "polyp " * 200_000}, "max_chars"),
        ({"id": "e", "text": 42}, "string"),
        ({"id": "f", "text": "\ufffd\ufffd\ufffd abc \ufffd\ufffd"}, "binary"),
        ({"id": "g"}, "no report text"),
        ({"text": GOOD_TEXT}, "no id"),
        ({"id": "h", "text": GOOD_TEXT, "pathology": ["x"]}, "pathology"),
    ],
)
def test_bad_rows_become_error_rows(row: dict[str, Any], message: str) -> None:
    rows = [{"id": "ok1", "text": GOOD_TEXT}, row, {"exam_id": "ok2", "report": GOOD_TEXT}]
    out = process_batch(rows)
    assert [r["id"] for r in out] == ["ok1", row.get("id"), "ok2"]
    assert out[1]["error"] and message in out[1]["error"]
    assert out[1]["polyp"] is None
    assert out[0]["error"] is None and out[2]["error"] is None
    assert out[0]["polyp"] == out[2]["polyp"] == "present"


def test_output_rows_have_exactly_the_contract_keys() -> None:
    row = process_batch([{"id": 7, "text": GOOD_TEXT}])[0]
    assert set(row) == {"id", *CONTRACT_KEYS, "evidence", "error"}
    assert row["id"] == 7
    assert set(row["polyps"][0]) == {"location", "size_mm", "morphology", "removed"}
    assert row["evidence"]["backend"] == "rules" and row["evidence"]["lang"] == "en"


def test_a_backend_bug_costs_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    import endoked.extract.api as api

    def boom(text: str, pathology: str | None = None) -> ReportLabels:
        if "boom" in text:
            raise RuntimeError("kaput")
        return ReportLabels()

    monkeypatch.setattr(api, "extract_rules", boom)
    out = process_batch([{"id": "1", "text": "boom"}, {"id": "2", "text": "fine"}])
    assert "internal error" in out[0]["error"] and out[1]["error"] is None


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_cli_extract_handles_mixed_encodings_and_junk(tmp_path: Path, check_tool: Path) -> None:
    inp = tmp_path / "reports.jsonl"
    _write_lines(
        inp,
        [
            json.dumps({"id": "u8", "text": "直肠见一枚0.5cm息肉，予钳除。"}, ensure_ascii=False).encode("utf-8"),
            json.dumps({"id": "gb", "text": "乙状结肠见两枚息肉。"}, ensure_ascii=False).encode("gb18030"),
            b"\xff\xfe\x00\x00 not json \x81",
            b'{"id": "trunc", "text": "abc',
            json.dumps({"id": "en", "text": GOOD_TEXT, "pathology": "tubular adenoma"}).encode(),
            json.dumps({"id": "empty", "text": ""}).encode(),
            b"[1, 2, 3]",
            json.dumps({"text": "no id here"}).encode(),
        ],
    )
    out = tmp_path / "labels.jsonl"
    assert main(["--no-progress", "extract", "--in", str(inp), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 8
    by_id = {r["id"]: r for r in rows}
    assert by_id["u8"]["polyp"] == "present" and by_id["u8"]["polyps"][0]["size_mm"] == 5.0
    assert by_id["gb"]["polyp_count"] == 2 and by_id["gb"]["error"] is None
    assert by_id["en"]["pathology"] == "adenoma"
    assert by_id["empty"]["error"]
    errors = [r for r in rows if r["error"]]
    assert {r["id"] for r in errors} == {"line-3", "line-4", "empty", "line-7", "line-8"}
    res = subprocess.run([sys.executable, str(check_tool), str(out)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout


def test_cli_extract_missing_input_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["extract", "--in", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert rc == 2
    assert "not found" in capsys.readouterr().err


def test_cli_refuses_public_llm_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "r.jsonl"
    inp.write_text(json.dumps({"id": "1", "text": GOOD_TEXT}) + "\n", encoding="utf-8")
    rc = main(
        [
            "extract",
            "--in",
            str(inp),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--backend",
            "llm",
            "--llm-url",
            "http://8.8.8.8/v1",
        ]
    )
    assert rc == 2
    assert "--allow-remote-llm" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def _labels(**kw: Any) -> dict[str, Any]:
    base = {
        "polyp": "present",
        "polyp_count": 1,
        "polyps": [{"location": "sigmoid", "size_mm": 6, "morphology": "sessile", "removed": True}],
        "malignancy_suspected": False,
        "pathology": "adenoma",
    }
    return {**base, **kw}


def test_evaluation_metrics_by_hand() -> None:
    gold = [
        {"id": "1", "lang": "en", "gold": _labels()},
        {"id": "2", "lang": "en", "gold": _labels(polyp="absent", polyp_count=0, polyps=[], pathology=None)},
        {
            "id": "3",
            "lang": "zh",
            "gold": _labels(
                polyp_count=2,
                polyps=[
                    {"location": "rectum", "size_mm": 3, "morphology": "unspecified", "removed": True},
                    {"location": "cecum", "size_mm": 10, "morphology": "flat", "removed": True},
                ],
            ),
        },
        {"id": "4", "lang": "zh", "gold": _labels()},
    ]
    pred = [
        {
            "id": "1",
            **_labels(polyps=[{"location": "sigmoid", "size_mm": 7.5, "morphology": "sessile", "removed": True}]),
        },
        {"id": "2", **_labels(polyp="uncertain", polyp_count=None, polyps=[], pathology=None)},
        {
            "id": "3",
            **_labels(
                polyp_count=2,
                polyps=[
                    {"location": "rectum", "size_mm": 3, "morphology": "unspecified", "removed": True},
                    {"location": "ascending", "size_mm": 9.5, "morphology": "flat", "removed": True},
                ],
            ),
        },
        {"id": "4", "polyp": None, "error": "boom"},
    ]
    rep = evaluate(gold, pred)
    en, zh, alls = rep["by_lang"]["en"], rep["by_lang"]["zh"], rep["by_lang"]["all"]
    assert en["polyp"] == 0.5 and en["polyp_count"] == 0.5
    assert en["size_within_1mm"] == 0.0 and en["size_n"] == 1  # 7.5 vs 6
    assert en["location_f1"] == 1.0
    assert zh["errors"] == 1 and zh["polyp"] == 0.5
    # zh: report 3 tp=1 fp=1 fn=1; report 4 failed: fn=1 -> F1 = 2/(2+1+2)
    assert zh["location_f1"] == pytest.approx(2 / 5)
    assert zh["size_within_1mm"] == 0.5  # 10 vs 9.5 hit, failed row miss
    assert alls["n"] == 4 and alls["polyp_confusion"]["absent"] == {"uncertain": 1}
    assert alls["polyp_confusion"]["present"] == {"present": 2, "error": 1}
    fields = {(d["id"], d["field"]) for d in rep["disagreements"]}
    assert ("2", "polyp") in fields and ("4", "error") in fields and ("3", "locations") in fields
    md = to_markdown(rep)
    assert "| polyp | 0.500 | 0.500 | 0.500 |" in md


def test_cli_extract_eval_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold = tmp_path / "gold.jsonl"
    pred = tmp_path / "pred.jsonl"
    gold.write_text(json.dumps({"id": "1", "lang": "en", **_labels()}) + "\n", encoding="utf-8")
    pred.write_text(json.dumps({"id": "1", **_labels()}) + "\n", encoding="utf-8")
    rc = main(
        ["extract-eval", "--gold", str(gold), "--pred", str(pred), "--json", str(tmp_path / "r.json"), "--markdown"]
    )
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["by_lang"]["en"]["polyp"] == 1.0
    assert "polyp confusion" in capsys.readouterr().out


class _FakeLLM:
    """Stands in for the LLM backend in ensemble tests."""

    name = "llm"

    def __init__(self, answers: list[ReportLabels]) -> None:
        self.answers = answers

    def extract_many(self, items: list[tuple[str, str | None]]) -> list[ReportLabels]:
        return self.answers[: len(items)]

    def close(self) -> None:
        pass


def test_ensemble_agreement_and_disagreement() -> None:
    agree = ReportLabels(polyp="present", polyp_count=2, polyps=[PolypLabel("sigmoid")], backend="llm")
    disagree = ReportLabels(polyp="absent", polyp_count=0, backend="llm")
    ens = EnsembleExtractor(ExtractConfig(), llm=_FakeLLM([agree, disagree]))  # type: ignore[arg-type]
    out = ens.extract_many([(GOOD_TEXT, None), (GOOD_TEXT, None)])
    first, second = out
    assert first.polyp == "present" and first.polyp_count == 1  # rules' labels kept on agreement
    assert first.notes["ensemble"]["agree"] is True
    assert "polyp_count" in first.notes["ensemble"]["disagree_fields"]
    assert second.polyp == "uncertain" and second.polyp_count is None and second.polyps == []
    note = second.to_row("x")["evidence"]["ensemble"]
    assert note["agree"] is False and note["rules"]["polyp"] == "present" and note["llm"]["polyp"] == "absent"


def test_ensemble_llm_failure_policy() -> None:
    failed = ReportLabels.failed("llm: timeout", "llm")
    keep = combine(extract(GOOD_TEXT), failed, "rules")
    assert keep.polyp == "present" and keep.notes["ensemble"]["llm_error"] == "llm: timeout"
    strict = combine(extract(GOOD_TEXT), failed, "error")
    assert strict.error and strict.polyp is None
    bad_input = combine(extract(""), failed, "rules")
    assert bad_input.error and "empty" in bad_input.error
