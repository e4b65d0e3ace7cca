"""The closed-loop report and videos tell every infraction (#23 items 1 and 2).

One route, driven once for the module: ``lane_keep`` (it ignores lights) on an urban route
whose lights are always red, and a route timeout set short enough to end the route before its
end (so the last tick raises a record too). Every infraction of the route's JSON must be in
``report.md``, ``report.html`` and the video: a banner in the frames from its time on and not
before it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import yaml
from PIL import Image

from drivevla.benchmarks import video as video_module
from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.benchmarks.drive import drive_route, rule_based_driver
from drivevla.benchmarks.report import write_report
from drivevla.benchmarks.scoring import infraction_label
from drivevla.benchmarks.video import BANNER_PX, BANNER_RGB, Caption
from drivevla.cli import main
from drivevla.sim_bridge.embedded.suites import RouteSpec

ROUTE_ID = "urban-red"
ROUTE = {
    "id": ROUTE_ID, "scenario": "urban", "intent": "follow_street", "seed": 1800100,
    "config": {
        "cameras": [],  # BEV-only video: fast
        "light_cycle_s": [0.0, 0.0, 600.0],  # every light red for the whole drive
        # the route times out at 22.7 s, before its end: a record on the last tick
        "criteria": {"timeout_base_s": 0.0, "timeout_speed_fraction": 1.0},
    },
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("red")
    suite = tmp / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "red", "routes": [ROUTE]}), encoding="utf-8")
    out = tmp / "run"
    run_closed_loop("lane_keep", suite, out, workers=0, video=True, progress=False,
                    print_table=False)
    write_report(out)  # the expert's own drive included (it waits at the red: cheap)
    return out


def _record(out: Path) -> dict:
    return json.loads((out / "routes" / f"{ROUTE_ID}.json").read_text(encoding="utf-8"))


def _banner_share(frame: np.ndarray) -> float:
    """Share of the top banner row's pixels (inside its text margin) in the banner colour."""
    band = frame[3 : BANNER_PX - 3].astype(int)
    close = np.abs(band - np.array(BANNER_RGB)).max(axis=2) < 45
    return float(close.mean())


def test_the_route_runs_red_lights_and_times_out(run):
    kinds = [i["kind"] for i in _record(run)["result"]["infractions"]]
    assert kinds.count("red_light") >= 2 and kinds[-1] == "route_timeout", kinds


def test_every_infraction_is_in_the_markdown_report_with_a_link_to_its_moment(run):
    md = (run / "report.md").read_text(encoding="utf-8")
    rec = _record(run)
    assert f"DS {rec['metrics']['driving_score']:.1f} = RC" in md
    for inf in rec["result"]["infractions"]:
        t = float(inf["time_s"])
        row = next((line for line in md.splitlines()
                    if line.startswith(f"| {t:.1f} | {infraction_label(inf['kind'])} |")), None)
        assert row is not None, f"no row for {inf['kind']} at {t:.1f} s in report.md"
        assert f"(videos/{ROUTE_ID}.mp4#t={t:.1f})" in row
        assert inf["detail"] in row


def test_every_infraction_is_in_the_html_report_and_seeks_the_embedded_video(run):
    page = (run / "report.html").read_text(encoding="utf-8")
    rec = _record(run)
    table = page.split('class="infractions"')[1].split("</table>")[0]
    rows = [r for r in re.findall(r"<tr>(.*?)</tr>", table) if r.startswith("<td>")]
    assert len(rows) == len(rec["result"]["infractions"])
    for inf, row in zip(rec["result"]["infractions"], rows, strict=True):
        t = float(inf["time_s"])
        assert row.startswith(f"<td>{t:.1f}</td><td>{infraction_label(inf['kind'])}</td>"), row
        assert f"seek('video-{ROUTE_ID}', {t:.2f})" in row and f"#t={t:.1f}" in row
    assert re.search(rf'<video id="video-{ROUTE_ID}"[^>]* src="data:video/mp4;base64,', page)
    assert page.count("data:image/png;base64,") >= 4  # DS bars, speed, map, poster
    assert "<script" not in page.split("</head>")[1]  # only the report's own script


def test_every_infraction_shows_as_a_banner_in_the_video_from_its_time(run):
    rec = _record(run)
    video = rec["video"]
    fps = video["fps"]
    shown = {(b["kind"], round(b["time_s"], 6)): b for b in video["banners"]}
    infs = rec["result"]["infractions"]
    assert set(shown) == {(i["kind"], round(i["time_s"], 6)) for i in infs}
    with imageio.get_reader(str(run / video["file"])) as reader:
        lit = [_banner_share(frame) > 0.5 for frame in reader]
    assert len(lit) == video["frames"]
    for inf in infs:
        banner = shown[(inf["kind"], round(inf["time_s"], 6))]
        first = banner["first_frame"]
        # the frame showing the infraction's tick (the video starts at t = 0)
        assert first == round(inf["time_s"] * fps), (inf, banner)
        assert banner["n_frames"] == round(fps)  # one second
        assert all(lit[first : first + banner["n_frames"]]), f"no banner for {inf['kind']}"
        assert not lit[first - round(2 * fps)], f"a banner 2 s before {inf['kind']}"
    # between banners the band is gone
    covered = {k for b in video["banners"] for k in range(b["first_frame"],
                                                          b["first_frame"] + b["n_frames"])}
    assert not any(lit[k] for k in range(len(lit)) if k not in covered)


def test_the_caption_band_has_no_empty_rows_at_the_bottom(run):
    frame = next(iter(imageio.get_reader(str(run / _record(run)["video"]["file"]))))
    bottom = frame[-10:].astype(int)  # the status line sits in the band's last row
    assert (bottom > 150).any(), "the last 10 px of the frame hold no caption text"


def test_sim_drive_videos_have_the_same_caption_layout(tmp_path, monkeypatch):
    captions: list[Caption] = []
    real = video_module.compose_frame

    def spy(camera, bev, caption, banners=(), rows=None):
        captions.append(caption)
        return real(camera, bev, caption, banners, rows)

    monkeypatch.setattr(video_module, "compose_frame", spy)
    spec = RouteSpec(ROUTE_ID, "urban", "follow_street", 1800100, config=ROUTE["config"])
    rec = drive_route(spec, rule_based_driver(), tmp_path, video=True, max_steps=15)
    assert rec["video"]["frames"] == 15 + 10  # and the last state held for a second
    texts = captions[0].texts()
    assert [t.split(":")[0] for t in texts[:2]] == ["Instruction [navigation]", "Explanation"]
    assert texts[-1].startswith("t=0.0 s | v=") and "| DS=" in texts[-1]
    assert not any(t.startswith(("Why", "Reason")) for t in texts)  # no reason head here


def test_eval_report_remakes_the_report_of_a_run_folder_even_from_older_route_files(
    run, tmp_path, capsys
):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    route_file = out / "routes" / f"{ROUTE_ID}.json"
    rec = json.loads(route_file.read_text(encoding="utf-8"))
    for key in ("drive", "video"):  # what route files lacked before #23
        rec.pop(key)
    route_file.write_text(json.dumps(rec), encoding="utf-8")
    (out / "report.md").unlink()
    assert main(["eval", "report", "--out", str(out), "--link-videos"]) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    for inf in rec["result"]["infractions"]:  # linked at their simulation time
        assert f"(videos/{ROUTE_ID}.mp4#t={float(inf['time_s']):.1f})" in md
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f'src="videos/{ROUTE_ID}.mp4"' in page and "data:video/mp4" not in page
    assert main(["eval", "report", "--out", str(tmp_path / "nothing")]) == 2
    assert "summary.json does not exist" in capsys.readouterr().err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


# where each part of the page is, written into the DOM for --dump-dom (test copy only)
_RECTS = """<script>window.addEventListener("load", function () {
  var parts = {table: "table.summary", ds: "img.plot.ds", speed: "img.plot.speed",
               map: "img.plot.map", video: "video.route-video"}, rects = {};
  for (var k in parts) { var e = document.querySelector(parts[k]);
    if (e) { var b = e.getBoundingClientRect(); rects[k] = [b.left, b.top, b.width, b.height]; } }
  document.body.setAttribute("data-rects", JSON.stringify(rects));
});</script>"""


def _chrome(args: list[str], page: Path) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
           "--force-device-scale-factor=1", "--window-size=1400,2600",
           "--virtual-time-budget=5000", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(_chromium() is None, reason="needs chromium (Debian: apt-get install "
                    "chromium) to render report.html headless")
def test_report_html_opens_in_headless_chromium_and_shows_table_plots_and_video(run, tmp_path):
    page = tmp_path / "report.html"  # beside no videos/ folder: everything must be inside
    page.write_text((run / "report.html").read_text(encoding="utf-8")
                    .replace("</body>", _RECTS + "</body>"), encoding="utf-8")
    dom = _chrome(["--dump-dom"], page).stdout
    rects = json.loads(re.search(r'data-rects="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert set(rects) == {"table", "ds", "speed", "map", "video"}, rects
    shot = tmp_path / "shot.png"
    _chrome([f"--screenshot={shot}"], page)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (2600, 1400)
    for name, (left, top, width, height) in rects.items():
        assert width > 100 and height > 30 and top + height <= img.shape[0], (name, rects)
        region = img[int(top) : int(top + height), int(left) : int(left + width)]
        colours = len(np.unique(region.reshape(-1, 3) // 8, axis=0))
        assert region.std() > 20 and colours > 8, f"{name} looks blank ({colours} colours)"
    video = rects["video"]  # the poster frame: the BEV's green and the banner's red are there
    region = img[int(video[1]) : int(video[1] + video[3]), int(video[0]) : int(video[0] + 200)]
    assert (np.abs(region - np.array(BANNER_RGB)).max(axis=2) < 45).mean() > 0.02
