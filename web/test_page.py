#!/usr/bin/env python3
"""The lab page in headless Chromium, driven through chromedriver's WebDriver API (plain HTTP,
no extra packages). Run by scripts/test-web.sh after web/build.sh.

Checks: the page draws and #summary names the adapter; moving the "forget bias" slider up
redraws and brings the LSTM's t0 rate closer to 1, as the lecture predicts; a screenshot
(saved to target/web-test/lab.png) is not blank; without WebGPU the page says so in words.
"""

import base64
import functools
import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib

WEB = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(WEB, "..", "target", "web-test")
WEBGPU = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"]
QUIET = ["--headless", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,2100",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run"]
# SwiftShader runs the three models on the CPU: a redraw takes seconds, the first one longer.
TIMEOUT_S = float(os.environ.get("WEB_TEST_TIMEOUT", "300"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory):
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Browser:
    """One chromedriver session."""

    def __init__(self, driver_url, args):
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": args}}}}
        binary = shutil.which("chromium")
        if binary:
            caps["capabilities"]["alwaysMatch"]["goog:chromeOptions"]["binary"] = binary
        self.base = driver_url
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        url = self.base + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"WebDriver {method} {path}: {e.read().decode()}") from None

    def do(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def js(self, script, *args):
        return self.do("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, what, script, timeout=TIMEOUT_S):
        start = time.time()
        while time.time() - start < timeout:
            error = self.js("return document.body.dataset.error || null")
            if error:
                raise AssertionError(f"the page failed while waiting for {what}: {error}")
            value = self.js(script)
            if value:
                return value
            time.sleep(0.2)
        status = self.js("return document.getElementById('status').textContent")
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (status: {status!r})")

    def close(self):
        try:
            self.do("DELETE", "")
        except Exception:
            pass


def png_pixels(png):
    """(width, height, rows of RGBA bytes) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    channels = 4 if color == 6 else 3
    raw, stride = zlib.decompress(idat), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def check_not_blank(png):
    width, height, channels, rows = png_pixels(png)
    colours = set()
    for row in rows[::4]:
        for x in range(0, width * channels, 4 * channels):
            colours.add(row[x:x + 3])
    # A blank page is one or two colours; text and curves bring dozens.
    assert len(colours) > 20, f"the screenshot looks blank: {len(colours)} distinct colours"
    return len(colours)


def lab_session(driver_url, url):
    browser = Browser(driver_url, QUIET + WEBGPU)
    try:
        browser.do("POST", "/url", {"url": url})
        browser.wait_for("the first plot", "return document.body.dataset.ready === '1'")
        summary = browser.js("return document.getElementById('summary').textContent")
        adapter = summary.splitlines()[0]
        assert adapter.startswith("adapter: ") and len(adapter) > len("adapter: ") + 3, summary
        assert "WebGPU" in adapter, adapter
        before = float(browser.js("return document.getElementById('summary').dataset.lstmT0Rate"))
        first_ms = browser.js("return document.getElementById('summary').dataset.redrawMs")
        # The slider is found by its label's words, as a screen reader would.
        moved = browser.js("""
            const label = [...document.querySelectorAll('label')]
                .find((l) => l.textContent.trim() === 'forget bias');
            if (!label) return null;
            const slider = document.getElementById(label.htmlFor);
            slider.value = '5';
            slider.dispatchEvent(new Event('input', { bubbles: true }));
            return slider.value;
        """)
        assert moved == "5", f"no slider labelled 'forget bias' (got {moved!r})"
        browser.wait_for("the redraw", "return document.body.dataset.ready === '1'")
        after = float(browser.js("return document.getElementById('summary').dataset.lstmT0Rate"))
        redraw_ms = browser.js("return document.getElementById('summary').dataset.redrawMs")
        assert abs(1 - after) < abs(1 - before), \
            f"forget bias 0 → 5: the LSTM's t0 rate went {before} → {after}, not closer to 1"
        # Every slider at its maximum, then at its minimum: finite plots or a stated overflow.
        for end in ("max", "min"):
            browser.js(f"""
                for (const slider of document.querySelectorAll('input[type=range]')) {{
                    slider.value = slider.{end};
                    slider.dispatchEvent(new Event('input', {{ bubbles: true }}));
                }}""")
            browser.wait_for(f"the redraw at the sliders' {end}",
                             "return document.body.dataset.ready === '1'")
            text = browser.js("return document.getElementById('summary').textContent")
            # The page's own lines (before the engine's summary) state overflow in words.
            page_lines = text.split("gradient flow, loss on the last step")[0]
            assert "NaN" not in page_lines and "Infinity" not in page_lines, text
        browser.js("""
            for (const slider of document.querySelectorAll('input[type=range]')) {
                slider.value = slider.defaultValue;
                slider.dispatchEvent(new Event('input', { bubbles: true }));
            }""")
        browser.wait_for("the redraw at the defaults", "return document.body.dataset.ready === '1'")
        # The training panel: a character model trains in the page and samples text.
        browser.js("document.getElementById('train-button').click()")
        sample = browser.wait_for("sampled text", "return document.getElementById('sample').textContent")
        progress = browser.js("return document.getElementById('train-status').textContent")
        assert progress.startswith("step ") and "loss" in progress, progress
        loss = float(progress.split("loss ")[1].split(",")[0])
        assert 0 < loss < 10, progress
        png = base64.b64decode(browser.do("GET", "/screenshot"))
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "lab.png"), "wb") as f:
            f.write(png)
        colours = check_not_blank(png)
        # A reload mid-training says what happened to the run.
        browser.do("POST", "/refresh", {})
        note = browser.wait_for("the reload note",
                                "return document.getElementById('train-status').textContent")
        assert "interrupted by a page reload" in note, note
        browser.wait_for("the first plot after the reload",
                         "return document.body.dataset.ready === '1'")
        # A lost device: the next redraw says so in words.
        browser.js("""
            window.wgpuLstmLab.lose_device();
            const slider = document.getElementById('seq-len');
            slider.value = '50';
            slider.dispatchEvent(new Event('input', { bubbles: true }));""")
        start = time.time()
        while not browser.js("return document.body.dataset.error || null"):
            assert time.time() - start < 60, "no message within 60 s after the device was lost"
            time.sleep(0.2)
        lost = browser.js("return document.getElementById('status').textContent")
        assert "device was lost" in lost, lost
        print(f"page: {adapter}; t0 rate {before:.4f} → {after:.4f} with forget bias 5; "
              f"redraw {first_ms} ms (first), {redraw_ms} ms (T = 100); screenshot {colours} colours")
        print(f"training in the page: {progress}; sampled {len(sample)} characters")
    finally:
        browser.close()


def no_webgpu_session(driver_url, url):
    """Without WebGPU (the feature switched off), the page says so instead of staying blank."""
    browser = Browser(driver_url, QUIET + ["--disable-features=WebGPU,Vulkan", "--disable-gpu"])
    try:
        browser.do("POST", "/url", {"url": url})
        start = time.time()
        while time.time() - start < 60:
            error = browser.js("return document.body.dataset.error || null")
            if error:
                assert "WebGPU" in error, error
                print(f"without WebGPU the page says: {error}")
                return
            time.sleep(0.2)
        raise AssertionError("without WebGPU the page gave no message within 60 s")
    finally:
        browser.close()


def main():
    driver = shutil.which("chromedriver") or os.environ.get("CHROMEDRIVER")
    assert driver, "chromedriver not found (apt-get install chromium-driver)"
    assert os.path.exists(os.path.join(WEB, "pkg", "wgpu_lstm_web.js")), "run web/build.sh first"
    server = serve(WEB)
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    port = free_port()
    process = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    driver_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(driver_url + "/status", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        lab_session(driver_url, url)
        no_webgpu_session(driver_url, url)
    finally:
        process.terminate()
        server.shutdown()
    print("page tests passed")


if __name__ == "__main__":
    sys.exit(main())
