"""report.html opened from disk in headless Chromium: the table renders and every image (the grid's rows and the
trade-off chart) shows pixels."""

import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import sg2_core
from inv_metrics.report import run_report
from inv_metrics.report.grid import data_uri
from sg2_core import Generator, GeneratorConfig, Inversion

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium check needs the Debian packages chromium and "
    "chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
)


class RandomW(sg2_core.Method):
    """Each image inverted to a random w: reconstructions differ from the inputs and from each other."""

    space, name = "w", "test-random-w"

    def invert(self, images, init):
        z = torch.randn(len(images), self.generator.z_dim, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            return Inversion(self.generator.mapping(z)[:, 0], "w", self.generator)


class Failing(sg2_core.Method):
    """Fails when built."""

    space, name = "w", "test-failing"

    def __init__(self, generator=None, **options):
        raise ValueError("this method fails on purpose")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    sg2_core.register_method("test-random-w", replace=True)(RandomW)
    sg2_core.register_method("test-failing", replace=True)(Failing)
    try:
        torch.manual_seed(0)
        g = (
            Generator(
                GeneratorConfig(
                    z_dim=16, w_dim=16, resolution=16, img_channels=1, mapping_layers=2, channel_base=64, channel_max=16
                )
            )
            .eval()
            .requires_grad_(False)
        )
        with torch.no_grad():
            images = g.synthesis(g.mapping(torch.randn(4, 16)), noise_mode="const").clamp(-1, 1)
        out = tmp_path_factory.mktemp("html")
        report = run_report(g, images, out, methods=["test-random-w", "test-failing"], batch_size=4, progress=False)
    finally:
        sg2_core.methods.registry.unregister_method("test-random-w")
        sg2_core.methods.registry.unregister_method("test-failing")
    return out / "report.html", report


def test_table_and_every_image_render(page):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    path, report = page
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
        "--window-size=1400,1400",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(path.resolve().as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "table#metrics tbody tr")
        assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["test-random-w", "test-failing"]
        assert "fails on purpose" in rows[1].text
        headers = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "table#metrics th")]
        assert "MSE (L2 on [-1,1])" in headers and "s / image" in headers
        grid = driver.find_elements(By.CSS_SELECTOR, "table.grid img")
        assert len(grid) == len(report["grid"]["rows"]) == 3  # inputs, reconstruction, edit
        chart = driver.find_element(By.CSS_SELECTOR, "img#tradeoff")
        assert chart.get_attribute("src") == data_uri((path.parent / report["tradeoff"]["file"]).read_bytes())
        size = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", chart)
        assert size == list(Image.open(path.parent / "tradeoff.png").size) and min(size) > 0
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == len(grid) + 1
        for img in images:  # decoded, not a broken-image placeholder
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        for img in images:
            driver.execute_script("arguments[0].scrollIntoView()", img)
            shot = np.array(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L")).astype(float)
            r = driver.execute_script(
                "const r = arguments[0].getBoundingClientRect();return [r.left, r.top, r.width, r.height];", img
            )
            left, top, width, height = (int(round(v)) for v in r)
            assert width > 0 and height > 0
            crop = shot[top : top + height, left : left + width]
            assert crop.size and crop.var() > 0, f"image {img.get_attribute('alt')!r} renders blank"
    finally:
        driver.quit()
