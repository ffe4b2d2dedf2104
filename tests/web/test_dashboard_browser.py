"""The dashboard in a real headless Chromium (selenium) against a live daemon.

Selenium's calls block, so the browser is driven from a worker thread while the daemon
mines on this test's event loop. The screenshot is a test artifact in the test's tmp
directory; with ``DASHBOARD_SCREENSHOT=<path>`` it is also written there (that is how
``docs/img/dashboard.png`` is refreshed).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from web_rig import TOKEN, LiveWeb

CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 60.0


def browser() -> WebDriver:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1700"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def chart_points(driver: WebDriver, series: str) -> int:
    found = driver.find_elements(By.CSS_SELECTOR, f'.chart[data-series="{series}"] circle')
    return len(found)


def click_and_wait_result(driver: WebDriver, button: str, expected: str) -> str:
    driver.execute_script("document.getElementById('control-result').textContent = ''")
    driver.find_element(By.ID, button).click()
    WebDriverWait(driver, WAIT).until(lambda d: text_of(d, "control-result"))
    result = text_of(driver, "control-result")
    assert result.startswith(expected), result
    return result


def drive(url: str, shot: Path, live: LiveWeb) -> dict[str, object]:
    driver = browser()
    try:
        driver.get(url)
        wait = WebDriverWait(driver, WAIT)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chip.ok")) == 5)
        wait.until(lambda d: chart_points(d, "Hashrate (GH/s)") >= 3)
        wait.until(lambda d: "share accepted" in text_of(d, "log"))
        wait.until(lambda d: text_of(d, "accepted") not in ("", "–", "0"))
        driver.save_screenshot(str(shot))
        seen = {
            "hashrate points": chart_points(driver, "Hashrate (GH/s)"),
            "charts": len(driver.find_elements(By.CSS_SELECTOR, ".chart")),
            "accepted": int(text_of(driver, "accepted")),
            "chains": len(driver.find_elements(By.CSS_SELECTOR, ".chain")),
            "chips": len(driver.find_elements(By.CSS_SELECTOR, ".chip")),
        }
        # without the token, and with a wrong one, the daemon refuses and keeps mining
        refused = click_and_wait_result(driver, "pause", "401")
        driver.find_element(By.ID, "token").send_keys("not-the-token")
        click_and_wait_result(driver, "pause", "401")
        assert not live.paused()
        token = driver.find_element(By.ID, "token")
        token.clear()
        token.send_keys(TOKEN)
        click_and_wait_result(driver, "pause", "200: Mining paused.")
        wait.until(lambda d: text_of(d, "mining") == "paused")
        paused = live.paused()
        click_and_wait_result(driver, "resume", "200: Mining resumed.")
        wait.until(lambda d: text_of(d, "mining") == "running")
        driver.find_element(By.ID, "mhz").send_keys("400")
        click_and_wait_result(driver, "setfreq", "200: frequency set")
        return {**seen, "refused": refused, "paused": paused, "resumed": not live.paused(),
                "frequencies": live.frequencies()}  # fmt: skip
    finally:
        driver.quit()


async def test_dashboard_in_headless_chromium(live_web: LiveWeb, tmp_path: Path) -> None:
    shot = tmp_path / "dashboard.png"
    seen = await asyncio.to_thread(drive, live_web.url, shot, live_web)
    assert seen["hashrate points"] >= 3  # type: ignore[operator]
    assert seen["chains"] == 2
    assert seen["chips"] == 5  # 4 × BM1366 + 1 × BM1397, one health box each
    assert seen["accepted"] >= 2  # type: ignore[operator]
    assert seen["paused"] is True
    assert seen["resumed"] is True
    assert "missing or wrong bearer token" in str(seen["refused"])
    assert seen["frequencies"] == {"a": 400.0, "b": 400.0}
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    target = os.environ.get("DASHBOARD_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
