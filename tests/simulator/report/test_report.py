"""The HTML report and ``dialogsim stats``; the report is checked in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from schemas import AgentMessage, DialogueRecord, ToolCall, UserFeedback, UserMessage
from schemas.errors import ConfigError
from simulator.cli import main
from simulator.report import build_report, embed_json, write_report
from simulator.report._browser import start_chromium
from simulator.run.dataset import DATASET_FILE, iter_records
from simulator.summary import summarize
from tests.simulator import _datasets
from tests.simulator._browser import chromium_missing

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

NASTY = "</script><script>window.__pwned = 1</script><!-- & \u2028 <b>bold</b>"


@pytest.fixture(scope="module")
def report(user_data: Path, task_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report([user_data, task_data], out)
    return out


def embedded(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def sorted_records(*dirs: Path) -> list[DialogueRecord]:
    found = [(r.scenario.id, r.scenario.mode.value, i, r) for i, d in enumerate(dirs) for _, r in iter_records(d)]
    return [r for *_, r in sorted(found, key=lambda item: item[:3])]


# --------------------------------------------------------------------------- the file


def test_report_is_one_self_contained_file(report: Path, user_data: Path, task_data: Path) -> None:
    html = report.read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html)
    assert not re.search(r"\b(src|href)\s*=", html)
    assert "@import" not in html and "url(" not in html
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) == {"http://www.w3.org/2000/svg"}  # an SVG namespace

    data = embedded(html)
    records = sorted_records(user_data, task_data)
    assert [(d["id"], d["mode"]) for d in data["dialogues"]] == [(r.id, r.scenario.mode.value) for r in records]
    assert data["total"] == len(records)
    first, record = data["dialogues"][0], records[0]
    assert [t["id"] for t in first["taskList"]] == [t.id for t in record.scenario.tasks]
    assert [t["ok"] for t in first["taskList"]] == [o.success for o in record.outcomes]
    calls = [item for item in first["timeline"] if item["k"] == "call"]
    assert [(c["tool"], c["args"]) for c in calls] == [
        (e.tool, e.arguments) for e in record.events if isinstance(e, ToolCall)
    ]
    assert all("result" in c for c in calls)


def test_report_shows_both_modes_side_by_side(report: Path, user_data: Path, task_data: Path) -> None:
    html = report.read_text()
    summary = summarize(r for d in (user_data, task_data) for _, r in iter_records(d))
    header = re.search(r'<table class="summary" id="summary-table"><thead>(.*?)</thead>', html, re.S)
    assert header is not None
    assert re.findall(r"<th class='num'>([^<]+)</th>", header.group(1)) == ["all", "user-oriented", "task-oriented"]
    assert "User-oriented vs task-oriented" in html
    user, task = summary.by_mode["user-oriented"], summary.by_mode["task-oriented"]
    assert f"{user.turns.mean:.2f} ({user.turns.max:g})" in html
    assert f"{task.steps.mean:.2f} ({task.steps.max:g})" in html
    for chart in ("turns", "steps", "tasks", "tools", "feedback", "terminations"):
        figure = re.search(rf'<figure class="card chart-card" id="chart-{chart}">(.*?)</figure>', html, re.S)
        assert figure is not None, chart
        assert "<svg" in figure.group(1) and 'class="bar"' in figure.group(1), chart
        if chart not in ("terminations",):
            assert "user-oriented" in figure.group(1) and "task-oriented" in figure.group(1), chart


def test_one_mode_has_no_comparison(errors_data: Path) -> None:
    html, data = build_report([errors_data])
    assert "User-oriented vs task-oriented" not in html and "At a glance" in html
    assert list(data.groups) == ["all"]
    assert 'id="chart-tool-errors"' in html  # the scripted dataset has failed calls


def test_max_dialogues_limits_the_browser_not_the_summary(user_data: Path, task_data: Path) -> None:
    html, data = build_report([user_data, task_data], max_dialogues=5)
    assert data.total == 2 * _datasets.DIALOGUES and data.summary.samples == data.total
    expected = [(r.id, r.scenario.mode.value) for r in sorted_records(user_data, task_data)[:5]]
    assert [(d["id"], d["mode"]) for d in embedded(html)["dialogues"]] == expected
    assert f"Showing the first 5 of {data.total} dialogues" in html


def test_embedded_json_cannot_close_its_script_element() -> None:
    value = {"text": NASTY, "nested": [NASTY, {"k": "</SCRIPT >"}]}
    text = embed_json(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value


def test_bad_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a dataset"):
        write_report([tmp_path], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# --------------------------------------------------------------------------- the commands


def test_cli_report(user_data: Path, task_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(user_data), str(task_data), "--out", str(out), "--title", "Both <modes>"]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    assert "<title>Both &lt;modes&gt;</title>" in out.read_text()
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


def test_cli_stats(user_data: Path, task_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = summarize(r for d in (user_data, task_data) for _, r in iter_records(d))
    assert main(["stats", str(user_data), str(task_data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == msgspec.to_builtins(summary)
    assert main(["stats", str(user_data), str(task_data)]) == 0
    table = capsys.readouterr().out
    for text in ("samples", "turns, mean (max)", "user-oriented", "task-oriented", "dialogue success"):
        assert text in table
    user = summary.by_mode["user-oriented"]
    assert f"{user.turns.mean:.2f} ({user.turns.max:g})" in table
    assert table.index("user-oriented") < table.index("task-oriented"), "the paper's contribution first"
    assert main(["stats", str(user_data / "nowhere")]) == 2


# --------------------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    reason = chromium_missing()
    if reason is not None:
        pytest.skip(reason)
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"), logs=True)
    try:
        yield driver
    finally:
        driver.quit()


def browser_log(driver: WebDriver, kind: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = driver.get_log(kind)  # type: ignore[no-untyped-call]
    return entries


def load(driver: WebDriver, page: Path, fragment: str = "") -> tuple[list[dict[str, Any]], list[str]]:
    """Open ``page``; return the console entries and the URLs of every network request it made.

    Requests made by Chromium's own pages (``chrome://`` documents such as the new-tab page
    it opens at start) are left out; everything else, whatever its scheme, is returned.
    """
    browser_log(driver, "browser")
    browser_log(driver, "performance")
    driver.get("about:blank")
    driver.get(page.resolve().as_uri() + fragment)
    driver.find_element("css selector", "#list li")  # the script has built the list
    console = browser_log(driver, "browser")
    urls = []
    for entry in browser_log(driver, "performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            if not params.get("documentURL", "").startswith("chrome://"):
                urls.append(params["request"]["url"])
    return console, urls


def visible_ids(driver: WebDriver) -> list[str]:
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#list li')].filter(li => !li.hidden).map(li => li.dataset.id)"
    )
    return ids


browser = pytest.mark.timeout(900)  # the first browser test may install Chromium


@browser
def test_loads_with_no_console_errors_and_no_network(chromium: WebDriver, report: Path) -> None:
    console, urls = load(chromium, report)
    assert [e for e in console if e["level"] == "SEVERE"] == []
    assert report.resolve().as_uri() in urls, "the performance log records the page's own request"
    assert all(url.startswith("file://") for url in urls), urls
    assert chromium.execute_script("return document.querySelectorAll('#list li').length") == 2 * _datasets.DIALOGUES


@browser
def test_charts_render(chromium: WebDriver, report: Path) -> None:
    load(chromium, report)
    boxes = chromium.execute_script(
        """return [...document.querySelectorAll('svg.chart')].map(svg => {
             const box = svg.getBoundingClientRect();
             const bars = [...svg.querySelectorAll('rect.bar')].map(r => r.getBoundingClientRect())
                 .filter(b => b.width > 0 && b.height > 0);
             return [svg.closest('figure').id, box.width, box.height, bars.length];
           })"""
    )
    assert {b[0] for b in boxes} >= {
        f"chart-{c}" for c in ("turns", "steps", "tasks", "tools", "feedback", "terminations")
    }
    for chart, width, height, bars in boxes:
        assert width > 200 and height > 50 and bars > 0, chart


def haystack(view: dict[str, Any]) -> str:
    """What the page's search looks through, as the script builds it."""
    parts = [view["id"], view["domain"], view["mode"], view["term"], view["persona"]]
    parts += [t["goal"] for t in view["taskList"]]
    for item in view["timeline"]:
        parts += [item[k] for k in ("text", "tool") if item.get(k)]
        if item.get("args"):
            parts.append(json.dumps(item["args"], separators=(",", ":"), ensure_ascii=False))
        if item.get("result"):
            parts.append(item["result"]["text"])
        for f in item.get("fb", []):
            parts += [f["kind"], f["detail"]]
    return "\n".join(parts).lower()


@browser
def test_searching_and_filtering_narrow_the_list(chromium: WebDriver, report: Path) -> None:
    from selenium.webdriver.support.ui import Select

    views = embedded(report.read_text())["dialogues"]
    load(chromium, report)
    search = chromium.find_element("id", "search")
    target = views[5]
    search.send_keys(target["id"])
    assert visible_ids(chromium) == [v["id"] for v in views if target["id"] in haystack(v)]
    assert sorted({v["mode"] for v in views if v["id"] == target["id"]}) == ["task-oriented", "user-oriented"]
    search.send_keys(" task-oriented")
    assert visible_ids(chromium) == [target["id"]]
    assert chromium.find_element("id", "count").text == f"1 of {len(views)} dialogues"

    # A word from a tool result: the list shows exactly the dialogues that contain it.
    result = next(item["result"]["text"] for item in views[3]["timeline"] if item["k"] == "call")
    words = re.findall(r"[A-Za-z][A-Za-z0-9-]{5,}", result)
    word = max(words, key=lambda w: (sum(w.lower() in haystack(v) for v in views) == 1, len(w)))
    search.clear()
    search.send_keys(word)
    expected = [v["id"] for v in views if word.lower() in haystack(v)]
    assert views[3]["id"] in expected and visible_ids(chromium) == expected

    search.clear()
    Select(chromium.find_element("id", "f-domain")).select_by_value("clinic")
    Select(chromium.find_element("id", "f-mode")).select_by_value("user-oriented")
    expected = [v["id"] for v in views if v["domain"] == "clinic" and v["mode"] == "user-oriented"]
    assert visible_ids(chromium) == expected and expected
    Select(chromium.find_element("id", "f-mode")).select_by_value("")
    Select(chromium.find_element("id", "f-domain")).select_by_value("")
    Select(chromium.find_element("id", "f-outcome")).select_by_value("failed")
    failed = [v["id"] for v in views if not v["ok"]]
    assert visible_ids(chromium) == failed and failed
    Select(chromium.find_element("id", "f-outcome")).select_by_value("")
    assert len(visible_ids(chromium)) == len(views)


@browser
def test_clicking_a_dialogue_opens_it(chromium: WebDriver, report: Path, user_data: Path, task_data: Path) -> None:
    records = sorted_records(user_data, task_data)
    index = next(
        i for i, r in enumerate(records) if r.scenario.mode.value == "user-oriented" and i > 0 and r.metrics.feedback
    )
    record = records[index]
    load(chromium, report)
    items = chromium.find_elements("css selector", "#list li button")
    items[index].click()
    detail = chromium.find_element("id", "detail")
    assert detail.find_element("css selector", "h2").text == record.id

    def count(css: str) -> int:
        return len(detail.find_elements("css selector", css))

    assert count(".msg.user") == sum(isinstance(e, UserMessage) for e in record.events)
    assert count(".msg.agent") == sum(isinstance(e, AgentMessage) for e in record.events)
    assert count("details.call") == sum(isinstance(e, ToolCall) for e in record.events)
    assert count(".msg .fb") == sum(isinstance(e, UserFeedback) for e in record.events) > 0
    assert count(".tasks > li") == len(record.scenario.tasks)
    texts = [el.text for el in detail.find_elements("css selector", ".msg.user")]
    first_user = next(e.text for e in record.events if isinstance(e, UserMessage))
    assert texts[0].endswith(first_user)
    assert chromium.execute_script("return location.hash") == f"#0/{record.id}"

    call = detail.find_element("css selector", "details.call")
    call.find_element("css selector", "summary").click()
    first_call = next(e for e in record.events if isinstance(e, ToolCall))
    assert json.loads(call.find_elements("css selector", "pre")[0].text) == first_call.arguments

    # An address opens its dialogue: dataset 1 (the task-oriented one) and the id.
    same_scenario = next(r for r in records if r.id == record.id and r.scenario.mode.value == "task-oriented")
    load(chromium, report, f"#1/{same_scenario.id}")
    detail = chromium.find_element("id", "detail")
    assert detail.find_element("css selector", "h2").text == record.id
    assert detail.find_element("css selector", ".badge.task-oriented").text == "task-oriented"
    assert chromium.find_element("css selector", "#list li.active").get_attribute("data-index") == str(
        records.index(same_scenario)
    )


@browser
def test_script_like_text_is_shown_as_text(chromium: WebDriver, errors_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(errors_data, data)
    lines = (data / DATASET_FILE).read_bytes().splitlines(keepends=True)
    record = msgspec.json.decode(lines[0], type=DialogueRecord)
    for event in record.events:
        if isinstance(event, UserMessage):
            event.text = NASTY
            break
    lines[0] = msgspec.json.encode(record) + b"\n"
    (data / DATASET_FILE).write_bytes(b"".join(lines))
    page = tmp_path / "r.html"
    write_report([data], page)
    console, urls = load(chromium, page, f"#0/{record.id}")
    assert [e for e in console if e["level"] == "SEVERE"] == []
    assert all(url.startswith("file://") for url in urls)
    assert chromium.execute_script("return window.__pwned") is None
    shown = chromium.find_element("css selector", "#detail .msg.user").text
    assert "</script><script>window.__pwned = 1</script><!-- &" in shown
    assert chromium.find_elements("css selector", "#detail b") == []


@browser
def test_screenshot_command(report: Path, tmp_path: Path, chromium: WebDriver) -> None:
    from simulator.report.screenshot import main as screenshot

    out = tmp_path / "shot.png"
    assert screenshot([str(report), str(out), "--width", "1200", "--height", "800"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert screenshot([str(tmp_path / "missing.html"), str(out)]) == 2


def test_report_has_the_quality_section(report: Path, user_data: Path, task_data: Path) -> None:
    from simulator.quality import measure_quality

    html = report.read_text()
    section = re.search(r'<table class="summary" id="quality-table">(.*?)</table>', html, re.S)
    assert section is not None
    quality = measure_quality([user_data, task_data])
    assert "writes without confirmation" in section.group(1)
    assert f"<td class='num'>{quality.dialogues}</td>" in section.group(1)


# --------------------------------------------------------------------------- verification in the report


def test_the_dialogue_view_carries_every_check_the_state_and_the_evidence(user_data: Path) -> None:
    html, _ = build_report([user_data])
    views = {d["id"]: d for d in embedded(html)["dialogues"]}
    for record in sorted_records(user_data):
        view = views[record.id]
        assert record.state is not None and view["state"]["v"] == record.state.verdict.value
        assert view["state"]["diff"] == [d.text for d in record.state.diff]
        seqs = {item.get("seq") for item in view["timeline"] if item["k"] == "agent"}
        results = {item["result"]["seq"] for item in view["timeline"] if item["k"] == "call" and "result" in item}
        for task, outcome in zip(view["taskList"], record.outcomes, strict=True):
            assert [(c["k"], c["n"], c["v"]) for c in task["checks"]] == [
                (c.kind.value, c.name, c.verdict.value) for c in outcome.checks
            ]
            for check in task["checks"]:
                for evidence in check.get("ev", []):
                    assert evidence["r"] in results
                    assert evidence["m"] in seqs or check["k"] == "call"


def _eval_dir(tmp_path: Path, agent: str, *, floors: bool) -> Path:
    import anyio

    from simulator.eval import EvalConfig, run_eval
    from tests.simulator.eval.conftest import write_shop_scenarios

    scenarios = write_shop_scenarios(tmp_path / "shop.json")
    out = tmp_path / "eval"
    config = EvalConfig(agent=agent, out_dir=out, source=str(scenarios), progress=False, floors=floors)
    anyio.run(run_eval, config)
    return out


def test_an_evaluation_directory_shows_its_score_beside_the_floors(tmp_path: Path) -> None:
    out = _eval_dir(tmp_path, "offline", floors=True)
    html, report = build_report([out])
    assert report.total == 1 and report.datasets[0].path == str(out)
    (info,) = report.evals
    assert info.results is not None and set(info.results.floors) == {
        "baseline:silent",
        "baseline:guess",
        "baseline:random",
        "baseline:refuse",
    }
    section = html[html.index('id="evaluation"') : html.index('aria-labelledby="glance-title"')]
    for heading in ("offline", "floor silent", "floor guess", "floor random", "floor refuse"):
        assert f">{heading}</th>" in section, heading
    assert "dialogue pass^1" in section and "1.000 [0.025, 1.000]" in section  # one passing dialogue
    assert section.count("0.000 [0.000, 0.975]") == 4  # each floor: one failed dialogue
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0


@browser
def test_a_state_difference_and_the_evidence_show_in_the_dialogue(chromium: WebDriver, tmp_path: Path) -> None:
    from tests.simulator.eval.conftest import python_test_agent

    out = _eval_dir(tmp_path, python_test_agent("make_collateral"), floors=False)
    page = tmp_path / "r.html"
    write_report([out], page)
    (record,) = [r for _, r in iter_records(out / "records")]
    console, _ = load(chromium, page, f"#0/{record.id}")
    assert [e for e in console if e["level"] == "SEVERE"] == []
    detail = chromium.find_element("id", "detail")
    state = detail.find_element("css selector", ".state.fail")
    assert "orders pk=11: status 'shipped' → 'cancelled'" in state.text
    failed = [c.text for c in detail.find_elements("css selector", ".check.fail")]
    assert any("full state" in text for text in failed)
    told = detail.find_elements("css selector", ".msg.agent.evidence")
    assert told and "tells the user" in told[0].text.lower()
    jump = detail.find_element("css selector", ".check.pass button.jump")
    jump.click()
    assert detail.find_elements("css selector", ".flash")
