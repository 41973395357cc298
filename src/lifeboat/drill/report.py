"""A drill report for people: a table per path for the terminal, and a self-contained HTML page.

The JSON form is :meth:`DrillReport.to_json` (docs/formats.md, "Drill report"). The HTML page
carries everything inline: its style, and the timeline drawn by matplotlib as SVG. It loads
nothing from the network and runs no script, so it opens the same from a mail attachment or an
air-gapped machine. Every value from the drill is escaped.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from typing import Final

from lifeboat.drill.run import CONFIG, DEGRADED, FAILED, PASSED, DrillReport
from lifeboat.drill.timeline import PathName, Phase, Step

#: Bar colours of the timeline, one per act; a failed step is drawn in FAILED_COLOUR.
PHASE_COLOURS: Final[Mapping[Phase, str]] = {
    Phase.SETUP: "#9aa5b1",
    Phase.OPERATE: "#4c78a8",
    Phase.CATASTROPHE: "#e45756",
    Phase.RECOVER: "#54a24b",
    Phase.CHECK: "#54a24b",
}
FAILED_COLOUR: Final = "#b10026"
#: A step that held with a warning (a real setup's check that found less margin than built).
WARNING_COLOUR: Final = "#f2a900"


def seconds_text(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def counts_text(counts: Mapping[str, int]) -> str:
    """``{"records": 3, "bytes": 2048}`` -> ``3 records, 2.0 KiB``."""
    parts = []
    for name, value in counts.items():
        if name == "bytes":
            parts.append(_bytes_text(value))
        else:  # units are plural nouns: "1 record", "2 records"
            parts.append(f"{value:,} {name[:-1] if value == 1 and name.endswith('s') else name}")
    return ", ".join(parts) or "-"


def _bytes_text(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def step_line(step: Step) -> str:
    """One line per finished step, for the live terminal output."""
    mark = ("WARN" if step.warning else "ok  ") if step.ok else "FAIL"
    line = f"{mark} {step.path.value:<8} {step.phase.value:<11} {step.title} ({seconds_text(step.seconds)})"
    if step.error or step.warning:
        line += f": {step.error or step.warning}"
    return line


def verdict_text(report: DrillReport) -> str:
    names = ", ".join(p.name.value for p in report.paths)
    failed = [p.name.value for p in report.paths if p.verdict == FAILED]
    degraded = [p.name.value for p in report.paths if p.verdict == DEGRADED]
    if report.kind == CONFIG:
        if failed:
            return f"DRILL FAILED: {', '.join(failed)} did not pass"
        if degraded:
            return f"DRILL DEGRADED: {', '.join(degraded)} work with less margin than built"
        return f"DRILL PASSED: every path checked ({names})"
    if not failed:
        return f"DRILL PASSED: every path recovered ({names})"
    return f"DRILL FAILED: {', '.join(failed)} did not recover"


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict: ``passed``, ``degraded`` or ``failed``."""
    return verdict if verdict in (PASSED, DEGRADED) else FAILED


# --- HTML ----------------------------------------------------------------------------------------


def timeline_svg(report: DrillReport) -> str:
    """The steps as bars on one row per path, drawn by matplotlib as an inline SVG element."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = [p for p in PathName if report.timeline.of(p)]
    figure = Figure(figsize=(10, 0.6 * len(rows) + 1.4))
    FigureCanvasSVG(figure)
    axes = figure.add_subplot()
    for y, path in enumerate(rows):
        steps = report.timeline.of(path)
        bars = [(s.started, max(s.seconds, 0.002)) for s in steps]
        colours = [
            (WARNING_COLOUR if s.warning else PHASE_COLOURS[s.phase]) if s.ok else FAILED_COLOUR
            for s in steps
        ]
        axes.broken_barh(bars, (y - 0.35, 0.7), facecolors=colours, edgecolor="white", linewidth=0.5)
    axes.set_yticks(range(len(rows)), [p.value for p in rows])
    axes.invert_yaxis()
    axes.set_xlabel("seconds since the drill started")
    axes.grid(axis="x", alpha=0.3)
    phases = {s.phase for s in report.timeline.steps}
    legend = [Patch(color=c, label=p.value) for p, c in PHASE_COLOURS.items() if p in phases]
    if any(s.warning for s in report.timeline.steps):
        legend.append(Patch(color=WARNING_COLOUR, label="warning"))
    legend.append(Patch(color=FAILED_COLOUR, label="failed"))
    axes.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=5, frameon=False)
    figure.tight_layout()
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": f"drill-{report.seed}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


_STYLE: Final = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #1f2328; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.verdict { font-size: 1.3em; font-weight: 700; padding: 0.6em 1em; border-radius: 6px; }
.passed { background: #dafbe1; color: #116329; } .failed { background: #ffebe9; color: #a40e26; }
.degraded { background: #fff8c5; color: #7d4e00; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0 1.5em; }
th, td { text-align: left; padding: 0.3em 0.6em; border-bottom: 1px solid #d0d7de; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.meta { color: #59636e; } code { font-size: 0.9em; } svg { max-width: 100%; height: auto; }
"""


def render_html(report: DrillReport) -> str:
    """The whole report as one HTML document (no network, no script)."""
    e = html.escape
    report_class = verdict_class(report.verdict)
    config = report.kind == CONFIG
    if config:
        path_rows = "".join(
            f"<tr><td>{e(p.name.value)}</td><td class='{verdict_class(p.verdict)}'>{e(p.verdict)}</td>"
            f"<td class='num'>{e(seconds_text(p.restore_estimate_seconds))}</td>"
            f"<td>{e(p.error or '; '.join(p.outcome.notes) or '-')}</td><td>{e(p.remedy or '-')}</td></tr>"
            for p in report.paths
        )
        path_head = (
            "<th>path</th><th>verdict</th><th>restore estimate</th><th>finding</th><th>what to do</th>"
        )
    else:
        path_rows = "".join(
            f"<tr><td>{e(p.name.value)}</td><td class='{verdict_class(p.verdict)}'>{e(p.verdict)}</td>"
            f"<td class='num'>{e(seconds_text(p.rto_seconds))}</td>"
            f"<td>{e(counts_text(p.outcome.lost))}</td><td>{e(counts_text(p.outcome.recovered))}</td>"
            f"<td>{e(p.error or '; '.join(p.outcome.notes))}</td></tr>"
            for p in report.paths
        )
        path_head = "<th>path</th><th>verdict</th><th>RTO</th><th>lost</th><th>recovered</th><th>notes</th>"
    step_rows = "".join(
        f"<tr><td class='num'>{s.started:.3f}</td><td>{e(s.path.value)}</td><td>{e(s.phase.value)}</td>"
        f"<td>{e(s.title)}</td><td class='num'>{e(seconds_text(s.seconds))}</td>"
        f"<td class='{_step_class(s)}'>{_step_class(s).replace('passed', 'ok')}</td>"
        f"<td><code>{e(_facts_text(s))}</code></td></tr>"
        for s in report.timeline.steps
    )
    rpo = report.rpo_entries
    rpo_text = "not drilled" if rpo is None else f"{rpo} journal entries not recovered"
    if config:
        meta = f"started {e(report.started_at)} · config {e(report.config or '-')}"
        rpo_line = ""
    else:
        meta = f"started {e(report.started_at)} · seed {report.seed} · {report.accounts or 0:,} accounts"
        rpo_line = f"<p><strong>RPO:</strong> {e(rpo_text)}.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Lifeboat drill: {e(report_class)}</title><style>{_STYLE}</style></head>
<body>
<h1>Lifeboat drill{" of a real setup" if config else ""}</h1>
<p class="meta">{meta} ·
{e(seconds_text(report.seconds))} in all</p>
<p class="verdict {report_class}" id="verdict">{e(verdict_text(report))}</p>
<h2>Paths</h2>
<table id="paths"><thead><tr>{path_head}</tr></thead><tbody>{path_rows}</tbody></table>
{rpo_line}
<h2>Timeline</h2>
<figure id="timeline">{timeline_svg(report)}</figure>
<h2>Steps</h2>
<table id="steps"><thead><tr><th>at (s)</th><th>path</th><th>act</th><th>step</th><th>took</th>
<th>result</th><th>facts</th></tr></thead><tbody>{step_rows}</tbody></table>
</body></html>
"""


def _step_class(step: Step) -> str:
    return (DEGRADED if step.warning else PASSED) if step.ok else FAILED


def _facts_text(step: Step) -> str:
    facts = ", ".join(f"{k}={v}" for k, v in step.facts.items())
    note = step.error or step.warning
    return f"{note} {facts}".strip() if note else facts
