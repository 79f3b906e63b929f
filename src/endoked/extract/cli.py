"""``endoked extract`` and ``endoked extract-eval``: thin shims over the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from endoked.errors import ConfigError, DataFormatError


def _config(
    profile: str | None,
    config: Path | None,
    set_: list[str] | None,
    backend: str | None,
    llm_url: str | None,
    llm_model: str | None,
    allow_remote_llm: bool,
) -> Any:
    from pydantic import ValidationError

    from endoked.config import resolve_config

    cfg = resolve_config(profile, config, set_ or ()).extract
    try:
        if backend:
            cfg.backend = backend  # type: ignore[assignment]
        if llm_url:
            cfg.llm.url = llm_url
        if llm_model:
            cfg.llm.model = llm_model
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = {"backend": "--backend", "url": "--llm-url", "model": "--llm-model"}.get(str(err["loc"][-1]), "flag")
        raise ConfigError(f"{flag} {str(err.get('input'))[:200]!r}: {err['msg']}") from None
    if allow_remote_llm:
        cfg.llm.allow_remote = True
    return cfg


def register(app: typer.Typer) -> None:
    """Add the extract commands to the CLI."""

    @app.command("extract")
    def extract_cmd(
        inp: Annotated[
            Path,
            typer.Option("--in", "-i", help="Reports: JSONL (id/exam_id, text/report, optional pathology) or Parquet."),
        ],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output labels (JSONL, one line per input line).")],
        backend: Annotated[str | None, typer.Option("--backend", "-b", help="rules | llm | ensemble.")] = None,
        llm_url: Annotated[str | None, typer.Option("--llm-url", help="OpenAI-compatible base URL.")] = None,
        llm_model: Annotated[str | None, typer.Option("--llm-model", help="Model name at the endpoint.")] = None,
        allow_remote_llm: Annotated[
            bool, typer.Option("--allow-remote-llm", help="Allow a non-local LLM endpoint.")
        ] = False,
        profile: Annotated[str | None, typer.Option("--profile", help="Named profile.")] = None,
        config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
        set_: Annotated[
            list[str] | None, typer.Option("--set", "-s", help="Override, e.g. extract.max_chars=5000.")
        ] = None,
    ) -> None:
        """Label colonoscopy reports: polyp status, count, polyps, malignancy, pathology, with evidence."""
        from endoked.extract.batch import extract_file
        from endoked.runfolder import lock_runs

        cfg = _config(profile, config, set_, backend, llm_url, llm_model, allow_remote_llm)
        with lock_runs(out):
            summary = extract_file(inp, out, cfg)
        typer.echo(" ".join(f"{k}={v}" for k, v in summary.items()))

    @app.command("extract-eval")
    def extract_eval_cmd(
        gold: Annotated[
            Path,
            typer.Option(
                "--gold", help="Gold labels JSONL (labels at top level or under 'gold'/'labels'; optional 'lang')."
            ),
        ],
        pred: Annotated[Path, typer.Option("--pred", help="Predicted labels JSONL (output of extract).")],
        json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
        markdown: Annotated[
            bool, typer.Option("--markdown", help="Print Markdown with confusion matrices and disagreements.")
        ] = False,
    ) -> None:
        """Score predicted report labels against gold labels, per language."""
        from endoked.extract.evaluate import evaluate, to_markdown
        from endoked.io import atomic_write_json, read_jsonl

        for path in (gold, pred):
            if not path.is_file():
                raise DataFormatError(f"file not found: {path}")
        try:
            report = evaluate(read_jsonl(gold), read_jsonl(pred))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"cannot read labels: {exc}") from exc
        if json_out:
            atomic_write_json(json_out, report)
        text = to_markdown(report)
        typer.echo(text if markdown else text.split("\npolyp confusion")[0])
