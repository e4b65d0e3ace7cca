"""The closed-loop report's content (:class:`Report`, :class:`RouteView`) and its two
renderings: ``report.md`` (plots and videos linked relatively) and ``report.html`` (one file:
plots, posters and, when the report says so, the videos as data URIs). Every text taken from
a run folder is escaped (HTML) or has its table pipes escaped (markdown)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivevla.benchmarks.report_plots import outcome
from drivevla.benchmarks.scoring import ROUTE_ENDING_KINDS, infraction_label

CRASHED_PREFIXES = ("Failed - Agent crashed", "Failed - Simulation crashed")


@dataclass
class RouteView:
    """One route of the report: its record and what was drawn for it."""

    record: dict[str, Any]
    plots: dict[str, bytes] = field(default_factory=dict)  # "speed", "map" -> PNG
    video: Path | None = None  # the route's MP4, when there is one
    poster: bytes | None = None  # a PNG frame of the video (at the first infraction)
    expert: dict[str, Any] | None = None  # the expert's own drive of the route
    notes: list[str] = field(default_factory=list)  # what could not be drawn, and why

    @property
    def route_id(self) -> str:
        return str(self.record["route"]["id"])

    @property
    def video_link(self) -> str:
        return str((self.record.get("video") or {}).get("file")
                   or f"videos/{self.route_id}.mp4")

    def video_time(self, infraction: dict[str, Any]) -> float:
        """Where ``infraction`` shows in the video (s): its banner's first frame, else its
        simulation time (the video starts at t = 0, one frame per control tick)."""
        key = (str(infraction["kind"]), round(float(infraction["time_s"]), 6))
        for banner in (self.record.get("video") or {}).get("banners", []):
            if (str(banner["kind"]), round(float(banner["time_s"]), 6)) == key:
                return float(banner["video_time_s"])
        return float(infraction["time_s"])


@dataclass
class Report:
    """A run folder's report (see :func:`drivevla.benchmarks.report.write_report`)."""

    out: Path
    summary: dict[str, Any]
    routes: list[RouteView]
    ds_plot: bytes
    embed_videos: bool
    video_mb: float


# ---------------------------------------------------------------------------------- words


def _pct(value: float | None, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.1f}"


def headline(summary: dict[str, Any]) -> str:
    """The run's scores in one sentence."""
    s = summary
    return (
        f"Driving score {_pct(s.get('driving_score'))} (LB2.0; "
        f"{_pct(s.get('driving_score_no_min_speed'))} without the minimum-speed factor), "
        f"route completion {_pct(s.get('route_completion'))} %, instruction success "
        f"{_pct((s.get('instruction_success') or {}).get('overall'), 100)} %, explanation "
        f"faithfulness {_pct(s.get('explanation_faithfulness'), 100)} % "
        f"({s.get('n_explanations', 0)} explanations)."
    )


def factor_text(inf: dict[str, Any]) -> str:
    """An infraction's DS factor: 'x0.700', 'x1.000 (ends the route)'."""
    penalty = float(inf.get("penalty", 1.0))
    return f"x{penalty:.3f}" + (" (ends the route)" if inf["kind"] in ROUTE_ENDING_KINDS else "")


def infractions_by_time(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The route's infractions in time order (the outside-lanes record, made when the route
    ends, carries the time it began)."""
    return sorted(record["result"].get("infractions", []), key=lambda i: float(i["time_s"]))


def _counted(kinds: list[str]) -> str:
    """'2 x below the minimum speed, outside route lanes' (first-seen order)."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} x {infraction_label(k)}" if n > 1 else infraction_label(k)
                     for k, n in counts.items())


def ds_formula(record: dict[str, Any]) -> str:
    """'DS 70.0 = RC 100.0 % x penalty 0.700 (red light run x0.70)'."""
    m, status = record["metrics"], str(record["status"])
    ds, rc, penalty = m["driving_score"], m["route_completion"], m["infraction_penalty"]
    factors = [f"{infraction_label(i['kind'])} {factor_text(i)}"
               for i in infractions_by_time(record) if float(i.get("penalty", 1.0)) < 1.0]
    text = (f"DS {ds:.1f} = RC {rc:.1f} % x penalty {penalty:.3f} "
            f"({'; '.join(factors) if factors else 'no penalised infraction'})")
    if status.startswith(CRASHED_PREFIXES):
        text = f"DS {ds:.1f}: a crashed route scores 0 (RC {rc:.1f} %, penalty {penalty:.3f})"
    return text


def refusal_lines(record: dict[str, Any]) -> list[str]:
    """One line per misleading (unsafe) instruction event and per speed request."""
    ins = (record.get("metrics") or {}).get("instruction") or {}
    lines = []
    for e in ins.get("misleading_events", []):
        verdict = {True: "refused", False: "NOT refused", None: "not reached"}[e.get("refused")]
        hits = ", ".join(f"{infraction_label(h['kind'])} at {h['time_s']:.1f} s"
                         for h in e.get("unsafe_infractions", []))
        lines.append(
            f"misleading '{e.get('category')}' {e['start_s']:.1f}-{e['end_s']:.1f} s: {verdict} "
            f"(said refused: {'yes' if e.get('said_refused') else 'no'}"
            + (f"; unsafe infractions: {hits})" if hits else ")"))
    for r in ins.get("speed_requests", []):
        verdict = {True: "honoured", False: "NOT honoured", None: "not reached"}[r.get("success")]
        mean = r.get("mean_speed_second_half_mps")
        lines.append(f"speed request {r['speed_kmh']:.0f} km/h {r['start_s']:.1f}-"
                     f"{r['end_s']:.1f} s: {verdict}"
                     + (f" (mean {mean * 3.6:.0f} km/h)" if mean is not None else ""))
    return lines


def faithfulness_text(record: dict[str, Any]) -> str:
    ex = (record.get("metrics") or {}).get("explanations") or {}
    if not ex.get("n_explained"):
        return "no explanations (the policy has no explain() or explanations were off)"
    text = (f"{ex['n_faithful']} of {ex['n_explained']} explanations name the expert's reason "
            f"({100 * ex['faithfulness']:.1f} %)")
    if ex.get("n_ticks_compared"):
        agree = 100 * ex["n_reason_head_agree"] / ex["n_ticks_compared"]
        text += f"; the reason head agrees with the expert on {agree:.1f} % of ticks"
    return text


def instruction_text(record: dict[str, Any]) -> str:
    success = record["result"].get("instruction_success")
    return {True: "yes", False: "no", None: "-"}[success]


def expert_text(view: RouteView) -> str | None:
    if not view.expert:
        return None
    return (f"the privileged expert, driving this route on its own: DS "
            f"{view.expert['driving_score']:.1f}, {view.expert['status']}")


def summary_rows(report: Report) -> list[list[str]]:
    """Header and one row per route of the summary table."""
    rows = [["route", "outcome", "DS", "RC %", "penalty", "infractions", "instruction",
             "faithfulness"]]
    for v in report.routes:
        m, infs = v.record["metrics"], infractions_by_time(v.record)
        faith = (m.get("explanations") or {}).get("faithfulness")
        rows.append([v.route_id, str(v.record["status"]), f"{m['driving_score']:.1f}",
                     f"{m['route_completion']:.1f}", f"{m['infraction_penalty']:.3f}",
                     _counted([i["kind"] for i in infs]) or "none",
                     instruction_text(v.record), _pct(faith, 100)])
    return rows


# ---------------------------------------------------------------------------------- markdown


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[list[str]]) -> list[str]:
    head, *body = rows
    return ["| " + " | ".join(_md_cell(c) for c in head) + " |",
            "|" + "---|" * len(head),
            *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body)]


def _md_route(view: RouteView) -> list[str]:
    rec, rid = view.record, view.route_id
    route = rec["route"]
    md = [f"## {rid}", "",
          f"*{route['scenario']} / {route['intent']}, seed {route['seed']}*", "",
          f"- **Instruction:** {rec.get('navigation_instruction') or '-'}",
          f"- **Outcome:** {rec['status']}. **{ds_formula(rec)}**",
          f"- **Instruction success:** {instruction_text(rec)}",
          "- **Refusal events and speed requests:** "
          + ("; ".join(refusal_lines(rec)) or "none on this route"),
          f"- **Explanation faithfulness:** {faithfulness_text(rec)}"]
    if expert_text(view):
        md.append(f"- **Reference:** {expert_text(view)}")
    md += [f"- **Note:** {note}" for note in view.notes]
    infs = infractions_by_time(rec)
    md += ["", f"**Infractions:** {len(infs) or 'none'}", ""]
    if infs:
        rows = [["t (s)", "infraction", "DS factor", "detail", "video"]]
        for i in infs:
            t = view.video_time(i)
            rows.append([f"{float(i['time_s']):.1f}", infraction_label(i["kind"]), factor_text(i),
                         i.get("detail", ""), f"[at {t:.1f} s]({view.video_link}#t={t:.1f})"])
        md += _md_table(rows) + [""]
    for name, title in (("speed", "speed profile"), ("map", "driven path")):
        if name in view.plots:
            md.append(f"![{rid} {title}]({_files(rid, name)})")
    if view.video is not None:
        md += ["", f"Video: [{view.video_link}]({view.video_link})"]
    return md + [""]


def _files(route_id: str, name: str) -> str:
    return f"report_files/{route_id}-{name}.png"


def render_markdown(report: Report) -> str:
    s = report.summary
    md = [f"# Closed-loop report: `{s.get('policy')}` on suite `{s.get('suite')}`", "",
          headline(s), "", *_md_table(summary_rows(report)), "",
          "![Driving score per route](report_files/driving_score.png)", ""]
    for view in report.routes:
        md += _md_route(view)
    md += ["Scores per route: `routes/<route>.json`; everything, with config, seeds, versions "
           "and hardware: `summary.json`. The same report with the videos: `report.html`."]
    return "\n".join(md) + "\n"


# ---------------------------------------------------------------------------------- html


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(route_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in route_id)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;max-width:1500px;color:#222}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:14px}th{background:#eee}
.route{border-top:3px solid #999;margin-top:28px;padding-top:4px}
.media{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
video{width:620px;max-width:100%;background:#000}
.media img.speed{width:600px}.media img.map{max-width:600px}
.Perfect{color:#2e7d32}.Completed{color:#b07000}.Failed{color:#c62828}
a.seek{font-weight:bold}
"""

_SCRIPT = """
function seek(id, t) {
  var v = document.getElementById(id);
  if (!v) { return true; }
  v.currentTime = t; v.scrollIntoView({block: "center"}); v.pause();
  return false;
}
"""


def _html_table(rows: list[list[str]], cls: str, raw_last: bool = False) -> str:
    head, *body = rows
    out = [f'<table class="{cls}"><tr>' + "".join(f"<th>{_e(c)}</th>" for c in head) + "</tr>"]
    for row in body:
        cells = [_e(c) for c in row]
        if raw_last:
            cells[-1] = row[-1]  # already HTML
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table>"


def _html_infractions(view: RouteView, video_id: str) -> str:
    infs = infractions_by_time(view.record)
    if not infs:
        return "<p><b>Infractions:</b> none</p>"
    rows = [["t (s)", "infraction", "DS factor", "detail", "video"]]
    for i in infs:
        t = view.video_time(i)
        link = (f'<a class="seek" href="{_e(view.video_link)}#t={t:.1f}" '
                f'onclick="return seek(\'{video_id}\', {t:.2f})">&#9654; {t:.1f} s</a>')
        rows.append([f"{float(i['time_s']):.1f}", infraction_label(i["kind"]), factor_text(i),
                     i.get("detail", ""), link])
    return f"<p><b>Infractions:</b> {len(infs)}</p>" + _html_table(rows, "infractions", True)


def _html_video(report: Report, view: RouteView, video_id: str) -> str:
    if view.video is None:
        return "<p>No video for this route (run with --video).</p>"
    src = (data_uri(view.video.read_bytes(), "video/mp4") if report.embed_videos
           else _e(view.video_link))
    poster = f' poster="{data_uri(view.poster, "image/png")}"' if view.poster else ""
    return (f'<video id="{video_id}" class="route-video" controls muted preload="metadata"'
            f'{poster} src="{src}"></video>')


def _html_route(report: Report, view: RouteView) -> str:
    rec, anchor = view.record, _anchor(view.route_id)
    route, video_id = rec["route"], f"video-{anchor}"
    items = [("Instruction", rec.get("navigation_instruction") or "-"),
             ("Outcome", f"{rec['status']}. {ds_formula(rec)}"),
             ("Instruction success", instruction_text(rec)),
             ("Refusal events and speed requests",
              "; ".join(refusal_lines(rec)) or "none on this route"),
             ("Explanation faithfulness", faithfulness_text(rec))]
    if expert_text(view):
        items.append(("Reference", expert_text(view)))
    items += [("Note", note) for note in view.notes]
    plots = "".join(f'<img class="plot {name}" alt="{_e(view.route_id)} {name}" '
                    f'src="{data_uri(view.plots[name], "image/png")}">'
                    for name in ("speed", "map") if name in view.plots)
    return (
        f'<section class="route" id="route-{anchor}"><h2 class="{outcome(str(rec["status"]))}">'
        f"{_e(view.route_id)}</h2><p><i>{_e(route['scenario'])} / {_e(route['intent'])}, "
        f"seed {_e(route['seed'])}</i></p><ul>"
        + "".join(f"<li><b>{_e(k)}:</b> {_e(v)}</li>" for k, v in items) + "</ul>"
        + _html_infractions(view, video_id)
        + f'<div class="media">{_html_video(report, view, video_id)}{plots}</div></section>'
    )


def render_html(report: Report) -> str:
    s = report.summary
    title = f"Closed-loop report: {s.get('policy')} on suite {s.get('suite')}"
    videos = ("embedded in this file" if report.embed_videos else
              f"linked from videos/ ({report.video_mb:.0f} MB, over the embedding limit): keep "
              "this file beside its videos/ folder")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>"
        f"<h1>{_e(title)}</h1><p>{_e(headline(s))}</p>"
        + _html_table(summary_rows(report), "summary")
        + f'<img class="plot ds" alt="driving score per route" '
        f'src="{data_uri(report.ds_plot, "image/png")}">'
        f"<p>Videos: {_e(videos)}. Each infraction's time seeks its route's video.</p>"
        + "".join(_html_route(report, v) for v in report.routes)
        + "</body></html>\n"
    )
