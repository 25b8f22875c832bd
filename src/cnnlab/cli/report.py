"""``cnnlab report DIR [-o FILE] [--study NAME] [--format html|md] [--figures png|svg|pdf]``: write the study
report, say where."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional

from cnnlab.cli.arguments import store_arguments


def add_report(commands: Any) -> argparse.ArgumentParser:
    """The ``report`` subcommand and its options."""
    report = commands.add_parser(
        "report", help="write the study's report: one self-contained HTML file (or Markdown + PNGs)",
        description="Build the study report from the store alone (no retraining): header, results table, "
        "learning curves, model summaries, the best configuration's confusion matrix and examples. One HTML "
        "file with every figure embedded, readable offline and printable; --format md writes Markdown plus "
        "a folder of PNG figures for pasting into a lab report (--figures svg or pdf: vector figures for a paper, "
        "sharp at any size). 'cnnlab run' writes it at the end too.",
    )
    store_arguments(report)
    report.add_argument("-o", "--output", type=Path, help="where to write (default: DIR/report.html or DIR/report.md)")
    report.add_argument("--format", choices=["html", "md"], default="html", help="html (default) or md")
    report.add_argument("--figures", choices=["png", "svg", "pdf"], default="png",
                        help="the figure files of --format md: png (default), or svg or pdf (vector, for a paper)")
    report.set_defaults(handler=command_report)
    return report


def command_report(args: argparse.Namespace) -> int:
    """Write the report of the store in ``args.folder``."""
    write_and_announce(args.folder, args.output, args.study, args.format, args.figures)
    return 0


def write_and_announce(folder: Path, output: Optional[Path], study: Optional[str], fmt: str,
                       figures: str = "png") -> Path:
    """Write the report, print where, how big (figures included) and how long it took; return its path."""
    from cnnlab.report import figures_folder, write_report

    started = time.perf_counter()
    path = write_report(folder, output, study=study, format=fmt, figures=figures)
    drawn = [f for f in figures_folder(path).glob("*.*") if f.suffix in (".png", ".svg", ".pdf")] if fmt == "md" else []
    size = path.stat().st_size + sum(f.stat().st_size for f in drawn)
    print(f"Report written to {path} ({size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)")
    return path
